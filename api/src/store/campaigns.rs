//! Outbound campaigns: their configuration and state, contacts (imported in batches), the
//! do-not-call lists, and the history the dialer writes (attempts, dispositions).
//!
//! Like the rest of the store, every tenant-owned statement matches the tenant in its WHERE
//! clause. Contact import is the one place with a read-merge-write transaction: a batch of up
//! to [`MAX_BATCH`] rows reads the campaign's existing contacts with the same numbers and the
//! DNC entries that cover them, merges, then inserts the new ones in one multi-row statement
//! and updates the merged ones, all in one transaction.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::AssertSqlSafe;

use super::history::Versus;
use super::rows::{FromStoreRow, IdRow, RowExt};
use super::{Arg, AuditEntry, AuditWrite, Inner, Store, StoreError, Use, check_name, now_ms};
use crate::model::TenantId;

/// Rows in one import transaction at most (the binds stay far under both backends' limits:
/// 7 per row).
pub const MAX_BATCH: usize = 2_000;

/// A campaign; `id` is the engine's `CampaignId`, `config` the API's spec as JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CampaignRow {
    pub id: i64,
    pub tenant: TenantId,
    pub name: String,
    pub config: Value,
    /// `draft`, `running`, `paused` or `completed`.
    pub state: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A contact of a campaign.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContactRow {
    pub id: i64,
    pub campaign_id: i64,
    pub number: String,
    pub zone: String,
    pub fields: Value,
    /// `pending`, `done` or `dnc`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at_ms: i64,
    pub last_outcome: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One valid row of an import, normalised.
#[derive(Clone, Debug, PartialEq)]
pub struct ContactInput {
    /// E.164.
    pub number: String,
    pub zone: String,
    /// Extra columns (empty values already dropped: they never overwrite).
    pub fields: Map<String, Value>,
}

/// What one import batch did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportBatch {
    /// New contacts stored.
    pub inserted: u64,
    /// Rows that merged into a contact (earlier in the batch, or already in the campaign).
    pub merged: u64,
    /// Rows whose number is on a DNC list (stored with status `dnc`).
    pub dnc: u64,
    /// Contacts new or changed by this batch that are pending: for the engine.
    pub pending: Vec<ContactRow>,
}

/// One dial, as the history keeps it. `contact_*` is what the dial did to its contact.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttemptRow {
    pub tenant: TenantId,
    pub campaign_id: i64,
    pub contact_id: i64,
    pub leg: String,
    pub attempt: i32,
    pub outcome: String,
    pub call_id: Option<i64>,
    pub agent_id: Option<i64>,
    pub dialed_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: i64,
    /// The contact's new status (`pending` to retry, `done`).
    #[serde(skip)]
    pub contact_status: String,
    #[serde(skip)]
    pub contact_next_attempt_at_ms: i64,
    /// The contact's attempts after this one (one less than `attempt` for a dial the engine
    /// cancelled itself: it costs the contact nothing).
    #[serde(skip)]
    pub contact_attempts: i32,
    /// Detection said an answering machine (see the engine's ledger rule).
    pub machine: bool,
}

/// An agent's disposition of a campaign call.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct DispositionRow {
    pub tenant: TenantId,
    pub campaign_id: i64,
    pub contact_id: i64,
    pub call_id: i64,
    pub agent_id: Option<i64>,
    pub code: String,
    pub at_ms: i64,
    pub retry_at_ms: Option<i64>,
}

/// A do-not-call entry: tenant-wide when `campaign_id` is None.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DncRow {
    pub id: i64,
    pub tenant: TenantId,
    pub campaign_id: Option<i64>,
    pub number: String,
    pub created_at_ms: i64,
}

/// The outcome of a dial's open attempt: written before its originate, replaced by its final
/// one (see the history module).
pub const OPEN_ATTEMPT: &str = "dialing";

/// A dial the store holds open (its attempt was written, its final one was not), with its
/// contact's number and zone: what a restart needs to judge it against the switch.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenDialRow {
    pub attempt: AttemptRow,
    pub number: String,
    pub zone: String,
}

impl FromStoreRow for OpenDialRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(OpenDialRow {
            attempt: AttemptRow::from_row(row)?,
            number: row.string("number")?,
            zone: row.string("zone")?,
        })
    }
}

