//! The webhook outbox in the store, on SQLite and PostgreSQL: records make their messages in
//! the same write, a record written again makes no second message, messages are owed only to
//! the endpoints that want them, a claimed attempt cut off by a kill is owed again at the next
//! start, and replay and resend make messages owed again under their own ids.

mod store_common;

use std::collections::{HashMap, HashSet};

use serde_json::json;
use store_common::each_backend;
use switchyard_api::model::TenantId;
use switchyard_api::store::outbox::{
    AgentStateRow, AnswerRow, DeliveryState, DueDelivery, FanOutClaim,
};
use switchyard_api::store::{
    AuditEntry, CallRow, OPEN_CALL, Store, StoredSecret, WebhookAttemptRow,
};
use uuid::Uuid;

fn audit(tenant: Option<TenantId>) -> AuditEntry<'static> {
    AuditEntry {
        tenant,
        key_id: None,
        action: "test",
        object_kind: "test",
        object_id: String::new(),
        detail: json!({}),
    }
}

async fn tenant(store: &Store, name: &str) -> TenantId {
    store.create_tenant(name, &audit(None)).await.unwrap().id
}

async fn endpoint(store: &Store, t: TenantId, events: &[&str]) -> i64 {
    let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    store
        .create_webhook(
            t,
            "https://example.com/hook",
            "",
            &events,
            StoredSecret {
                secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
                created_at_ms: 0,
                expires_at_ms: None,
            },
            &audit(Some(t)),
        )
        .await
        .unwrap()
        .id
}

/// The log row of an attempt at `d`, answered `status` at `at_ms`.
fn attempt_at(d: &DueDelivery, at_ms: i64, status: i32) -> WebhookAttemptRow {
    WebhookAttemptRow {
        id: Uuid::new_v4(),
        tenant: d.tenant,
        endpoint_id: d.endpoint_id,
        message_id: d.message_id.clone(),
        event_type: d.event_type.clone(),
        attempt: d.attempts + 1,
        at_ms,
        status: Some(status),
        latency_ms: 5,
        response: None,
        error: None,
        delivered: (200..300).contains(&status),
    }
}

/// Files `d` delivered at `at_ms`, against its claim; whether that disabled the endpoint.
async fn file_delivered(store: &Store, d: &DueDelivery, at_ms: i64) -> bool {
    store
        .finish_delivery(
            &attempt_at(d, at_ms, 200),
            d.claimed_at_ms,
            DeliveryState::Delivered,
            None,
        )
        .await
        .unwrap()
}

fn open_call(t: TenantId, id: Uuid) -> CallRow {
    CallRow {
        id,
        tenant: t,
        queue_id: 4,
        queues: vec![4],
        agent_id: None,
        caller_number: "+15550001".into(),
        outcome: OPEN_CALL.into(),
        arrived_at_ms: 1_700_000_000_000,
        wait_ms: 0,
        talk_ms: 0,
        offers: 0,
        synthetic: false,
        callback_leg: None,
    }
}

fn final_call(t: TenantId, id: Uuid, outcome: &str) -> CallRow {
    CallRow {
        agent_id: Some(9),
        outcome: outcome.into(),
        wait_ms: 3_000,
        talk_ms: 60_000,
        offers: 1,
        ..open_call(t, id)
    }
}

fn types(messages: &[(String, String, serde_json::Value)]) -> Vec<&str> {
    messages.iter().map(|(_, t, _)| t.as_str()).collect()
}

#[tokio::test]
async fn a_call_makes_queued_then_completed_once_however_often_it_is_written() {
    each_backend(|store| async move {
        let t = tenant(&store, "acme").await;
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        store.insert_calls(&[open_call(t, a)]).await.unwrap();
        store.insert_calls(&[open_call(t, a)]).await.unwrap();
        store
            .insert_calls(&[final_call(t, a, "answered"), open_call(t, b)])
            .await
            .unwrap();
        // A replayed journal writes the same rows again.
        store
            .insert_calls(&[final_call(t, a, "answered")])
            .await
            .unwrap();
        store
            .insert_calls(&[final_call(t, b, "abandoned")])
            .await
            .unwrap();
        let m = store.outbox_messages(t).await.unwrap();
        assert_eq!(
            types(&m),
            [
                "call.queued",
                "call.completed",
                "call.queued",
                "call.abandoned"
            ]
        );
        let completed = &m[1].2;
        assert_eq!(completed["call_id"], a.to_string());
        assert_eq!(completed["outcome"], "answered");
        assert_eq!(completed["agent_id"], 9);
        assert_eq!(completed["wait_ms"], 3_000);
        // Ids are stable and distinct per event.
        let ids: std::collections::HashSet<&str> = m.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(ids.len(), 4);
        assert!(m.iter().all(|(id, _, _)| id.starts_with("msg_")));
    })
    .await;
}

