//! Recordings: one row per recording of a call, written by the runtime from the engine's
//! records and read (tenant-scoped) by the API; the open rows are what a restart must close.
//!
//! ```text
//!   Record::RecordingOpened ─► open row (status "recording", no end, spans [], waveform null)
//!                                 │ before the capture starts (write before you act)
//!   Record::Recording ─────────► final row: replaces the open row of its id
//! ```
//!
//! Recordings are records with an identity, written like calls ([`Store::insert_records`],
//! see the history module): under a stored id,
//! - the same row again is a no-op (a batch retried after a lost commit answer, a replay);
//! - the final row of the same recording (same tenant, call, leg and start) replaces the open
//!   row; the open row after the final one (a replay out of order) adds nothing;
//! - anything else is another recording under a taken id: [`StoreError::Duplicate`]
//!   (`what`: `recording`), and nothing of the batch is written.

use serde_json::Value;
use uuid::Uuid;

use super::history::{MAX_PER_CALL, Versus, insert_statements};
use super::rows::{FromStoreRow, RowExt};
use super::spool::Op;
use super::{Arg, RecordingRow, Store, StoreError, Use};
use crate::model::TenantId;

/// The status of a recording's open row (see the module doc).
pub const OPEN_RECORDING: &str = "recording";

/// The kind of a call's recording (`recordings.kind`, migration 0016).
pub const CALL_RECORDING: &str = "call";
/// The kind of a voicemail message (see the `voicemail` module).
pub const VOICEMAIL: &str = "voicemail";

macro_rules! recording_cols {
    () => {
        "id, tenant_id, call_id, leg, queue_id, agents, caller_number, mode, capture, \
         fell_back, stereo, path, started_at, ended_at, status, error, duration_ms, \
         sample_rate, channels, bytes, silence_ratio, spans, waveform, campaign_id, kind, \
         mailbox_queue, mailbox_agent"
    };
}
// The search (`transcripts`) selects the same columns.
pub(super) use recording_cols;

impl FromStoreRow for RecordingRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        let agents = serde_json::from_value(row.json("agents")?)
            .map_err(|e| StoreError::Internal(format!("recordings.agents is not [int]: {e}")))?;
        Ok(RecordingRow {
            id: row.uuid("id")?,
            tenant: row.tenant("tenant_id")?,
            call_id: row.uuid("call_id")?,
            leg: row.uuid("leg")?,
            queue_id: row.i64("queue_id")?,
            agents,
            caller_number: row.string("caller_number")?,
            mode: row.string("mode")?,
            capture: row.string("capture")?,
            fell_back: row.bool("fell_back")?,
            stereo: row.bool("stereo")?,
            path: row.string("path")?,
            started_at_ms: row.i64("started_at")?,
            ended_at_ms: row.opt_i64("ended_at")?,
            status: row.string("status")?,
            error: row.opt_string("error")?,
            duration_ms: row.opt_i64("duration_ms")?,
            sample_rate: row.opt_i32("sample_rate")?,
            channels: row.opt_i32("channels")?,
            bytes: row.opt_i64("bytes")?,
            silence_ratio: row.opt_f64("silence_ratio")?,
            spans: row.json("spans")?,
            waveform: row.json("waveform")?,
            campaign_id: row.opt_i64("campaign_id")?,
            kind: row.string("kind")?,
            mailbox_queue: row.opt_i64("mailbox_queue")?,
            mailbox_agent: row.opt_i64("mailbox_agent")?,
        })
    }
}

fn recording_values(r: &RecordingRow) -> Vec<Arg> {
    // A Vec<i64> always serialises.
    let agents = Value::from(r.agents.clone());
    args![
        r.id,
        r.tenant,
        r.call_id,
        r.leg,
        r.queue_id,
        &agents,
        r.caller_number.as_str(),
        r.mode.as_str(),
        r.capture.as_str(),
        r.fell_back,
        r.stereo,
        r.path.as_str(),
        r.started_at_ms,
        r.ended_at_ms,
        r.status.as_str(),
        r.error.as_deref(),
        r.duration_ms,
        r.sample_rate,
        r.channels,
        r.bytes,
        r.silence_ratio,
        &r.spans,
        &r.waveform,
        r.campaign_id,
        r.kind.as_str(),
        r.mailbox_queue,
        r.mailbox_agent,
    ]
}

/// A recording row against the one stored under its id (see the module doc). One recording
/// is the same tenant, call, leg and start: the open row and the final record stamp the start
/// from the same engine instant, so they agree to the millisecond.
fn recording_versus(old: &RecordingRow, new: &RecordingRow) -> Versus {
    if old == new {
        return Versus::Same;
    }
    let one_recording = old.tenant == new.tenant
        && old.call_id == new.call_id
        && old.leg == new.leg
        && old.started_at_ms == new.started_at_ms;
    match (old.status == OPEN_RECORDING, new.status == OPEN_RECORDING) {
        (true, false) if one_recording => Versus::Replaces,
        // Its open row again after the final one (a replay): nothing new.
        (_, true) if one_recording => Versus::Same,
        _ => Versus::Collides,
    }
}