/// An attempt against the one stored under its leg (see [`Store::insert_attempts`]).
fn attempt_versus(old: &AttemptRow, new: &AttemptRow) -> Versus {
    // The contact's columns are not the attempt's: stored rows read without them.
    let stored_part = AttemptRow {
        contact_status: String::new(),
        contact_next_attempt_at_ms: 0,
        contact_attempts: 0,
        ..new.clone()
    };
    if *old == stored_part {
        return Versus::Same;
    }
    let one_dial = old.tenant == new.tenant
        && old.campaign_id == new.campaign_id
        && old.contact_id == new.contact_id
        && old.attempt == new.attempt;
    match (old.outcome == OPEN_ATTEMPT, new.outcome == OPEN_ATTEMPT) {
        (true, false) if one_dial => Versus::Replaces,
        (_, true) if one_dial => Versus::Same,
        _ => Versus::Collides,
    }
}

/// What the ledger seed needs of an attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerAttempt {
    pub campaign_id: i64,
    pub outcome: String,
    pub machine: bool,
    /// The engine call it became, if any.
    pub call_id: Option<i64>,
    pub answered_at_ms: Option<i64>,
}

macro_rules! campaign_cols {
    () => {
        "id, tenant_id, name, config, state, created_at, updated_at"
    };
}
macro_rules! contact_cols {
    () => {
        "id, campaign_id, number, zone, fields, status, attempts, next_attempt_at, last_outcome, \
         created_at, updated_at"
    };
}
macro_rules! attempt_cols {
    () => {
        "tenant_id, campaign_id, contact_id, leg, attempt, outcome, call_id, agent_id, dialed_at, \
         answered_at, ended_at, machine"
    };
}
macro_rules! dnc_cols {
    () => {
        "id, tenant_id, campaign_id, number, created_at"
    };
}

/// An attempt's row and what it did to its contact.
fn attempt_statements(r: &AttemptRow) -> [(sqlx::SqlStr, Vec<Arg>); 2] {
    [
        (
            sqlx::SqlStr::from_static(concat!(
                "INSERT INTO campaign_attempts (",
                attempt_cols!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            )),
            args![
                r.tenant,
                r.campaign_id,
                r.contact_id,
                r.leg.as_str(),
                r.attempt,
                r.outcome.as_str(),
                r.call_id,
                r.agent_id,
                r.dialed_at_ms,
                r.answered_at_ms,
                r.ended_at_ms,
                r.machine
            ],
        ),
        // A contact closed as DNC meanwhile stays closed.
        (
            sqlx::SqlStr::from_static(
                "UPDATE contacts SET attempts = $2, last_outcome = $3, \
                 status = CASE WHEN status = 'dnc' THEN status ELSE $4 END, \
                 next_attempt_at = $5, updated_at = $6 WHERE id = $1",
            ),
            args![
                r.contact_id,
                r.contact_attempts,
                r.outcome.as_str(),
                r.contact_status.as_str(),
                r.contact_next_attempt_at_ms,
                r.ended_at_ms
            ],
        ),
    ]
}

impl FromStoreRow for CampaignRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(CampaignRow {
            id: row.i64("id")?,
            tenant: row.tenant("tenant_id")?,
            name: row.string("name")?,
            config: row.json("config")?,
            state: row.string("state")?,
            created_at_ms: row.i64("created_at")?,
            updated_at_ms: row.i64("updated_at")?,
        })
    }
}

impl FromStoreRow for ContactRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(ContactRow {
            id: row.i64("id")?,
            campaign_id: row.i64("campaign_id")?,
            number: row.string("number")?,
            zone: row.string("zone")?,
            fields: row.json("fields")?,
            status: row.string("status")?,
            attempts: row.i32("attempts")?,
            next_attempt_at_ms: row.i64("next_attempt_at")?,
            last_outcome: row.opt_string("last_outcome")?,
            created_at_ms: row.i64("created_at")?,
            updated_at_ms: row.i64("updated_at")?,
        })
    }
}

impl FromStoreRow for AttemptRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(AttemptRow {
            tenant: row.tenant("tenant_id")?,
            campaign_id: row.i64("campaign_id")?,
            contact_id: row.i64("contact_id")?,
            leg: row.string("leg")?,
            attempt: row.i32("attempt")?,
            outcome: row.string("outcome")?,
            call_id: row.opt_i64("call_id")?,
            agent_id: row.opt_i64("agent_id")?,
            dialed_at_ms: row.i64("dialed_at")?,
            answered_at_ms: row.opt_i64("answered_at")?,
            ended_at_ms: row.i64("ended_at")?,
            contact_status: String::new(),
            contact_next_attempt_at_ms: 0,
            contact_attempts: 0,
            machine: row.bool("machine")?,
        })
    }
}

