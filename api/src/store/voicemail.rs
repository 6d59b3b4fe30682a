//! Voicemail: a message left in a queue's or an agent's box is a recording (`recordings`,
//! kind [`VOICEMAIL`](super::VOICEMAIL), `mailbox_queue` / `mailbox_agent`), written by the runtime like a call's
//! recording ([`Store::insert_recordings`]); its audio goes through the recordings' storage.
//! This module reads the boxes and keeps whether each message was heard.
//!
//! ```text
//!   open row (status "recording") ─► final row ─► listed, newest first
//!                                                  │ set_voicemail_heard(true/false)
//!                                                  ▼
//!                                    voicemail_heard row (present: heard)
//!   DELETE ─► begin_delete / finish_delete (recording_objects 'deleting' -> 'deleted') ─► gone
//! ```
//!
//! - A message is listed once its final row is written with audio (`completed`, or `damaged`
//!   with what could be read: the caller has finished speaking; `failed` is no message) and until its audio is deleted (`recording_objects` in
//!   `deleting` or `deleted`): a deleted message is in no listing and no read.
//! - Heard state lives in its own table (migration 0016): a recording's final row replaces its
//!   open row (DELETE and INSERT), which would wipe a column of the row.
//! - Every statement is static SQL: an absent filter is a NULL (or 0) bind the statement
//!   tests, and the page boundary is a bind too (the largest key when there is no cursor).

use uuid::Uuid;

use super::history::{decode_cursor, encode_cursor};
use super::recordings::recording_cols;
use super::rows::{FromStoreRow, RowExt};
use super::{
    Arg, AuditEntry, AuditWrite, INSERT_AUDIT, Inner, RecordingRow, Store, StoreError, Use,
    audit_args,
};
use crate::model::TenantId;

/// The largest page [`Store::list_voicemail`] returns.
pub const MAX_VOICEMAIL_PAGE: u32 = 500;

/// A voicemail message and whether it was heard.
#[derive(Clone, Debug, PartialEq)]
pub struct VoicemailRow {
    pub recording: RecordingRow,
    /// When it was marked heard (unix ms); `None`: not heard.
    pub heard_at_ms: Option<i64>,
    /// Who marked it heard (the API key's id), when known.
    pub heard_by: Option<String>,
}

impl VoicemailRow {
    pub fn heard(&self) -> bool {
        self.heard_at_ms.is_some()
    }
}

impl FromStoreRow for VoicemailRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(VoicemailRow {
            recording: RecordingRow::from_row(row)?,
            heard_at_ms: row.opt_i64("heard_at")?,
            heard_by: row.opt_string("heard_by")?,
        })
    }
}

/// Which messages [`Store::list_voicemail`] returns; every filter is optional and they all
/// apply (AND). `since_ms` is inclusive, `until_ms` exclusive, on when the message was left
/// (the recording's start).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VoicemailFilter {
    /// The queue's box (store id).
    pub queue: Option<i64>,
    /// The agent's box (store id).
    pub agent: Option<i64>,
    pub heard: Option<bool>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
    /// Clamped to `1..=`[`MAX_VOICEMAIL_PAGE`].
    pub limit: u32,
}

/// A message's columns and its heard state, by the heard row's key (scalar subqueries, not a
/// join: `recording_cols!` names the columns bare and `tenant_id` is in both tables).
macro_rules! voicemail_select {
    () => {
        concat!(
            "SELECT ",
            recording_cols!(),
            ", (SELECT h.heard_at FROM voicemail_heard h WHERE h.recording_id = recordings.id) \
             AS heard_at, \
             (SELECT h.heard_by FROM voicemail_heard h WHERE h.recording_id = recordings.id) \
             AS heard_by FROM recordings"
        )
    };
}

/// A listed message of tenant `$1`: a voicemail's final row with audio (a caller who left
/// during the greeting or said nothing left no message: `failed`), whose audio is not
/// deleted. The
/// kind as a literal: the index (`recordings_tenant_kind`) is planned from it.
macro_rules! listed {
    () => {
        " WHERE tenant_id = $1 AND kind = 'voicemail' AND status IN ('completed', 'damaged') \
         AND NOT EXISTS (SELECT 1 FROM recording_objects o WHERE o.recording_id = recordings.id \
         AND o.state IN ('deleting', 'deleted'))"
    };
}

/// `$N` of the heard filter: 0 any, 1 heard, 2 not heard.
fn heard_code(heard: Option<bool>) -> i64 {
    match heard {
        None => 0,
        Some(true) => 1,
        Some(false) => 2,
    }
}

