//! What a supervisor's screen shows, per tenant, kept current from the engine's live events:
//! agents and their states, calls waiting, ringing and talking, paused queues. It is the
//! snapshot a `/v1/live` subscriber starts from; the same events then follow as deltas. Every
//! delta is a state ("call X is now talking to agent 7"), so applying one twice is harmless.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::{Value, json};
use switchyard_engine::{AgentId, CallId, CallOutcome, LiveEvent, QueueId};
use uuid::Uuid;

use crate::http::sight::personal_fields;
use crate::http::{LiveHub, LiveMessage};
use crate::ids::IdCodec;
use crate::model::TenantId;
use crate::store::now_ms;

/// Ids in what this keeps and sends are the API's (`crate::ids`), never the engine's.
#[derive(Debug)]
pub struct LiveState {
    ids: IdCodec,
    inner: Mutex<HashMap<TenantId, TenantState>>,
    /// Engine call id -> (tenant, call uuid), for events that name calls by engine id only.
    calls: Mutex<HashMap<CallId, (TenantId, Uuid)>>,
}

#[derive(Debug, Default)]
struct TenantState {
    agents: BTreeMap<u32, Value>,
    calls: BTreeMap<Uuid, Value>,
    paused: BTreeMap<u32, bool>,
    /// The day's figures (`crate::wallboard`), as last published.
    figures: Option<Value>,
}

/// Calls kept per tenant at most (bounded memory; the oldest entries are not special, the
/// engine's own bounds keep this far from the cap in practice).
const MAX_CALLS: usize = 200_000;

impl LiveState {
    pub fn new(ids: IdCodec) -> LiveState {
        LiveState {
            ids,
            inner: Mutex::default(),
            calls: Mutex::default(),
        }
    }

    /// The id the API shows for an engine agent (32 bits: see `crate::ids`).
    fn agent(&self, a: AgentId) -> u32 {
        self.ids.agent(i64::from(a.0)) as u32
    }

    fn queue(&self, q: QueueId) -> u32 {
        self.ids.queue(i64::from(q.0)) as u32
    }

    /// Seeds an agent's state (at start, from the engine).
    pub fn seed_agent(
        &self,
        tenant: TenantId,
        agent: AgentId,
        state: Value,
        reason: Option<String>,
    ) {
        if let Ok(mut g) = self.inner.lock() {
            let a = self.agent(agent);
            g.entry(tenant).or_default().agents.insert(
                a,
                json!({ "id": a, "state": state, "reason": reason, "since_ms": now_ms() }),
            );
        }
    }

    /// Sets an agent's state and break reason as the engine reports them, keeping what else
    /// the entry holds (its line): the check after boot, for agents whose events the
    /// forwarder missed (it fell behind) while the configuration was fed.
    pub fn settle_agent(
        &self,
        tenant: TenantId,
        agent: AgentId,
        state: Value,
        reason: Option<String>,
    ) {
        let a = self.agent(agent);
        if let Ok(mut g) = self.inner.lock() {
            let entry = g
                .entry(tenant)
                .or_default()
                .agents
                .entry(a)
                .or_insert_with(|| json!({ "id": a }));
            merge(entry, &json!({ "state": state, "reason": reason }));
        }
    }

    pub fn forget_agent(&self, tenant: TenantId, agent: AgentId) {
        if let Ok(mut g) = self.inner.lock() {
            g.entry(tenant)
                .or_default()
                .agents
                .remove(&self.agent(agent));
        }
    }

    /// The tenant's current state, for a new subscriber.
    pub fn snapshot(&self, tenant: TenantId) -> Value {
        let Ok(g) = self.inner.lock() else {
            return Value::Null;
        };
        let Some(t) = g.get(&tenant) else {
            return json!({
                "server_time_ms": now_ms(),
                "agents": [],
                "calls": [],
                "paused_queues": [],
                "figures": null,
            });
        };
        json!({
            // The server's clock, so a screen can tick waits and times in state from the
            // `*_since_ms` fields whatever its own clock says.
            "server_time_ms": now_ms(),
            "agents": t.agents.values().collect::<Vec<_>>(),
            "calls": t.calls.values().collect::<Vec<_>>(),
            "paused_queues": t.paused.iter().filter(|(_, p)| **p).map(|(q, _)| q).collect::<Vec<_>>(),
            // The wallboard's figures of the day; `figures` deltas replace them whole.
            "figures": t.figures,
        })
    }

    /// Keeps the tenant's figures of the day for new subscribers' snapshots.
    pub fn set_figures(&self, tenant: TenantId, figures: Value) {
        if let Ok(mut g) = self.inner.lock() {
            g.entry(tenant).or_default().figures = Some(figures);
        }
    }