impl FromStoreRow for DncRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(DncRow {
            id: row.i64("id")?,
            tenant: row.tenant("tenant_id")?,
            campaign_id: row.opt_i64("campaign_id")?,
            number: row.string("number")?,
            created_at_ms: row.i64("created_at")?,
        })
    }
}

impl FromStoreRow for LedgerAttempt {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(LedgerAttempt {
            campaign_id: row.i64("campaign_id")?,
            outcome: row.string("outcome")?,
            machine: row.bool("machine")?,
            call_id: row.opt_i64("call_id")?,
            answered_at_ms: row.opt_i64("answered_at")?,
        })
    }
}

/// An attempt row's id with its page key.
#[derive(Debug)]
struct AttemptWithId(i64, AttemptRow);

impl FromStoreRow for AttemptWithId {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(AttemptWithId(row.i64("id")?, AttemptRow::from_row(row)?))
    }
}

/// `(campaign id, pacer JSON)`.
#[derive(Debug)]
struct PacerRow(i64, String);

impl FromStoreRow for PacerRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(PacerRow(row.i64("id")?, row.string("pacer")?))
    }
}

/// `(id, number)` of a contact just inserted.
#[derive(Debug)]
struct NumberRow(String);

impl FromStoreRow for NumberRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(NumberRow(row.string("number")?))
    }
}

fn tenant_audit<'e, 'a>(tenant: TenantId, entry: &'e AuditEntry<'a>) -> AuditWrite<'e, 'a> {
    AuditWrite {
        entry,
        tenant: Some(tenant),
    }
}

/// `$from, $from+1, ...` for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Merges `new` into `old`: every key of `new` wins (empty values were dropped upstream).
fn merge_fields(old: &Value, new: &Map<String, Value>) -> Value {
    let mut m = old.as_object().cloned().unwrap_or_default();
    for (k, v) in new {
        m.insert(k.clone(), v.clone());
    }
    Value::Object(m)
}

impl Store {
    // -----------------------------------------------------------------------------------------
    // Campaigns

    /// `Conflict { what: "campaign name" }` if the tenant has one of that name.
    pub async fn create_campaign(
        &self,
        tenant: TenantId,
        name: &str,
        config: Value,
        audit: &AuditEntry<'_>,
    ) -> Result<CampaignRow, StoreError> {
        check_name("name", name)?;
        let now = now_ms();
        let id = self
            .change(
                "campaign name",
                "INSERT INTO campaigns (tenant_id, name, config, state, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'draft', $4, $4) RETURNING id",
                args![tenant, name, &config, now],
                tenant_audit(tenant, audit),
                |row: &IdRow| row.0.to_string(),
            )
            .await?
            .ok_or_else(|| StoreError::Internal("INSERT ... RETURNING returned no row".into()))?;
        Ok(CampaignRow {
            id: id.0,
            tenant,
            name: name.to_owned(),
            config,
            state: "draft".into(),
            created_at_ms: now,
            updated_at_ms: now,
        })
    }

