//! Inbound callers' journeys through their flows (migration 0017): written by the runtime
//! from the driver's journey records, read (tenant-scoped) for a call's detail.
//!
//! A journey is written once the walk is over; the same call's journey again (a batch retried
//! after a lost commit answer, a replay of the journal) replaces it, so writing is idempotent
//! and needs no duplicate check. With a journal, an outage does not lose them (see
//! [`super::spool`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::history::insert_statements;
use super::rows::{FromStoreRow, RowExt};
use super::spool::Op;
use super::{Arg, Store, StoreError, Use};
use crate::model::TenantId;

/// One caller's walk through its flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JourneyRow {
    /// The caller's leg: the call's id.
    pub call_id: Uuid,
    pub tenant: TenantId,
    /// The flow, by the id the API shows.
    pub flow_id: String,
    pub dialled: String,
    pub caller_number: String,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    /// Where the flow sent the caller; `None`: the caller hung up in the flow.
    pub routed: Option<String>,
    /// `{"entries": [{"node": .., "outcome": ..}], "dropped": n}`.
    pub journey: Value,
}

macro_rules! journey_cols {
    () => {
        "call_id, tenant_id, flow_id, dialled, caller_number, started_at, ended_at, routed, \
         journey"
    };
}

impl FromStoreRow for JourneyRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(JourneyRow {
            call_id: row.uuid("call_id")?,
            tenant: row.tenant("tenant_id")?,
            flow_id: row.string("flow_id")?,
            dialled: row.string("dialled")?,
            caller_number: row.string("caller_number")?,
            started_at_ms: row.i64("started_at")?,
            ended_at_ms: row.i64("ended_at")?,
            routed: row.opt_string("routed")?,
            journey: row.json("journey")?,
        })
    }
}

fn journey_values(r: &JourneyRow) -> Vec<Arg> {
    args![
        r.call_id,
        r.tenant,
        r.flow_id.as_str(),
        r.dialled.as_str(),
        r.caller_number.as_str(),
        r.started_at_ms,
        r.ended_at_ms,
        r.routed.as_deref(),
        &r.journey,
    ]
}

impl Store {
    /// Saves journeys; a call's journey again replaces the stored one.
    pub async fn insert_journeys(&self, rows: &[JourneyRow]) -> Result<(), StoreError> {
        if let Some(done) = self
            .spooled(|| Op::Journeys {
                rows: rows.to_vec(),
            })
            .await
        {
            return done;
        }
        const HEAD: &str = concat!("INSERT INTO call_journeys (", journey_cols!(), ")");
        const TAIL: &str = "ON CONFLICT (call_id) DO UPDATE SET tenant_id = excluded.tenant_id, \
             flow_id = excluded.flow_id, dialled = excluded.dialled, \
             caller_number = excluded.caller_number, started_at = excluded.started_at, \
             ended_at = excluded.ended_at, routed = excluded.routed, journey = excluded.journey";
        // One statement may not touch a row twice (PostgreSQL's ON CONFLICT): the last wins.
        let mut last: Vec<JourneyRow> = Vec::with_capacity(rows.len());
        for r in rows {
            match last.iter_mut().find(|x| x.call_id == r.call_id) {
                Some(x) => *x = r.clone(),
                None => last.push(r.clone()),
            }
        }
        let statements = insert_statements(HEAD, TAIL, &last, journey_values);
        self.batch(statements).await
    }

    /// The journey of the tenant's call `call_id` (None: no such call walked a flow, or
    /// another tenant's did).
    pub async fn journey(
        &self,
        tenant: TenantId,
        call_id: Uuid,
    ) -> Result<Option<JourneyRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            journey_cols!(),
            " FROM call_journeys WHERE tenant_id = $1 AND call_id = $2"
        );
        self.fetch_optional(Use::Read, SQL, args![tenant, call_id])
            .await
    }
}