    /// Applies an engine event; returns the delta to publish, if it belongs to a tenant.
    pub fn apply(
        &self,
        ev: &LiveEvent,
        queue_tenant: impl Fn(QueueId) -> Option<TenantId>,
        agent_tenant: impl Fn(AgentId) -> Option<TenantId>,
    ) -> Option<LiveMessage> {
        let mut calls = self.calls.lock().ok()?;
        let mut g = self.inner.lock().ok()?;
        let (tenant, kind, mut data) = match ev {
            LiveEvent::CallQueued {
                call,
                leg,
                queue,
                position,
                caller_number,
                caller_name,
            } => {
                let tenant = queue_tenant(*queue)?;
                let id = Uuid::from_u128(leg.0);
                if calls.len() < MAX_CALLS * 4 {
                    calls.insert(*call, (tenant, id));
                }
                // When the caller started waiting: a move to another queue keeps it (the
                // delta of a move does not name it, and deltas merge). Who is calling is
                // personal: the feed masks it for those who may not see it (`http::sight`).
                // No agent: one whose offer ended (not taken, failed) no longer has the call,
                // nor sight of who it is.
                let v = json!({ "id": id, "queue_id": self.queue(*queue), "state": "waiting", "position": position, "waiting_since_ms": now_ms(),
                                "agent_id": null, "caller_number": caller_number, "caller_name": caller_name });
                (tenant, "call.queued", v)
            }
            LiveEvent::CallMoved { call, to, .. } => {
                let (tenant, id) = *calls.get(call)?;
                (
                    tenant,
                    "call.queued",
                    json!({ "id": id, "queue_id": self.queue(*to), "state": "waiting", "agent_id": null }),
                )
            }
            LiveEvent::CallOffered { call, agent, .. } => {
                let (tenant, id) = *calls.get(call)?;
                (
                    tenant,
                    "call.offered",
                    json!({ "id": id, "state": "ringing", "agent_id": self.agent(*agent) }),
                )
            }
            LiveEvent::CallAnswered {
                call,
                agent,
                queue,
                wait_s,
            } => {
                let (tenant, id) = *calls.get(call)?;
                (
                    tenant,
                    "call.answered",
                    json!({ "id": id, "queue_id": self.queue(*queue), "state": "talking", "agent_id": self.agent(*agent), "wait_s": wait_s }),
                )
            }
            LiveEvent::CallEnded { call, outcome } => {
                let (tenant, id) = calls.remove(call)?;
                let kind = if *outcome == CallOutcome::Abandoned {
                    "call.abandoned"
                } else {
                    "call.completed"
                };
                (
                    tenant,
                    kind,
                    json!({ "id": id, "state": "ended", "outcome": outcome }),
                )
            }
            LiveEvent::AgentState {
                agent,
                state,
                reason,
            } => {
                let tenant = agent_tenant(*agent)?;
                (
                    tenant,
                    "agent.state_changed",
                    json!({ "id": self.agent(*agent), "state": state, "reason": reason, "since_ms": now_ms() }),
                )
            }
            LiveEvent::AgentLine { agent, line } => {
                let tenant = agent_tenant(*agent)?;
                (
                    tenant,
                    "agent.line",
                    json!({ "id": self.agent(*agent), "line": line }),
                )
            }
            // Filed by the runtime (`campaign_runtime::live_message`): campaigns are not
            // part of the snapshot, each delta is the campaign's whole figures.
            LiveEvent::CallRecording { call, state } => {
                let (tenant, id) = *calls.get(call)?;
                (
                    tenant,
                    "call.recording",
                    json!({ "id": id, "recording": state }),
                )
            }
            // A desktop preview waits on its agent's screen: the call names the agent and the
            // contact (the forwarder adds the contact's fields, `add_call_details`).
            LiveEvent::PreviewReserved {
                call,
                agent,
                campaign,
                contact,
                number,
                expires_unix_ms,
            } => {
                let (tenant, id) = *calls.get(call)?;
                (
                    tenant,
                    "call.preview",
                    json!({ "id": id, "state": "reserved", "agent_id": self.agent(*agent), "preview": true,
                            "campaign_id": self.ids.campaign(i64::from(campaign.0)),
                            "contact_id": self.ids.contact(i64::try_from(contact.0).unwrap_or(i64::MAX)),
                            "contact_number": number, "expires_ms": expires_unix_ms }),
                )
            }
            LiveEvent::CampaignCall {
                call,
                campaign,
                contact,
                number,
            } => {
                let (tenant, id) = *calls.get(call)?;
                (
                    tenant,
                    "call.contact",
                    json!({ "id": id, "campaign_id": self.ids.campaign(i64::from(campaign.0)),
                            "contact_id": self.ids.contact(i64::try_from(contact.0).unwrap_or(i64::MAX)),
                            "contact_number": number }),
                )
            }
            LiveEvent::PreviewEnded { call, reason, .. } => {
                let (tenant, id) = *calls.get(call)?;
                (
                    tenant,
                    "call.preview_ended",
                    json!({ "id": id, "state": "waiting", "agent_id": null, "preview_ended": reason }),
                )
            }
            LiveEvent::Campaign(_)
            | LiveEvent::CallBridgeFailed { .. }
            | LiveEvent::CampaignPacing { .. } => return None,
            LiveEvent::QueuePaused { queue, paused } => {
                let tenant = queue_tenant(*queue)?;
                (
                    tenant,
                    "queue.paused",
                    json!({ "id": self.queue(*queue), "paused": paused }),
                )
            }
        };
        let t = g.entry(tenant).or_default();
        match kind {
            // Merged, not replaced: an agent's state and its line arrive as separate deltas.
            "agent.state_changed" | "agent.line" => {
                if let Some(id) = data["id"].as_u64().and_then(|v| u32::try_from(v).ok()) {
                    merge(t.agents.entry(id).or_insert_with(|| json!({})), &data);
                }
            }
            "queue.paused" => {
                if let Some(id) = data["id"].as_u64().and_then(|v| u32::try_from(v).ok()) {
                    t.paused
                        .insert(id, data["paused"].as_bool().unwrap_or(false));
                }
            }
            _ => {
                if let Some(id) = data["id"].as_str().and_then(|s| Uuid::parse_str(s).ok()) {
                    if data["state"] == "ended" {
                        t.calls.remove(&id);
                    } else if t.calls.len() < MAX_CALLS || t.calls.contains_key(&id) {
                        let entry = t.calls.entry(id).or_insert_with(|| json!({}));
                        // A caller queued again (an offer not taken) keeps its first wait
                        // start, in the snapshot and in the delta.
                        if let Some(since) = entry.get("waiting_since_ms").cloned()
                            && data.get("waiting_since_ms").is_some()
                        {
                            data["waiting_since_ms"] = since;
                        }
                        // Merge: an offer keeps the queue the call waited in.
                        merge(entry, &data);
                        // The agent a call goes to sees who it is with: the personal fields
                        // the call gathered so far go again with the delta that names the
                        // agent (the feed shows them whole to that agent alone).
                        if matches!(kind, "call.offered" | "call.answered" | "call.preview") {
                            copy_personal(entry, &mut data);
                        }
                    }
                }
            }
        }
        Some(LiveMessage { tenant, kind, data })
    }
}

