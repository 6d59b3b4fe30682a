//! The stored number plan, flows, IVR menus and schedules of every tenant, as the driver runs
//! them ([`InboundPlan`]): built whole from the store at boot and after every write that can
//! change where a caller goes, then handed to the driver, which new callers see at once.
//!
//! One plan serves every tenant: a dialled number reaches one tenant (the API refuses a number
//! another tenant routes), and flows, schedules and queues are keyed by the ids the API shows,
//! unique across tenants. A number no tenant routes takes the default flow only when exactly
//! one tenant set one; with several, nothing says whose it would be, so such a caller goes by
//! its dialled number as without a plan.

use std::collections::HashMap;
use std::sync::Arc;

use switchyard_dialplan::flow::{Known, Menu, NumberPlan, NumberRoute};
use switchyard_dialplan::schedule::Schedule;
use switchyard_engine::driver::InboundPlan;
use switchyard_engine::{AgentId, QueueId, SkillId};
use tracing::warn;

use crate::directory::Directory;
use crate::ids::{IdCodec, IdKind};
use crate::routes::flows::{stored_flow, stored_menu};
use crate::store::{Store, StoreError};

/// Stored menus by shown id: all `Flow::resolve_menus` asks of [`Known`].
struct Menus(HashMap<String, Menu>);

impl Known for Menus {
    fn queue(&self, _: &str) -> bool {
        true
    }
    fn agent(&self, _: &str) -> bool {
        true
    }
    fn schedule(&self, _: &str) -> bool {
        true
    }
    fn menu(&self, id: &str) -> Option<&Menu> {
        self.0.get(id)
    }
}

/// The plan of every tenant; `None` when no tenant has a number or a default flow (callers
/// then go by their dialled number or `switchyard_queue`, as before flows existed).
pub async fn build(
    store: &Store,
    ids: &IdCodec,
    directory: &Directory,
) -> Result<Option<InboundPlan>, StoreError> {
    let shown = |kind: IdKind, id: i64| ids.encode(kind, id).to_string();
    let mut numbers = Vec::new();
    let mut defaults = Vec::new();
    let mut flows = HashMap::new();
    let mut schedules = HashMap::new();
    let mut queues = HashMap::new();
    let mut skills = HashMap::new();
    let mut agents = HashMap::new();
    for tenant in store.list_tenants().await? {
        let t = tenant.id;
        let menus = Menus(
            store
                .list_menus(t)
                .await?
                .iter()
                .filter_map(|r| stored_menu(ids, r).map(|m| (m.id.clone(), m)))
                .collect(),
        );
        for row in store.list_flows(t).await? {
            let Some(flow) = stored_flow(ids, &row) else {
                continue;
            };
            directory.note_flow(flow.id.clone(), t);
            match flow.resolve_menus(&menus) {
                Ok(resolved) => {
                    flows.insert(flow.id.clone(), Arc::new(resolved));
                }
                Err(e) => {
                    warn!(flow = row.id, error = %e, "a stored flow does not resolve; its numbers go by number")
                }
            }
        }
        for row in store.list_schedules(t).await? {
            let compiled = serde_json::from_value::<Schedule>(row.config.clone())
                .map_err(|e| e.to_string())
                .and_then(|s| s.compile().map_err(|e| e.to_string()));
            match compiled {
                Ok(c) => {
                    schedules.insert(shown(IdKind::Schedule, row.id), c);
                }
                // The flow's schedule step then takes its closed branch (the runner's rule
                // for a schedule it cannot tell).
                Err(e) => {
                    warn!(schedule = row.id, error = %e, "a stored schedule does not compile")
                }
            }
        }
        for q in store.list_queues(t).await? {
            let Ok(id) = u32::try_from(q.id) else {
                continue;
            };
            // Only queues the engine runs.
            if directory.queue_tenant(QueueId(id)).is_some() {
                queues.insert(shown(IdKind::Queue, q.id), QueueId(id));
            }
        }
        for a in store.list_agents(t).await? {
            let Ok(id) = u32::try_from(a.id) else {
                continue;
            };
            if directory.agent_tenant(AgentId(id)).is_some() {
                agents.insert(shown(IdKind::Agent, a.id), AgentId(id));
            }
        }
        for s in store.list_skills(t).await? {
            let Ok(id) = u32::try_from(s.id) else {
                continue;
            };
            // A flow's `set` names a skill by its id as the API shows it, or by its name.
            skills.insert(shown(IdKind::Skill, s.id), SkillId(id));
            skills.entry(s.name.clone()).or_insert(SkillId(id));
        }
        for n in store.list_numbers(t).await? {
            numbers.push(NumberRoute {
                number: n.number,
                flow: shown(IdKind::Flow, n.flow_id),
            });
        }
        if let Some(f) = store.default_flow(t).await? {
            defaults.push(shown(IdKind::Flow, f));
        }
    }
    if numbers.is_empty() && defaults.is_empty() {
        return Ok(None);
    }
    let default_flow = match defaults.as_slice() {
        [one] => one.clone(),
        _ => String::new(),
    };
    let plan = NumberPlan {
        numbers,
        default_flow,
    };
    Ok(Some(InboundPlan {
        numbers: plan.index(),
        flows,
        schedules,
        queues,
        skills,
        agents,
    }))
}