#[tokio::test]
async fn answers_and_agent_states_are_filed_with_their_messages_once() {
    each_backend(|store| async move {
        let t = tenant(&store, "acme").await;
        let call = Uuid::new_v4();
        let answer = AnswerRow {
            call_id: call,
            tenant: t,
            queue_id: 4,
            agent_id: 9,
            caller_number: "+15550001".into(),
            answered_at_ms: 1_700_000_003_000,
            wait_ms: 3_000,
            callback_leg: None,
        };
        store
            .insert_answers(std::slice::from_ref(&answer))
            .await
            .unwrap();
        store.insert_answers(&[answer]).await.unwrap();
        let states = [
            AgentStateRow {
                tenant: t,
                agent_id: 9,
                at_ms: 1_700_000_000_000,
                state: "available".into(),
                reason: None,
            },
            AgentStateRow {
                tenant: t,
                agent_id: 9,
                at_ms: 1_700_000_100_000,
                state: "on-break".into(),
                reason: Some("lunch".into()),
            },
        ];
        store.insert_agent_states(&states).await.unwrap();
        store.insert_agent_states(&states).await.unwrap();
        let m = store.outbox_messages(t).await.unwrap();
        assert_eq!(
            types(&m),
            [
                "call.answered",
                "agent.state_changed",
                "agent.state_changed"
            ]
        );
        assert_eq!(m[2].2["reason"], "lunch");
        let kept = store.agent_states(t, 9, 0, i64::MAX).await.unwrap();
        assert_eq!(kept, states.to_vec(), "each state once, in order");
    })
    .await;
}