impl LiveState {
    /// Adds what the store knows of a call (a preview's contact fields, its campaign's name)
    /// to the call in the snapshot and publishes it as a `kind` delta, if the call is still
    /// there: its id, its agent if it has one (who may see the personal fields whole) and
    /// every personal field it holds. Published under the state's lock, so no delta of the
    /// call's end can come between the check and the publication (a screen would show a
    /// call that has ended). Returns whether it was published.
    pub fn publish_details(
        &self,
        hub: &LiveHub,
        tenant: TenantId,
        kind: &'static str,
        call: Uuid,
        details: &Value,
    ) -> bool {
        let Ok(mut g) = self.inner.lock() else {
            return false;
        };
        let Some(entry) = g.get_mut(&tenant).and_then(|t| t.calls.get_mut(&call)) else {
            return false;
        };
        merge(entry, details);
        let mut data = json!({ "id": call });
        // What the details are of, and whose call it is (who sees them whole).
        for k in ["campaign_id", "contact_id", "agent_id"] {
            if let Some(v) = entry.get(k).filter(|v| !v.is_null()) {
                data[k] = v.clone();
            }
        }
        merge(&mut data, details);
        copy_personal(entry, &mut data);
        hub.publish(LiveMessage { tenant, kind, data });
        true
    }
}

/// Sets on `delta` every personal field `entry` holds (`http::sight`).
fn copy_personal(entry: &Value, delta: &mut Value) {
    for k in personal_fields() {
        if let Some(v) = entry.get(k) {
            delta[k] = v.clone();
        }
    }
}