impl Store {
    /// A page of the tenant's voicemail that passes `filter`, newest first (by when it was
    /// left, then id), and the cursor of the next page (None on the last). Pages neither
    /// overlap nor skip messages, whatever is left meanwhile (the calls listing's cursor).
    pub async fn list_voicemail(
        &self,
        tenant: TenantId,
        filter: &VoicemailFilter,
    ) -> Result<(Vec<VoicemailRow>, Option<String>), StoreError> {
        const SQL: &str = concat!(
            voicemail_select!(),
            listed!(),
            " AND ($2 IS NULL OR mailbox_queue = $2) \
             AND ($3 IS NULL OR mailbox_agent = $3) \
             AND ($4 = 0 \
             OR ($4 = 1 AND EXISTS (SELECT 1 FROM voicemail_heard h \
             WHERE h.recording_id = recordings.id)) \
             OR ($4 = 2 AND NOT EXISTS (SELECT 1 FROM voicemail_heard h \
             WHERE h.recording_id = recordings.id))) \
             AND started_at >= $5 AND started_at < $6 \
             AND (started_at, id) < ($7, $8) \
             ORDER BY started_at DESC, id DESC LIMIT $9"
        );
        let limit = filter.limit.clamp(1, MAX_VOICEMAIL_PAGE);
        // No cursor: above every key. Ids are lowercase hex (`uuid_text`), below 'g'.
        let (after_at, after_id) = match filter.cursor.as_deref() {
            Some(c) => {
                let (at, id) = decode_cursor(c)?;
                (at, Arg::from(id))
            }
            None => (i64::MAX, Arg::from("g")),
        };
        let args = vec![
            Arg::from(tenant),
            Arg::from(filter.queue),
            Arg::from(filter.agent),
            Arg::from(heard_code(filter.heard)),
            Arg::from(filter.since_ms.unwrap_or(i64::MIN)),
            Arg::from(filter.until_ms.unwrap_or(i64::MAX)),
            Arg::from(after_at),
            after_id,
            // One row more than asked tells whether there is a next page.
            Arg::from(i64::from(limit) + 1),
        ];
        let mut rows: Vec<VoicemailRow> = self.fetch_all(Use::Read, SQL, args).await?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|last| encode_cursor(last.recording.started_at_ms, last.recording.id))
        } else {
            None
        };
        Ok((rows, next))
    }

    /// One listed message of the tenant's (None: no such id, another tenant's, a call's
    /// recording, one still being left, or one deleted).
    pub async fn voicemail(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<VoicemailRow>, StoreError> {
        const SQL: &str = concat!(voicemail_select!(), listed!(), " AND id = $2");
        self.fetch_optional(Use::Read, SQL, args![tenant, id]).await
    }

    /// A message of the tenant's whatever its audio's state (deleted included); None as for
    /// [`Store::voicemail`] otherwise. For a DELETE, which is idempotent.
    pub async fn voicemail_any_state(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<VoicemailRow>, StoreError> {
        const SQL: &str = concat!(
            voicemail_select!(),
            " WHERE tenant_id = $1 AND id = $2 AND kind = 'voicemail' AND status <> 'recording'"
        );
        self.fetch_optional(Use::Read, SQL, args![tenant, id]).await
    }

    /// Marks a listed message heard (`heard`: at `at_ms` by `by`; one already heard keeps
    /// when and by whom it was first) or not heard, with `audit` in the same transaction.
    /// False (and nothing written) when the tenant has no such listed message.
    pub async fn set_voicemail_heard(
        &self,
        tenant: TenantId,
        id: Uuid,
        heard: bool,
        at_ms: i64,
        by: Option<&str>,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        const FIND: &str = concat!("SELECT id FROM recordings", listed!(), " AND id = $2");
        const MARK: &str = "INSERT INTO voicemail_heard (recording_id, tenant_id, heard_at, \
             heard_by) VALUES ($2, $1, $3, $4) ON CONFLICT (recording_id) DO NOTHING";
        const UNMARK: &str =
            "DELETE FROM voicemail_heard WHERE tenant_id = $1 AND recording_id = $2";
        let key = args![tenant, id];
        let (sql, change) = if heard {
            (MARK, args![tenant, id, at_ms, by])
        } else {
            (UNMARK, args![tenant, id])
        };
        let audit_row = audit_args(
            &AuditWrite {
                entry: audit,
                tenant: Some(tenant),
            },
            audit.object_id.clone(),
        );
        with_pool!(self, Use::Write, |pool| {
            let mut tx = pool.begin().await?;
            let found = bind_args!(sqlx::query(FIND), &key)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !found {
                tx.rollback().await?;
                return Ok(false);
            }
            bind_args!(sqlx::query(sql), &change)
                .execute(&mut *tx)
                .await?;
            bind_args!(sqlx::query(INSERT_AUDIT), &audit_row)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heard_filter_is_one_bind_for_any_heard_and_not_heard() {
        assert_eq!(heard_code(None), 0);
        assert_eq!(heard_code(Some(true)), 1);
        assert_eq!(heard_code(Some(false)), 2);
    }

    #[test]
    fn the_listing_names_the_voicemail_kind_as_the_store_writes_it() {
        let kind = format!("kind = '{}'", super::super::VOICEMAIL);
        assert!(listed!().contains(&kind));
    }

    #[test]
    fn the_no_cursor_bound_sorts_after_every_stored_id() {
        // Ids are stored as lowercase hyphenated hex: every one sorts below "g".
        let top = super::super::uuid_text(Uuid::from_u128(u128::MAX));
        assert!(top.as_str() < "g");
    }
}