#[tokio::test]
async fn messages_are_owed_only_to_the_endpoints_of_their_tenant_that_want_them() {
    each_backend(|store| async move {
        let t = tenant(&store, "acme").await;
        let other = tenant(&store, "globex").await;
        let all = endpoint(&store, t, &[]).await;
        let completed_only = endpoint(&store, t, &["call.completed"]).await;
        let theirs = endpoint(&store, other, &[]).await;
        let a = Uuid::new_v4();
        store.insert_calls(&[open_call(t, a)]).await.unwrap();
        store
            .insert_calls(&[final_call(t, a, "answered")])
            .await
            .unwrap();
        let now = 1_800_000_000_000;
        assert_eq!(store.fan_out_outbox(now).await.unwrap(), 2);
        assert_eq!(store.fan_out_outbox(now).await.unwrap(), 0, "fanned once");
        let due = store.claim_due_deliveries(now, 60_000, 100).await.unwrap();
        let mut owed: Vec<(i64, &str)> = due
            .iter()
            .map(|d| (d.endpoint_id, d.event_type.as_str()))
            .collect();
        owed.sort();
        let mut expected = vec![
            (all, "call.queued"),
            (all, "call.completed"),
            (completed_only, "call.completed"),
        ];
        expected.sort();
        assert_eq!(owed, expected);
        assert!(due.iter().all(|d| d.endpoint_id != theirs && d.tenant == t));
        // Claimed: not due again within the lease.
        assert!(
            store
                .claim_due_deliveries(now + 59_000, 60_000, 100)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn a_fan_out_claims_first_attempts_within_each_endpoints_room_and_files_the_rest_behind() {
    each_backend(|store| async move {
        let t = tenant(&store, "acme").await;
        let roomy = endpoint(&store, t, &[]).await;
        let nearly_full = endpoint(&store, t, &[]).await;
        let behind = endpoint(&store, t, &[]).await;
        let replayed = endpoint(&store, t, &["call.queued"]).await;
        for _ in 0..3 {
            store
                .insert_calls(&[open_call(t, Uuid::new_v4())])
                .await
                .unwrap();
        }
        let now = 1_800_000_000_000;
        // A replay reaches the messages before their fan-out: owed, not claimed.
        assert_eq!(
            store
                .replay_webhook_since(t, replayed, 0, &[], now)
                .await
                .unwrap(),
            3
        );
        let held = HashMap::from([(nearly_full, 3)]);
        let behind_set = HashSet::from([behind]);
        let claim = FanOutClaim {
            lease_ms: 60_000,
            held: &held,
            per_endpoint: 4,
            behind: &behind_set,
            limit: 100,
        };
        let fanned = store.fan_out_claiming(now, Some(claim)).await.unwrap();
        assert_eq!((fanned.messages, fanned.stopped), (3, false));
        let claimed = fanned.claimed;
        let count = |e: i64| claimed.iter().filter(|d| d.endpoint_id == e).count();
        assert_eq!(count(roomy), 3, "room for all three");
        assert_eq!(count(nearly_full), 1, "three in hand already, four at most");
        assert_eq!(count(behind), 0, "older deliveries are due for it");
        assert_eq!(
            count(replayed),
            3,
            "the replay's owed rows are claimed as they are"
        );
        for d in &claimed {
            assert_eq!(d.event_type, "call.queued");
            assert_eq!(d.tenant, t);
            assert_eq!((d.attempts, d.claimed_at_ms), (0, now));
            assert_eq!(d.data["queue_id"], 4, "sent with its payload: {}", d.data);
        }
        // What was not claimed is due now, in the claim's hands; the claimed are not.
        let due = store.claim_due_deliveries(now, 60_000, 100).await.unwrap();
        let mut rest: Vec<i64> = due.iter().map(|d| d.endpoint_id).collect();
        rest.sort();
        let mut expected = vec![nearly_full, nearly_full, behind, behind, behind];
        expected.sort();
        assert_eq!(rest, expected);
        assert!(due.iter().all(|d| {
            !claimed.iter().any(|c| {
                (c.message_id.as_str(), c.endpoint_id) == (d.message_id.as_str(), d.endpoint_id)
            })
        }));
        // A claimed first attempt files against its claim like any other.
        let first = &claimed[0];
        file_delivered(&store, first, now + 10).await;
        // The lease runs out for everything else in hand (a kill): all of it is owed again.
        let again = store
            .claim_due_deliveries(now + 60_000, 60_000, 100)
            .await
            .unwrap();
        assert_eq!(again.len(), claimed.len() - 1 + due.len());
        assert!(again.iter().all(|d| {
            (d.message_id.as_str(), d.endpoint_id) != (first.message_id.as_str(), first.endpoint_id)
        }));

        // Whole messages, while the worker has room for their claims: the rest wait in the
        // outbox for the next pass.
        for _ in 0..2 {
            store
                .insert_calls(&[open_call(t, Uuid::new_v4())])
                .await
                .unwrap();
        }
        let none = HashMap::new();
        let nobody = HashSet::new();
        let claim = FanOutClaim {
            lease_ms: 60_000,
            held: &none,
            per_endpoint: 4,
            behind: &nobody,
            limit: 6,
        };
        let later = store
            .fan_out_claiming(now + 61_000, Some(claim))
            .await
            .unwrap();
        assert_eq!((later.messages, later.claimed.len()), (1, 4));
        assert!(later.stopped, "four more do not fit in two");
        assert_eq!(store.fan_out_outbox(now + 61_000).await.unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn an_attempt_cut_off_by_a_kill_is_owed_again_at_the_next_start_with_its_id() {
    each_backend(|store| async move {
        let t = tenant(&store, "acme").await;
        let e = endpoint(&store, t, &[]).await;
        store
            .insert_calls(&[open_call(t, Uuid::new_v4())])
            .await
            .unwrap();
        let now = 1_800_000_000_000;
        store.fan_out_outbox(now).await.unwrap();
        let first = store.claim_due_deliveries(now, 60_000, 10).await.unwrap();
        assert_eq!(first.len(), 1);
        // The process dies here; the next one starts a second later.
        assert_eq!(store.release_claims(now + 1_000).await.unwrap(), 1);
        let again = store
            .claim_due_deliveries(now + 1_000, 60_000, 10)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].message_id, first[0].message_id);
        assert_eq!(again[0].attempts, 0, "the cut-off attempt never finished");

        // Delivered, then replayed since before it: owed again, same id.
        assert!(!file_delivered(&store, &again[0], now + 1_100).await);
        assert_eq!(store.next_delivery_due().await.unwrap(), None);
        let n = store
            .replay_webhook_since(t, e, 0, &[], now + 2_000)
            .await
            .unwrap();
        assert_eq!(n, 1);
        let replayed = store
            .claim_due_deliveries(now + 2_000, 60_000, 10)
            .await
            .unwrap();
        assert_eq!(replayed[0].message_id, first[0].message_id);
        // Resend of a message that is not the tenant's: nothing.
        let other = tenant(&store, "globex").await;
        assert_eq!(
            store
                .resend_webhook_message(other, e, &first[0].message_id, now)
                .await
                .unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn a_410_disables_the_endpoint_once_and_leaves_its_messages_owed() {
    each_backend(|store| async move {
        let t = tenant(&store, "acme").await;
        let e = endpoint(&store, t, &[]).await;
        store
            .insert_calls(&[open_call(t, Uuid::new_v4())])
            .await
            .unwrap();
        let now = 1_800_000_000_000;
        store.fan_out_outbox(now).await.unwrap();
        let due = store.claim_due_deliveries(now, 60_000, 10).await.unwrap();
        let attempt = attempt_at(&due[0], now, 410);
        let disabled = store
            .finish_delivery(
                &attempt,
                due[0].claimed_at_ms,
                DeliveryState::RetryAt(now),
                Some("gone"),
            )
            .await
            .unwrap();
        assert!(disabled, "this attempt disabled it");
        let row = store.get_webhook(t, e).await.unwrap().unwrap();
        assert!(!row.enabled);
        assert_eq!(row.disabled_reason.as_deref(), Some("gone"));
        // Nothing is sent to a disabled endpoint, and nothing is lost: it is still owed.
        assert!(
            store
                .claim_due_deliveries(now + 1, 60_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let attempt = WebhookAttemptRow {
            id: Uuid::new_v4(),
            ..attempt
        };
        let again = store
            .finish_delivery(
                &attempt,
                due[0].claimed_at_ms,
                DeliveryState::RetryAt(now),
                Some("gone"),
            )
            .await
            .unwrap();
        assert!(!again, "announced once");
    })
    .await;
}

#[tokio::test]
async fn a_replay_during_an_attempt_stands_when_the_attempt_ends() {
    each_backend(|store| async move {
        let t = tenant(&store, "acme").await;
        let e = endpoint(&store, t, &[]).await;
        store
            .insert_calls(&[open_call(t, Uuid::new_v4())])
            .await
            .unwrap();
        let now = 1_800_000_000_000;
        store.fan_out_outbox(now).await.unwrap();
        let due = store.claim_due_deliveries(now, 60_000, 10).await.unwrap();
        // While the attempt is in flight, the owner replays everything.
        assert_eq!(
            store
                .replay_webhook_since(t, e, 0, &[], now + 10)
                .await
                .unwrap(),
            1
        );
        file_delivered(&store, &due[0], now + 20).await;
        let again = store
            .claim_due_deliveries(now + 30, 60_000, 10)
            .await
            .unwrap();
        assert_eq!(again.len(), 1, "the replay is still owed");
        assert_eq!(again[0].message_id, due[0].message_id);
    })
    .await;
}

#[tokio::test]
async fn history_past_its_retention_is_deleted_and_open_calls_and_newer_rows_stay() {
    each_backend(|store| async move {
        let t = tenant(&store, "acme").await;
        let (old, open, new) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let cutoff = 1_700_000_000_000 + 1;
        store
            .insert_calls(&[
                final_call(t, old, "answered"),
                open_call(t, open),
                CallRow {
                    arrived_at_ms: cutoff + 10,
                    ..final_call(t, new, "answered")
                },
            ])
            .await
            .unwrap();
        store
            .insert_agent_states(&[
                AgentStateRow {
                    tenant: t,
                    agent_id: 9,
                    at_ms: cutoff - 100,
                    state: "available".into(),
                    reason: None,
                },
                AgentStateRow {
                    tenant: t,
                    agent_id: 9,
                    at_ms: cutoff + 100,
                    state: "on-break".into(),
                    reason: Some("lunch".into()),
                },
            ])
            .await
            .unwrap();
        let pruned = store.prune_history(cutoff).await.unwrap();
        assert_eq!(pruned.calls, 1, "{pruned:?}");
        assert_eq!(pruned.agent_states, 1, "{pruned:?}");
        let open_calls = store.open_calls().await.unwrap();
        assert_eq!(open_calls.len(), 1, "a call still open is kept");
        let kept = store.agent_states(t, 9, 0, i64::MAX).await.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].state, "on-break");
        assert_eq!(store.prune_history(cutoff).await.unwrap().calls, 0);
    })
    .await;
}