/// Sets every field of `delta` on `entry`, keeping the fields it does not name.
fn merge(entry: &mut Value, delta: &Value) {
    if let (Value::Object(e), Value::Object(d)) = (entry, delta) {
        for (k, v) in d {
            e.insert(k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_engine::LegId;

    #[test]
    fn a_call_goes_from_waiting_to_talking_to_gone_in_the_snapshot() {
        let s = LiveState::new(IdCodec::new(b"test"));
        let t = TenantId(Uuid::new_v4());
        let qt = |_q: QueueId| Some(t);
        let at = |_a: AgentId| Some(t);
        let leg = LegId(7);
        s.apply(
            &LiveEvent::CallQueued {
                call: CallId(1),
                leg,
                queue: QueueId(2),
                position: 1,
                caller_number: "+12015550123".into(),
                caller_name: "Jane Roe".into(),
            },
            qt,
            at,
        )
        .unwrap();
        assert_eq!(s.snapshot(t)["calls"][0]["state"], "waiting");
        let m = s
            .apply(
                &LiveEvent::CallAnswered {
                    call: CallId(1),
                    agent: AgentId(3),
                    queue: QueueId(2),
                    wait_s: 4.0,
                },
                qt,
                at,
            )
            .unwrap();
        assert_eq!(m.kind, "call.answered");
        // The agent who answers is told who it is with (the feed shows it to that agent).
        assert_eq!(
            (&m.data["caller_number"], &m.data["caller_name"]),
            (&json!("+12015550123"), &json!("Jane Roe"))
        );
        assert_eq!(
            s.snapshot(t)["calls"][0]["agent_id"],
            IdCodec::new(b"test").agent(3)
        );
        let m = s
            .apply(
                &LiveEvent::CallRecording {
                    call: CallId(1),
                    state: "paused",
                },
                qt,
                at,
            )
            .unwrap();
        assert_eq!(m.kind, "call.recording");
        let call = &s.snapshot(t)["calls"][0];
        assert_eq!(
            (&call["recording"], &call["state"]),
            (&serde_json::json!("paused"), &serde_json::json!("talking")),
            "merged into the call: {call}"
        );
        let m = s
            .apply(
                &LiveEvent::CallEnded {
                    call: CallId(1),
                    outcome: CallOutcome::Answered,
                },
                qt,
                at,
            )
            .unwrap();
        assert_eq!(m.kind, "call.completed");
        assert_eq!(s.snapshot(t)["calls"], json!([]));
    }

    #[test]
    fn an_agents_line_and_state_are_kept_side_by_side_in_the_snapshot() {
        use switchyard_engine::LineState;
        use switchyard_engine::agent::AgentStateKind;
        let s = LiveState::new(IdCodec::new(b"test"));
        let t = TenantId(Uuid::new_v4());
        let qt = |_q: QueueId| Some(t);
        let at = |_a: AgentId| Some(t);
        s.seed_agent(t, AgentId(4), json!("available"), None);
        let m = s
            .apply(
                &LiveEvent::AgentLine {
                    agent: AgentId(4),
                    line: LineState::Up,
                },
                qt,
                at,
            )
            .unwrap();
        assert_eq!(
            (m.kind, &m.data),
            (
                "agent.line",
                &json!({"id": IdCodec::new(b"test").agent(4), "line": "up"})
            )
        );
        s.apply(
            &LiveEvent::AgentState {
                agent: AgentId(4),
                state: AgentStateKind::OnCall,
                reason: None,
            },
            qt,
            at,
        )
        .unwrap();
        let agent = &s.snapshot(t)["agents"][0];
        assert_eq!(
            (&agent["state"], &agent["line"]),
            (&json!("on-call"), &json!("up")),
            "{agent}"
        );
    }

    #[test]
    fn the_snapshot_carries_the_last_figures_of_the_day() {
        let s = LiveState::new(IdCodec::new(b"test"));
        let t = TenantId(Uuid::new_v4());
        assert_eq!(s.snapshot(t)["figures"], Value::Null);
        s.set_figures(t, json!({"total": {"handled": 3}}));
        s.set_figures(t, json!({"total": {"handled": 4}}));
        assert_eq!(s.snapshot(t)["figures"]["total"]["handled"], 4);
        // Another tenant's figures are not this one's.
        assert_eq!(s.snapshot(TenantId(Uuid::new_v4()))["figures"], Value::Null);
    }

    #[test]
    fn events_of_unknown_objects_are_not_published() {
        let s = LiveState::new(IdCodec::new(b"test"));
        let none = |_q: QueueId| None;
        let none_a = |_a: AgentId| None;
        assert!(
            s.apply(
                &LiveEvent::CallQueued {
                    call: CallId(1),
                    leg: LegId(1),
                    queue: QueueId(9),
                    position: 1,
                    caller_number: String::new(),
                    caller_name: String::new(),
                },
                none,
                none_a
            )
            .is_none()
        );
        assert!(
            s.apply(
                &LiveEvent::CallEnded {
                    call: CallId(1),
                    outcome: CallOutcome::Answered
                },
                none,
                none_a
            )
            .is_none()
        );
    }
}
