//! Boot: the stored configuration fed to the running driver one command at a time, through
//! the same input an operator's change takes ([`DriverHandle::command`]), so that everything
//! the engine does in answer is carried out by the driver as in normal running: the
//! persistent lines of agents available before the restart are originated, records are
//! written, live events reach the live state.
//!
//! ```text
//!  Runtime::start_with_nodes: Engine::new (empty) ─▶ Driver::bind (callers held)
//!      └─▶ boot::load(store, driver handle) ─▶ [later steps] ─▶ admit_callers ─▶ API served
//!  boot::load:  tenants ─▶ queues ─▶ routes ─▶ agents (config, memberships, presence)
//!               ─▶ campaigns (config, ledger, contacts) ─▶ DNC ─▶ campaign states
//!               ─▶ live state checked against the engine
//! ```
//!
//! Order matters where the engine acts on a command at once: a campaign's DNC numbers are in
//! before any campaign is started (a running campaign dials half a second after its start),
//! and states come last, after every contact, as before. Agents come after every queue
//! (memberships name them).
//!
//! **Refusals.** A stored item that does not parse, fails validation, or that the engine
//! refuses is logged at ERROR with its id and skipped; the others load. Unparseable JSON is
//! skipped too rather than stopping the start (as it did before): one row written by another
//! build or by hand must not keep every tenant's calls down, and the row stays in the store as
//! it is, readable and fixable through the API (a PATCH re-validates the whole config and
//! loads it). What depends on a skipped item is skipped with it and logged: memberships of a
//! skipped queue, a campaign whose queue is not running (the engine refuses it).
//!
//! **What boot writes back.** Nothing is suppressed: boot's records go through the store sink
//! like any other. They are few and each is an idempotent upsert of what was just read:
//! - `AgentState` for agents whose stored presence is not logged-out: the sink saves the same
//!   presence again (same value; presence carries no timestamp);
//! - `CampaignState` for running, paused and completed campaigns: the sink writes the same
//!   state again (`record_campaign_state` touches neither `updated_at` nor the audit log). A
//!   paused campaign is started then paused (the engine has no other way into `paused`), so
//!   `running` is written and then `paused`, in that order, within a few milliseconds;
//! - interval records of the statistics, as at any time.
//!
//! Its live events go to the live feed like any others (nobody is subscribed yet: the API is
//! served after boot). The live state is kept by the forwarder from those events; agents are
//! seeded as logged-out when loaded (as the API does on create), and once everything is fed
//! every agent's state is checked against the engine's and settled where the forwarder fell
//! behind ([`LiveState::settle_agent`] keeps the line state the events set).
//!
//! **Callers and API writes during boot.** The driver is bound with
//! [`DriverConfig::hold_callers`](switchyard_engine::driver::DriverConfig::hold_callers): a
//! caller arriving while boot runs waits with its socket open and is admitted, in order, once
//! the runtime calls `admit_callers` after boot. The API is not served until the runtime has
//! started, so no write can interleave with boot.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use switchyard_engine::driver::{DriverError, DriverHandle};
use switchyard_engine::{AgentId, Command, Membership, Presence, QueueId};
use tracing::{error, info};

use crate::directory::Directory;
use crate::grants::DialGrants;
use crate::live_state::LiveState;
use crate::model::TenantId;
use crate::runtime::{RuntimeError, route_name};
use crate::spec::{AgentSpec, QueueSpec};
use crate::store::Store;

/// What boot loaded, and what it left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootReport {
    pub queues: usize,
    pub agents: usize,
    pub campaigns: usize,
    /// Pending contacts handed to the engine.
    pub contacts: usize,
    /// Stored items left out (kind, id), each logged with the reason.
    pub skipped: Vec<(&'static str, i64)>,
}

impl BootReport {
    /// Logs a stored item left out and counts it.
    pub(crate) fn skip(&mut self, kind: &'static str, id: i64, reason: &dyn std::fmt::Display) {
        error!(kind, id, %reason, "a stored {kind} was not loaded; the others were");
        self.skipped.push((kind, id));
    }
}

/// The engine's answer to one boot command: `Ok(false)` when it refused (logged, skipped),
/// an error only when the driver is gone.
pub(crate) async fn feed(
    engine: &DriverHandle,
    cmd: Command,
    report: &mut BootReport,
    kind: &'static str,
    id: i64,
) -> Result<bool, RuntimeError> {
    match engine.command(cmd).await {
        Ok(()) => Ok(true),
        Err(DriverError::Engine(e)) => {
            report.skip(kind, id, &e);
            Ok(false)
        }
        Err(e) => Err(RuntimeError::Driver(e)),
    }
}