impl Store {
    /// Saves recordings: open rows and final records (see the module doc for a recording
    /// already stored). With a journal, an outage does not lose them (see [`super::spool`]).
    pub async fn insert_recordings(&self, rows: &[RecordingRow]) -> Result<(), StoreError> {
        if let Some(done) = self
            .spooled(|| Op::Recordings {
                rows: rows.to_vec(),
            })
            .await
        {
            return done;
        }
        const SELECT: &str = concat!(
            "SELECT ",
            recording_cols!(),
            " FROM recordings WHERE id IN "
        );
        const HEAD: &str = concat!("INSERT INTO recordings (", recording_cols!(), ")");
        self.insert_records(
            "recording",
            SELECT,
            "DELETE FROM recordings WHERE id = $1",
            rows,
            |r| r.id,
            recording_versus,
            |rows| {
                let mut statements = insert_statements(HEAD, "", rows, |r| recording_values(r));
                let events: Vec<_> = rows
                    .iter()
                    .flat_map(|r| super::outbox::recording_events(r))
                    .collect();
                statements.extend(super::outbox::outbox_statements(&events));
                statements
            },
        )
        .await
    }

    /// The call's recordings (`call_id` is its arrival leg), oldest first (at most
    /// [`MAX_PER_CALL`]; a call has one, or one per callback leg).
    pub async fn recordings_for_call(
        &self,
        tenant: TenantId,
        call_id: Uuid,
    ) -> Result<Vec<RecordingRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            recording_cols!(),
            " FROM recordings WHERE tenant_id = $1 AND call_id = $2 \
             ORDER BY started_at, id LIMIT $3"
        );
        self.fetch_all(Use::Read, SQL, args![tenant, call_id, MAX_PER_CALL])
            .await
    }

    /// One recording of the tenant's (None: no such id, or another tenant's).
    pub async fn recording(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<RecordingRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            recording_cols!(),
            " FROM recordings WHERE tenant_id = $1 AND id = $2"
        );
        self.fetch_optional(Use::Read, SQL, args![tenant, id]).await
    }

    /// A recording whatever its tenant (the recordings service, which found it by id).
    pub async fn recording_any(&self, id: Uuid) -> Result<Option<RecordingRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            recording_cols!(),
            " FROM recordings WHERE id = $1"
        );
        self.fetch_optional(Use::Read, SQL, args![id]).await
    }

    /// Every recording the store holds open (its final record was not written), oldest
    /// first: what a restart must close. Not paged, like [`Store::open_calls`]: there are at
    /// most as many as calls were under way when the engine stopped.
    pub async fn open_recordings(&self) -> Result<Vec<RecordingRow>, StoreError> {
        // The status as a literal, not a bind: PostgreSQL plans a partial index
        // (`recordings_open`) only for a predicate it can see at planning time.
        const SQL: &str = concat!(
            "SELECT ",
            recording_cols!(),
            " FROM recordings WHERE status = 'recording' ORDER BY started_at, id"
        );
        self.fetch_all(Use::Read, SQL, args![]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_row() -> RecordingRow {
        RecordingRow {
            id: Uuid::from_u128(1),
            tenant: TenantId(Uuid::from_u128(2)),
            call_id: Uuid::from_u128(3),
            leg: Uuid::from_u128(4),
            queue_id: 5,
            campaign_id: None,
            agents: vec![],
            caller_number: String::new(),
            mode: String::new(),
            capture: String::new(),
            fell_back: false,
            stereo: false,
            path: String::new(),
            started_at_ms: 1_700_000_000_000,
            ended_at_ms: None,
            status: OPEN_RECORDING.into(),
            error: None,
            duration_ms: None,
            sample_rate: None,
            channels: None,
            bytes: None,
            silence_ratio: None,
            spans: Value::Array(vec![]),
            waveform: Value::Null,
            kind: CALL_RECORDING.into(),
            mailbox_queue: None,
            mailbox_agent: None,
        }
    }

    fn final_row() -> RecordingRow {
        RecordingRow {
            agents: vec![7],
            mode: "always".into(),
            capture: "live".into(),
            ended_at_ms: Some(1_700_000_060_000),
            status: "completed".into(),
            ..open_row()
        }
    }

    #[test]
    fn a_final_row_replaces_the_open_row_of_the_same_recording_only() {
        assert_eq!(
            recording_versus(&open_row(), &final_row()),
            Versus::Replaces
        );
        assert_eq!(recording_versus(&final_row(), &open_row()), Versus::Same);
        let other_call = RecordingRow {
            call_id: Uuid::from_u128(99),
            ..final_row()
        };
        assert_eq!(recording_versus(&open_row(), &other_call), Versus::Collides);
        let later_start = RecordingRow {
            started_at_ms: open_row().started_at_ms + 1,
            ..final_row()
        };
        assert_eq!(
            recording_versus(&open_row(), &later_start),
            Versus::Collides
        );
        let other_tenant = RecordingRow {
            tenant: TenantId(Uuid::from_u128(98)),
            ..final_row()
        };
        assert_eq!(
            recording_versus(&open_row(), &other_tenant),
            Versus::Collides
        );
    }

    #[test]
    fn a_row_journaled_before_voicemail_reads_as_a_calls_recording() {
        let mut old = serde_json::to_value(final_row()).unwrap();
        for field in ["kind", "mailbox_queue", "mailbox_agent"] {
            old.as_object_mut().unwrap().remove(field);
        }
        let row: RecordingRow = serde_json::from_value(old).unwrap();
        assert_eq!(row, final_row());
        assert_eq!(row.kind, CALL_RECORDING);
    }

    #[test]
    fn two_different_final_rows_collide_and_the_same_one_is_a_no_op() {
        assert_eq!(recording_versus(&final_row(), &final_row()), Versus::Same);
        let damaged = RecordingRow {
            status: "damaged".into(),
            error: Some("truncated".into()),
            ..final_row()
        };
        assert_eq!(recording_versus(&final_row(), &damaged), Versus::Collides);
    }
}
