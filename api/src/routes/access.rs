//! Access changes made elsewhere reach this server: a key revoked, an agent deleted, a tenant
//! disabled or its grants narrowed by the admin CLI (which writes the database only), or by
//! another server on the same database. Every such change writes an audit entry in its own
//! transaction, so following the audit log is following the changes: every [`EVERY`] the
//! server reads the entries after the last it saw and drops the cached verifications they
//! concern, and applies narrowed grants to its running engine. The server's own routes have
//! done both already; doing it again is harmless (a cache entry gone, an engine row absent).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use uuid::Uuid;

use super::AppState;
use crate::http::HttpKit;
use crate::model::TenantId;
use crate::runtime::Runtime;
use crate::store::AuditRow;

/// How often the audit log is read: the longest a change made elsewhere takes to hold here.
pub const EVERY: Duration = Duration::from_secs(2);

/// Entries read at most per round; more wait for the next.
const BATCH: u32 = 500;

/// Follows the audit log from its current end until the runtime is dropped.
pub fn follow(rt: &Arc<Runtime>, kit: HttpKit) -> JoinHandle<()> {
    // Weak: the follower must not keep a stopped server's runtime alive.
    let rt: Weak<Runtime> = Arc::downgrade(rt);
    tokio::spawn(async move {
        let mut last = None;
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(rt) = rt.upgrade() else {
                return;
            };
            let st = AppState {
                rt,
                kit: kit.clone(),
            };
            let after = match last {
                Some(id) => id,
                // From the end of the log as it is at the start: what came before is in
                // what the start loaded.
                None => match st.rt.store.last_audit_id().await {
                    Ok(id) => id,
                    Err(e) => {
                        tracing::debug!(error = %e, "access changes: the audit log is not readable yet");
                        continue;
                    }
                },
            };
            match st.rt.store.access_changes_after(after, BATCH).await {
                Ok(rows) => {
                    for row in &rows {
                        apply(&st, row).await;
                    }
                    last = Some(rows.last().map_or(after, |r| r.id));
                }
                // The database away: the next round reads what was missed (the cache entries
                // of an outage are the kit's concern, see `http::auth`).
                Err(e) => {
                    last = Some(after);
                    tracing::debug!(error = %e, "access changes: the audit log is not readable");
                }
            }
        }
    })
}

async fn apply(st: &AppState, row: &AuditRow) {
    // Keys and the browser sessions made from them (a session's principal carries the id of
    // its key or display token) go together.
    let auth = &st.kit;
    match row.action.as_str() {
        "api_key.revoke" | "display_token.revoke" => {
            if let Ok(key) = row.object_id.parse::<Uuid>() {
                auth.invalidate(|p| p.key_id == key);
            }
        }
        "agent.delete" => {
            if let (Some(t), Ok(agent)) = (row.tenant, row.object_id.parse::<i64>()) {
                auth.invalidate(|p| p.tenant == Some(t) && p.agent_id == Some(agent));
            }
        }
        "tenant.update" => {
            if let Ok(t) = row.object_id.parse::<Uuid>() {
                auth.invalidate(|p| p.tenant == Some(TenantId(t)));
            }
        }
        "tenant.grants" => {
            if let Ok(t) = row.object_id.parse::<Uuid>()
                && let Err(e) = super::tenants::narrow_running(st, TenantId(t)).await
            {
                tracing::warn!(tenant = %t, error = ?e, "could not apply a tenant's narrowed grants");
            }
        }
        _ => {}
    }
}