/// Feeds every tenant's stored configuration to the running engine (see the module doc);
/// returns when all of it has been fed and the live state checked. Errors only when the store
/// cannot be read or the driver stopped.
pub async fn load(
    store: &Store,
    engine: &DriverHandle,
    directory: &Directory,
    live: &LiveState,
) -> Result<BootReport, RuntimeError> {
    let mut report = BootReport::default();
    let all = store.list_tenants().await?;
    let tenants: HashMap<TenantId, String> = all.iter().map(|t| (t.id, t.name.clone())).collect();
    // A row outside its tenant's grants is not loaded (reported as skipped, so never dialled).
    let grants: HashMap<TenantId, DialGrants> = all.into_iter().map(|t| (t.id, t.grants)).collect();
    let none = DialGrants::default();
    let grants_of = |t: &TenantId| grants.get(t).unwrap_or(&none);

    let mut routes = HashMap::new();
    let mut running: HashSet<QueueId> = HashSet::new();
    for q in store.all_queues().await? {
        let spec: QueueSpec = match serde_json::from_value(q.config.clone()) {
            Ok(s) => s,
            Err(e) => {
                report.skip("queue", q.id, &format!("config does not parse: {e}"));
                continue;
            }
        };
        let name = route_name(tenants.get(&q.tenant).map_or("", String::as_str), &q.name);
        let cfg = match spec.to_engine(q.id, &name, grants_of(&q.tenant)) {
            Ok(c) => c,
            Err(e) => {
                report.skip("queue", q.id, &format!("config.{}: {}", e.field, e.message));
                continue;
            }
        };
        let id = cfg.id;
        // Filed before the command: the forwarder may see the engine's answer (a paused
        // queue's event) before the reply reaches us.
        directory.set_queue(id, q.tenant);
        if !feed(
            engine,
            Command::UpsertQueue(Box::new(cfg)),
            &mut report,
            "queue",
            q.id,
        )
        .await?
        {
            directory.remove_queue(id);
            continue;
        }
        running.insert(id);
        for n in spec.numbers {
            routes.insert(n, id);
        }
        routes.insert(name, id);
        report.queues += 1;
    }
    // Only queues that run are routed to: a number of a skipped queue is unrouted.
    engine.set_routes(routes).await?;

    let mut members: HashMap<i64, Vec<Membership>> = HashMap::new();
    for m in store.all_members().await? {
        let Some(queue) = u32::try_from(m.queue_id).ok().map(QueueId) else {
            continue;
        };
        if !running.contains(&queue) {
            // Logged with its queue; the agent loads without it.
            continue;
        }
        members.entry(m.agent_id).or_default().push(Membership {
            queue,
            level: u32::try_from(m.level).unwrap_or(1),
            position: u32::try_from(m.position).unwrap_or(1),
            weight: u32::try_from(m.weight).unwrap_or(1),
        });
    }
    for a in store.all_agents().await? {
        let spec: AgentSpec = match serde_json::from_value(a.config.clone()) {
            Ok(s) => s,
            Err(e) => {
                report.skip("agent", a.id, &format!("config does not parse: {e}"));
                continue;
            }
        };
        let cfg = match spec.to_engine(a.id, &a.name, grants_of(&a.tenant)) {
            Ok(c) => c,
            Err(e) => {
                report.skip("agent", a.id, &format!("config.{}: {}", e.field, e.message));
                continue;
            }
        };
        let id = cfg.id;
        // Filed before the command, as the queues are.
        directory.set_agent(id, a.tenant);
        if !feed(
            engine,
            Command::UpsertAgent(Box::new(cfg)),
            &mut report,
            "agent",
            a.id,
        )
        .await?
        {
            directory.remove_agent(id);
            continue;
        }
        // As the API does for a new agent: logged out until the engine says otherwise.
        live.seed_agent(a.tenant, id, Value::from("logged-out"), None);
        report.agents += 1;
        let memberships = members.remove(&a.id).unwrap_or_default();
        if !memberships.is_empty() {
            feed(
                engine,
                Command::SetMemberships {
                    agent: id,
                    memberships,
                },
                &mut report,
                "agent membership",
                a.id,
            )
            .await?;
        }
        // An agent logged in before the restart is logged in after it (and an agent on a
        // persistent line gets its line, from the engine's answer to this command).
        let presence: Presence =
            serde_json::from_value(a.presence.clone()).unwrap_or(Presence::LoggedOut);
        if presence != Presence::LoggedOut {
            feed(
                engine,
                Command::SetAgentPresence {
                    agent: id,
                    presence,
                },
                &mut report,
                "agent presence",
                a.id,
            )
            .await?;
        }
    }

    crate::campaign_runtime::load(store, engine, directory, &mut report).await?;
    settle_live(engine, directory, live).await?;
    info!(
        queues = report.queues,
        agents = report.agents,
        campaigns = report.campaigns,
        contacts = report.contacts,
        skipped = report.skipped.len(),
        "configuration loaded from the store"
    );
    Ok(report)
}

/// Sets every agent's state in the live state to the engine's (see the module doc).
async fn settle_live(
    engine: &DriverHandle,
    directory: &Directory,
    live: &LiveState,
) -> Result<(), RuntimeError> {
    let states: Vec<(AgentId, Value, Option<String>)> = engine
        .query(|e| {
            e.agent_ids()
                .filter_map(|id| {
                    let a = e.agent_info(id)?;
                    let state = serde_json::to_value(a.state()).unwrap_or(Value::Null);
                    Some((id, state, a.break_reason()))
                })
                .collect()
        })
        .await?;
    for (agent, state, reason) in states {
        if let Some(t) = directory.agent_tenant(agent) {
            live.settle_agent(t, agent, state, reason);
        }
    }
    Ok(())
}