    pub async fn get_campaign(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> Result<Option<CampaignRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            campaign_cols!(),
            " FROM campaigns WHERE tenant_id = $1 AND id = $2"
        );
        self.fetch_optional(Use::Read, SQL, args![tenant, id]).await
    }

    pub async fn list_campaigns(&self, tenant: TenantId) -> Result<Vec<CampaignRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            campaign_cols!(),
            " FROM campaigns WHERE tenant_id = $1 ORDER BY id"
        );
        self.fetch_all(Use::Read, SQL, args![tenant]).await
    }

    /// Every tenant's campaigns (the engine loads them at start).
    pub async fn all_campaigns(&self) -> Result<Vec<CampaignRow>, StoreError> {
        const SQL: &str = concat!("SELECT ", campaign_cols!(), " FROM campaigns ORDER BY id");
        self.fetch_all(Use::Read, SQL, args![]).await
    }

    /// Renames and/or replaces the config; None if the tenant has no such campaign.
    pub async fn update_campaign(
        &self,
        tenant: TenantId,
        id: i64,
        name: Option<&str>,
        config: Option<Value>,
        audit: &AuditEntry<'_>,
    ) -> Result<Option<CampaignRow>, StoreError> {
        if let Some(name) = name {
            check_name("name", name)?;
        }
        const SQL: &str = concat!(
            "UPDATE campaigns SET name = COALESCE($3, name), config = COALESCE($4, config), \
             updated_at = $5 WHERE tenant_id = $1 AND id = $2 RETURNING ",
            campaign_cols!()
        );
        self.change(
            "campaign name",
            SQL,
            args![tenant, id, name, config.map(|c| c.to_string()), now_ms()],
            tenant_audit(tenant, audit),
            |row: &CampaignRow| row.id.to_string(),
        )
        .await
    }

    /// As [`Store::restore_queue`], for campaigns (the state is not touched: it is not part
    /// of an update).
    pub async fn restore_campaign(
        &self,
        prev: &CampaignRow,
        audit: &AuditEntry<'_>,
    ) -> Result<Option<CampaignRow>, StoreError> {
        const SQL: &str = concat!(
            "UPDATE campaigns SET name = $3, config = $4, updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2 RETURNING ",
            campaign_cols!()
        );
        self.change(
            "campaign name",
            SQL,
            args![
                prev.tenant,
                prev.id,
                prev.name.as_str(),
                prev.config.to_string(),
                prev.updated_at_ms
            ],
            tenant_audit(prev.tenant, audit),
            |row: &CampaignRow| row.id.to_string(),
        )
        .await
    }

    /// An operator's state change, audited. None if the tenant has no such campaign.
    pub async fn set_campaign_state(
        &self,
        tenant: TenantId,
        id: i64,
        state: &str,
        audit: &AuditEntry<'_>,
    ) -> Result<Option<CampaignRow>, StoreError> {
        const SQL: &str = concat!(
            "UPDATE campaigns SET state = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
             RETURNING ",
            campaign_cols!()
        );
        let at = now_ms();
        self.change_then(
            "campaign",
            SQL,
            args![tenant, id, state, at],
            tenant_audit(tenant, audit),
            |row: &CampaignRow| row.id.to_string(),
            |row: &CampaignRow| {
                super::outbox::outbox_statements(&super::outbox::campaign_events(
                    tenant, row.id, &row.state, at, "api",
                ))
            },
        )
        .await
    }

    /// The engine's own state change (a campaign that ran out of contacts or past its end):
    /// runtime state, no audit row.
    ///
    /// A campaign the engine completed gets its `campaign.completed` message in the same
    /// transaction (once: its id is the campaign's, and it is made only while the stored state
    /// is not yet completed). Running and paused come from the API's controls, which file their
    /// own messages; boot writes those states again and must not announce them again.
    pub async fn record_campaign_state(
        &self,
        id: i64,
        state: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        if let Some(done) = self
            .spooled(|| super::spool::Op::CampaignState {
                id,
                state: state.to_owned(),
                at_ms,
            })
            .await
        {
            return done;
        }
        // The campaign's row first (as the API's controls do), so two writers of its state
        // queue on its lock rather than deadlock; the message only if this write completed it.
        let message = (state == "completed").then(|| {
            let data = serde_json::json!({
                "campaign_id": id, "state": state, "at_ms": at_ms, "by": "engine",
            });
            (super::outbox::completed_message_id(id), data)
        });
        with_pool!(self, Use::Write, |pool| {
            let mut tx = pool.begin().await?;
            let update = args![id, state];
            let changed: Option<TenantRowOf> = bind_args!(
                sqlx::query(
                    "UPDATE campaigns SET state = $2 WHERE id = $1 AND state <> $2 \
                     RETURNING tenant_id"
                ),
                &update
            )
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| TenantRowOf::from_row(&r))
            .transpose()?;
            if let (Some(changed), Some((msg, data))) = (changed, &message) {
                let insert = args![
                    msg.as_str(),
                    changed.0,
                    super::outbox::CAMPAIGN_COMPLETED,
                    at_ms,
                    data
                ];
                bind_args!(
                    sqlx::query(
                        "INSERT INTO webhook_outbox (id, tenant_id, event_type, occurred_at, \
                         data) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING"
                    ),
                    &insert
                )
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes the campaign with its contacts and campaign DNC entries (history stays).
    pub async fn delete_campaign(
        &self,
        tenant: TenantId,
        id: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let deleted: Option<IdRow> = self
            .change(
                "campaign",
                "DELETE FROM campaigns WHERE tenant_id = $1 AND id = $2 RETURNING id",
                args![tenant, id],
                tenant_audit(tenant, audit),
                |row: &IdRow| row.0.to_string(),
            )
            .await?;
        Ok(deleted.is_some())
    }

    // -----------------------------------------------------------------------------------------
    // Contacts

    /// Stores one batch of imported rows (at most [`MAX_BATCH`]) in one transaction: rows with
    /// a number already in the batch or the campaign merge into that contact (later non-empty
    /// fields win; its status and attempts stay), numbers on the tenant's or the campaign's
    /// DNC list are stored (or marked) `dnc`. The caller has checked the campaign is the
    /// tenant's.
    pub async fn import_contacts(
        &self,
        tenant: TenantId,
        campaign_id: i64,
        rows: Vec<ContactInput>,
    ) -> Result<ImportBatch, StoreError> {
        if rows.len() > MAX_BATCH {
            return Err(StoreError::invalid(
                "contacts",
                format!("at most {MAX_BATCH} per batch"),
            ));
        }
        let mut out = ImportBatch::default();
        // Duplicates within the batch first: one input per number, in first-seen order.
        let mut order: Vec<String> = Vec::new();
        let mut by_number: HashMap<String, ContactInput> = HashMap::new();
        for r in rows {
            match by_number.get_mut(&r.number) {
                Some(prev) => {
                    out.merged += 1;
                    if !r.zone.is_empty() {
                        prev.zone = r.zone;
                    }
                    for (k, v) in r.fields {
                        prev.fields.insert(k, v);
                    }
                }
                None => {
                    order.push(r.number.clone());
                    by_number.insert(r.number.clone(), r);
                }
            }
        }
        if order.is_empty() {
            return Ok(out);
        }
        let now = now_ms();
        let n = order.len();
        let existing_sql = format!(
            "SELECT {} FROM contacts WHERE campaign_id = $1 AND tenant_id = $2 AND number IN ({})",
            contact_cols!(),
            placeholders(3, n)
        );
        let dnc_sql = format!(
            "SELECT number FROM dnc WHERE tenant_id = $1 AND (campaign_id IS NULL OR campaign_id = $2) \
             AND number IN ({})",
            placeholders(3, n)
        );
        let mut lookup_args = args![campaign_id, tenant];
        lookup_args.extend(order.iter().map(|s| Arg::Text(s.clone())));
        let mut dnc_args = args![tenant, campaign_id];
        dnc_args.extend(order.iter().map(|s| Arg::Text(s.clone())));

        with_pool!(self, Use::Write, |pool| {
            let mut tx = pool.begin().await?;
            let existing: Vec<ContactRow> =
                bind_args!(sqlx::query(AssertSqlSafe(existing_sql)), &lookup_args)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(ContactRow::from_row)
                    .collect::<Result<_, _>>()?;
            let blocked: HashSet<String> =
                bind_args!(sqlx::query(AssertSqlSafe(dnc_sql)), &dnc_args)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|r| NumberRow::from_row(r).map(|n| n.0))
                    .collect::<Result<_, _>>()?;
            let existing: HashMap<String, ContactRow> = existing
                .into_iter()
                .map(|c| (c.number.clone(), c))
                .collect();

            // Merged into existing contacts: one UPDATE each (duplicates are the rare case).
            for number in &order {
                let Some(old) = existing.get(number) else {
                    continue;
                };
                let Some(new) = by_number.get(number) else {
                    continue;
                };
                out.merged += 1;
                let is_dnc = blocked.contains(number);
                if is_dnc {
                    out.dnc += 1;
                }
                let status = if is_dnc { "dnc" } else { old.status.as_str() };
                let fields = merge_fields(&old.fields, &new.fields);
                let zone = if new.zone.is_empty() {
                    old.zone.clone()
                } else {
                    new.zone.clone()
                };
                let a = args![old.id, zone.as_str(), &fields, status, now];
                bind_args!(
                    sqlx::query(
                        "UPDATE contacts SET zone = $2, fields = $3, status = $4, updated_at = $5 \
                         WHERE id = $1"
                    ),
                    &a
                )
                .execute(&mut *tx)
                .await?;
                if status == "pending" {
                    out.pending.push(ContactRow {
                        zone,
                        fields,
                        status: status.to_owned(),
                        updated_at_ms: now,
                        ..old.clone()
                    });
                }
            }

            // New contacts: one multi-row INSERT.
            let fresh: Vec<&ContactInput> = order
                .iter()
                .filter(|n| !existing.contains_key(*n))
                .filter_map(|n| by_number.get(n))
                .collect();
            if !fresh.is_empty() {
                let mut sql = String::from(
                    "INSERT INTO contacts (campaign_id, tenant_id, number, zone, fields, status, \
                     created_at, updated_at) VALUES ",
                );
                let mut a: Vec<Arg> = args![campaign_id, tenant, now];
                for (i, c) in fresh.iter().enumerate() {
                    let base = 4 + i * 4;
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!(
                        "($1, $2, ${}, ${}, ${}, ${}, $3, $3)",
                        base,
                        base + 1,
                        base + 2,
                        base + 3
                    ));
                    let is_dnc = blocked.contains(&c.number);
                    if is_dnc {
                        out.dnc += 1;
                    }
                    a.push(Arg::Text(c.number.clone()));
                    a.push(Arg::Text(c.zone.clone()));
                    a.push(Arg::Text(Value::Object(c.fields.clone()).to_string()));
                    a.push(Arg::Text(if is_dnc { "dnc" } else { "pending" }.into()));
                }
                sql.push_str(concat!(" RETURNING ", contact_cols!()));
                let inserted: Vec<ContactRow> = bind_args!(sqlx::query(AssertSqlSafe(sql)), &a)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| StoreError::from_sqlx(e, "contact"))?
                    .iter()
                    .map(ContactRow::from_row)
                    .collect::<Result<_, _>>()?;
                out.inserted = inserted.len() as u64;
                out.pending
                    .extend(inserted.into_iter().filter(|c| c.status == "pending"));
            }
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        Ok(out)
    }

    /// A page of the campaign's contacts in id order, after `after_id`, optionally of one
    /// status. Empty if the campaign is not the tenant's.
    pub async fn list_contacts(
        &self,
        tenant: TenantId,
        campaign_id: i64,
        status: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<ContactRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            contact_cols!(),
            " FROM contacts WHERE campaign_id = $1 AND tenant_id = $2 AND id > $3 \
             AND ($4 IS NULL OR status = $4) ORDER BY id LIMIT $5"
        );
        self.fetch_all(
            Use::Read,
            SQL,
            args![campaign_id, tenant, after_id, status, limit],
        )
        .await
    }

    /// Pending contacts of a campaign after `after_id` (the engine is loaded in pages). A
    /// contact whose dial is open (its last outcome `dialing`) is not: the restart judges
    /// that dial against the switch first and puts the contact back in line if due.
    pub async fn pending_contacts(
        &self,
        campaign_id: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<ContactRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            contact_cols!(),
            " FROM contacts WHERE campaign_id = $1 AND status = 'pending' AND id > $2 \
             AND COALESCE(last_outcome, '') <> 'dialing' ORDER BY id LIMIT $3"
        );
        self.fetch_all(Use::Read, SQL, args![campaign_id, after_id, limit])
            .await
    }

    /// Contacts not finished (status `pending`).
    pub async fn count_pending(
        &self,
        tenant: TenantId,
        campaign_id: i64,
    ) -> Result<i64, StoreError> {
        let row: Option<IdRow> = self
            .fetch_optional(
                Use::Read,
                "SELECT COUNT(*) AS id FROM contacts WHERE campaign_id = $1 AND tenant_id = $2 \
                 AND status = 'pending'",
                args![campaign_id, tenant],
            )
            .await?;
        Ok(row.map_or(0, |r| r.0))
    }

    // -----------------------------------------------------------------------------------------
    // Do-not-call

    /// Adds numbers to the tenant's list (`campaign_id` None) or a campaign's, and closes the
    /// pending contacts holding them (status `dnc`). Returns how many entries were new. The
    /// caller has checked the campaign is the tenant's.
    pub async fn add_dnc(
        &self,
        tenant: TenantId,
        campaign_id: Option<i64>,
        numbers: &[String],
        audit: &AuditEntry<'_>,
    ) -> Result<u64, StoreError> {
        if numbers.is_empty() {
            return Ok(0);
        }
        if numbers.len() > MAX_BATCH {
            return Err(StoreError::invalid(
                "numbers",
                format!("at most {MAX_BATCH} at once"),
            ));
        }
        let now = now_ms();
        let mut insert =
            String::from("INSERT INTO dnc (tenant_id, campaign_id, number, created_at) VALUES ");
        let mut a: Vec<Arg> = args![tenant, campaign_id, now];
        for (i, n) in numbers.iter().enumerate() {
            if i > 0 {
                insert.push_str(", ");
            }
            insert.push_str(&format!("($1, $2, ${}, $3)", 4 + i));
            a.push(Arg::Text(n.clone()));
        }
        insert.push_str(" ON CONFLICT DO NOTHING");
        let close = format!(
            "UPDATE contacts SET status = 'dnc', updated_at = $3 WHERE tenant_id = $1 \
             AND ($2 IS NULL OR campaign_id = $2) AND status = 'pending' AND number IN ({})",
            placeholders(4, numbers.len())
        );
        let audit_args = super::audit_args(&tenant_audit(tenant, audit), audit.object_id.clone());
        with_pool!(self, Use::Write, |pool| {
            let mut tx = pool.begin().await?;
            let added = bind_args!(sqlx::query(AssertSqlSafe(insert)), &a)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "dnc entry"))?
                .rows_affected();
            bind_args!(sqlx::query(AssertSqlSafe(close)), &a)
                .execute(&mut *tx)
                .await?;
            bind_args!(sqlx::query(super::INSERT_AUDIT), &audit_args)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(added)
        })
    }

    /// Takes a number off a list. False if it was not on it. Contacts closed by it stay
    /// closed (re-import them to dial them again).
    pub async fn remove_dnc(
        &self,
        tenant: TenantId,
        campaign_id: Option<i64>,
        number: &str,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let removed: Option<IdRow> = self
            .change(
                "dnc entry",
                "DELETE FROM dnc WHERE tenant_id = $1 AND number = $3 AND \
                 (($2 IS NULL AND campaign_id IS NULL) OR campaign_id = $2) RETURNING id",
                args![tenant, campaign_id, number],
                tenant_audit(tenant, audit),
                |row: &IdRow| row.0.to_string(),
            )
            .await?;
        Ok(removed.is_some())
    }

    /// A page of a list in id order.
    pub async fn list_dnc(
        &self,
        tenant: TenantId,
        campaign_id: Option<i64>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<DncRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            dnc_cols!(),
            " FROM dnc WHERE tenant_id = $1 AND \
             (($2 IS NULL AND campaign_id IS NULL) OR campaign_id = $2) AND id > $3 \
             ORDER BY id LIMIT $4"
        );
        self.fetch_all(Use::Read, SQL, args![tenant, campaign_id, after_id, limit])
            .await
    }

    /// Every entry of every list (the engine is given them at start), in id order, paged.
    pub async fn all_dnc(&self, after_id: i64, limit: i64) -> Result<Vec<DncRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            dnc_cols!(),
            " FROM dnc WHERE id > $1 ORDER BY id LIMIT $2"
        );
        self.fetch_all(Use::Read, SQL, args![after_id, limit]).await
    }

    // -----------------------------------------------------------------------------------------
    // History

    /// Attempts with their contacts' new state, in one transaction. An attempt is one dial,
    /// known by its leg: the same attempt again is a no-op (its contact was updated with it),
    /// another attempt under a leg already stored is [`StoreError::Duplicate`] (see the
    /// history module) and leaves its contact as it is.
    pub async fn insert_attempts(&self, rows: &[AttemptRow]) -> Result<(), StoreError> {
        if let Some(done) = self
            .spooled(|| super::spool::Op::Attempts {
                rows: rows.iter().map(Into::into).collect(),
            })
            .await
        {
            return done;
        }
        const SELECT: &str = concat!(
            "SELECT ",
            attempt_cols!(),
            " FROM campaign_attempts WHERE leg IN "
        );
        self.insert_records(
            "attempt",
            SELECT,
            "DELETE FROM campaign_attempts WHERE leg = $1",
            rows,
            |r| r.leg.clone(),
            attempt_versus,
            |rows| rows.iter().flat_map(|r| attempt_statements(r)).collect(),
        )
        .await
    }

    pub async fn insert_dispositions(&self, rows: &[DispositionRow]) -> Result<(), StoreError> {
        if let Some(done) = self
            .spooled(|| super::spool::Op::Dispositions {
                rows: rows.to_vec(),
            })
            .await
        {
            return done;
        }
        self.insert_dispositions_guarded(rows, false).await
    }

    /// `once`: a disposition already stored (same call, code, time and agent) is not written
    /// again (a journal replay that may have committed before).
    pub(crate) async fn insert_dispositions_guarded(
        &self,
        rows: &[DispositionRow],
        once: bool,
    ) -> Result<(), StoreError> {
        let sql = if once {
            "INSERT INTO dispositions (tenant_id, campaign_id, contact_id, call_id, agent_id, \
             code, at, retry_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE NOT EXISTS \
             (SELECT 1 FROM dispositions WHERE call_id = $4 AND code = $6 AND at = $7 \
             AND campaign_id = $2)"
        } else {
            "INSERT INTO dispositions (tenant_id, campaign_id, contact_id, call_id, \
             agent_id, code, at, retry_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        };
        let statements = rows
            .iter()
            .map(|r| {
                (
                    sqlx::SqlStr::from_static(sql),
                    args![
                        r.tenant,
                        r.campaign_id,
                        r.contact_id,
                        r.call_id,
                        r.agent_id,
                        r.code.as_str(),
                        r.at_ms,
                        r.retry_at_ms
                    ],
                )
            })
            .collect();
        self.batch(statements).await
    }

    /// A page of the campaign's attempts, newest first, before `before_id` (0: from the top).
    /// Returns `(id, row)` pairs.
    pub async fn list_attempts(
        &self,
        tenant: TenantId,
        campaign_id: i64,
        before_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, AttemptRow)>, StoreError> {
        const SQL: &str = concat!(
            "SELECT id, ",
            attempt_cols!(),
            " FROM campaign_attempts WHERE campaign_id = $1 AND tenant_id = $2 \
             AND ($3 = 0 OR id < $3) ORDER BY id DESC LIMIT $4"
        );
        let rows: Vec<AttemptWithId> = self
            .fetch_all(Use::Read, SQL, args![campaign_id, tenant, before_id, limit])
            .await?;
        Ok(rows.into_iter().map(|r| (r.0, r.1)).collect())
    }

    /// Keeps the newest snapshot of each campaign's pacer (`(campaign id, JSON)`), in one
    /// transaction. Not journaled: a snapshot is a cache of what the attempts taught, and the
    /// next one replaces it.
    pub async fn save_pacers(&self, rows: &[(i64, String)]) -> Result<(), StoreError> {
        let statements = rows
            .iter()
            .map(|(id, pacer)| {
                (
                    sqlx::SqlStr::from_static("UPDATE campaigns SET pacer = $2 WHERE id = $1"),
                    args![*id, pacer.as_str()],
                )
            })
            .collect();
        self.batch(statements).await
    }

    /// Every campaign's pacer snapshot (`(campaign id, JSON)`), for the restore at start.
    pub async fn campaign_pacers(&self) -> Result<Vec<(i64, String)>, StoreError> {
        let rows: Vec<PacerRow> = self
            .fetch_all(
                Use::Read,
                "SELECT id, pacer FROM campaigns WHERE pacer IS NOT NULL",
                args![],
            )
            .await?;
        Ok(rows.into_iter().map(|r| (r.0, r.1)).collect())
    }

    /// Every dial the store holds open, oldest first, with its contact's number and zone.
    pub async fn open_dials(&self) -> Result<Vec<OpenDialRow>, StoreError> {
        const SQL: &str = "SELECT a.tenant_id, a.campaign_id, a.contact_id, a.leg, a.attempt, \
             a.outcome, a.call_id, a.agent_id, a.dialed_at, a.answered_at, a.ended_at, a.machine, \
             c.number, c.zone FROM campaign_attempts a JOIN contacts c ON c.id = a.contact_id \
             WHERE a.outcome = 'dialing' ORDER BY a.id";
        self.fetch_all(Use::Read, SQL, args![]).await
    }

    /// Attempts dialled at or after `since_ms`, every campaign, with what the ledger rule
    /// reads (the ledger seed at start).
    pub async fn ledger_attempts(&self, since_ms: i64) -> Result<Vec<LedgerAttempt>, StoreError> {
        self.fetch_all(
            Use::Read,
            "SELECT campaign_id, outcome, machine, call_id, answered_at FROM campaign_attempts \
             WHERE dialed_at >= $1",
            args![since_ms],
        )
        .await
    }
}

/// The `tenant_id` column alone.
struct TenantRowOf(crate::model::TenantId);

impl FromStoreRow for TenantRowOf {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(TenantRowOf(row.tenant("tenant_id")?))
    }
}
