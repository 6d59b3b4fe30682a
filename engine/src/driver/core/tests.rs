//! The core stepped by hand: every request it sends is looked at and answered here, as the
//! switch would. The whole core against the fake switch is the root package's
//! `tests/driver_pair.rs`.

use std::time::{Duration, Instant};

use switchyard_esl::EventFormat;
use switchyard_esl::codec::{Event, Headers};

use super::*;
use crate::config::{AgentConfig, EngineConfig, Membership, QueueConfig};
use crate::driver::{Arrival, CallerInput, Origin, RouteKeys};
use crate::ids::{AgentId, QueueId};
use crate::io::{CallerInfo, Presence, Record};

const CORE: &str = "c0ffee00-0000-4000-8000-000000000001";

struct Bench {
    core: DriverCore,
    now: Instant,
    sent: Vec<(Ticket, Vec<EslRequest>)>,
    records: Vec<Record>,
    /// What the core asked of the media side.
    media: Vec<crate::driver::MediaRequest>,
    /// Report every record kept as soon as it is handed out (the store keeps up).
    keep_records: bool,
}

fn bench_with(tune: impl FnOnce(&mut DriverConfig)) -> Bench {
    let now = Instant::now();
    let mut cfg = DriverConfig::new("127.0.0.1:8021", "ClueCon").route("5000", QueueId(1));
    tune(&mut cfg);
    let engine = crate::Engine::new(EngineConfig::default(), 7, now);
    let core = DriverCore::new(cfg, engine, &[true], now).expect("config");
    let mut b = Bench {
        core,
        now,
        sent: Vec::new(),
        records: Vec::new(),
        media: Vec::new(),
        keep_records: true,
    };
    b.core.node_connected(now, 0, CORE, false);
    b.command(Command::UpsertQueue(Box::new(QueueConfig {
        id: QueueId(1),
        name: "sales".into(),
        ..QueueConfig::default()
    })));
    b.command(Command::UpsertAgent(Box::new(AgentConfig {
        id: AgentId(1),
        name: "ana".into(),
        contact: "user/1001".into(),
        ..AgentConfig::default()
    })));
    b.command(Command::SetMemberships {
        agent: AgentId(1),
        memberships: vec![Membership {
            queue: QueueId(1),
            level: 1,
            position: 1,
            weight: 1,
        }],
    });
    b.flush();
    // The sound check's questions are not what these tests are about: answered "present".
    b.answer_all_matching("global_getvar", "");
    b.answer_all_matching("file_exists", "true");
    // The takeover at the first connection finds an empty switch.
    b.answer_all_matching("show channels", "{\"row_count\":0}");
    b.sent.clear();
    b
}

fn bench() -> Bench {
    bench_with(|_| {})
}

fn event(name: &str, uuid: LegId, more: &[(&str, &str)]) -> Event {
    let uuid = uuid.to_string();
    let mut pairs = vec![("Event-Name", name), ("Unique-ID", uuid.as_str())];
    pairs.extend_from_slice(more);
    Event::from_parts(EventFormat::Plain, Headers::from_pairs(pairs), None)
}

fn leg(n: u128) -> LegId {
    LegId(0xABCD_0000_0000_0000_0000_0000_0000 + n)
}

impl Bench {
    fn command(&mut self, cmd: Command) {
        self.core.command(self.now, cmd).expect("accepted");
        self.flush();
    }

    fn flush(&mut self) {
        loop {
            while let Some(o) = self.core.poll_output() {
                match o {
                    CoreOutput::Send {
                        ticket, requests, ..
                    } => self.sent.push((ticket, requests)),
                    CoreOutput::Record(r) => self.records.push(r),
                    CoreOutput::Media(m) => self.media.push(m),
                    CoreOutput::Live(_) | CoreOutput::Connect { .. } => {}
                }
            }
            if !self.keep_records || self.core.records_unsettled() == 0 {
                return;
            }
            let n = self.core.records_handed_out();
            self.core.records_kept(self.now, n);
        }
    }

    fn available(&mut self) {
        self.command(Command::SetAgentPresence {
            agent: AgentId(1),
            presence: Presence::Available,
        });
    }

    fn arrive(&mut self, caller: LegId) -> Admission {
        let a = self.core.caller_arrived(
            self.now,
            Arrival {
                leg: caller,
                route: RouteKeys {
                    queue_var: None,
                    destination: Some("5000".into()),
                },
                caller: CallerInfo::default(),
                origin: Origin {
                    core_uuid: Some(CORE.into()),
                    ..Origin::default()
                },
            },
        );
        self.flush();
        a
    }

    fn lines(&self) -> Vec<String> {
        self.sent
            .iter()
            .flat_map(|(_, r)| r.iter())
            .map(|r| match r {
                EslRequest::Api(l) => format!("api {l}"),
                EslRequest::BgApi(l) => format!("bgapi {l}"),
                EslRequest::Execute { leg, app, arg, .. } => format!("sendmsg {leg} {app} {arg}"),
            })
            .collect()
    }

    /// The ticket whose first request starts with `prefix` (after `api `/`bgapi `).
    fn ticket(&self, prefix: &str) -> Option<Ticket> {
        self.sent.iter().find_map(|(t, r)| {
            let l = match r.first()? {
                EslRequest::Api(l) | EslRequest::BgApi(l) => l.clone(),
                EslRequest::Execute { app, arg, .. } => format!("{app} {arg}"),
            };
            l.starts_with(prefix).then_some(*t)
        })
    }

    fn answer(&mut self, ticket: Ticket, replies: Vec<Reply>) {
        self.sent.retain(|(t, _)| *t != ticket);
        self.core.answered(self.now, ticket, replies);
        self.flush();
    }

    fn answer_api(&mut self, prefix: &str, body: &str) {
        let t = self
            .ticket(prefix)
            .unwrap_or_else(|| panic!("no request {prefix:?} in {:?}", self.lines()));
        let n = self
            .sent
            .iter()
            .find(|(x, _)| *x == t)
            .map_or(1, |s| s.1.len());
        let replies = (0..n).map(|_| Ok(Answer::Api(body.into()))).collect();
        self.answer(t, replies);
    }

    fn answer_all_matching(&mut self, prefix: &str, body: &str) {
        while self.ticket(prefix).is_some() {
            self.answer_api(prefix, body);
        }
    }

    fn agent_leg(&self) -> LegId {
        self.core
            .originated
            .keys()
            .copied()
            .next()
            .expect("an agent leg was originated")
    }

    fn switch_event(&mut self, ev: Event) {
        self.core.switch_event(self.now, 0, &ev);
        self.flush();
    }

    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        while self.core.next_deadline() <= until {
            self.now = self.core.next_deadline().max(self.now);
            self.core.handle_timeout(self.now);
            self.flush();
        }
        self.now = until;
        self.core.handle_timeout(self.now);
        self.flush();
    }
}

#[test]
fn a_bridge_waits_for_the_originates_job_and_goes_out_at_its_ok() {
    let mut b = bench();
    b.available();
    let caller = leg(1);
    assert_eq!(b.arrive(caller), Admission::Accepted);
    let originate = b.ticket("originate").expect("the agent is dialled");
    let agent = b.agent_leg();
    b.switch_event(event("CHANNEL_ANSWER", agent, &[]));
    assert!(
        !b.lines().iter().any(|l| l.contains("uuid_bridge")),
        "no bridge while the originate owns the leg: {:?}",
        b.lines()
    );
    assert_eq!(b.core.stats().bridges_held, 1);
    b.answer(
        originate,
        vec![Ok(Answer::Job(format!("+OK {agent}\n").into()))],
    );
    let bridge = format!("api uuid_bridge {caller} {agent}");
    assert!(b.lines().contains(&bridge), "{:?}", b.lines());
}

#[test]
fn a_park_hands_the_leg_over_before_the_job_reports() {
    let mut b = bench();
    b.available();
    let caller = leg(1);
    b.arrive(caller);
    let agent = b.agent_leg();
    b.switch_event(event("CHANNEL_ANSWER", agent, &[]));
    b.switch_event(event("CHANNEL_PARK", agent, &[]));
    assert!(
        b.lines()
            .contains(&format!("api uuid_bridge {caller} {agent}")),
        "{:?}",
        b.lines()
    );
}

#[test]
fn commands_beyond_the_in_flight_bound_wait_their_turn_in_order() {
    let mut b = bench_with(|c| c.max_commands_in_flight = 1);
    let caller = leg(1);
    b.arrive(caller);
    // The caller is answered, then hears music: one of the engine's commands at a time (the
    // driver's own stamp of the arrival goes out beside them).
    assert_eq!(b.core.stats().backlog, 1);
    let arrived = b.core.engine.unix_ms(b.now);
    assert_eq!(
        b.lines(),
        [
            format!("api uuid_answer {caller}"),
            format!("api uuid_setvar {caller} switchyard_arrived {arrived}")
        ]
    );
    b.answer_api("uuid_setvar", "+OK\n");
    assert_eq!(b.core.stats().backlog, 1, "the stamp is not the engine's");
    b.answer_api("uuid_answer", "+OK\n");
    assert_eq!(b.core.stats().backlog, 0);
    assert!(
        b.lines()[0].starts_with(&format!("api uuid_broadcast {caller}")),
        "{:?}",
        b.lines()
    );
}

#[test]
fn a_kill_that_overtakes_its_originate_is_retried_until_the_job_reports() {
    let mut b = bench();
    b.available();
    let caller = leg(1);
    b.arrive(caller);
    let originate = b.ticket("originate").unwrap();
    let agent = b.agent_leg();
    // The caller leaves while the agent's phone is still being set up.
    b.core.caller_input(
        b.now,
        CallerInput::HungUp {
            leg: caller,
            cause: crate::io::HangupCause::Normal,
        },
    );
    b.flush();
    let kill = format!("uuid_kill {agent}");
    b.answer_api(&kill, "-ERR No such channel!\n");
    assert!(b.ticket(&kill).is_none());
    b.advance(Duration::from_millis(200));
    assert!(b.ticket(&kill).is_some(), "retried: {:?}", b.lines());
    // Once the job reports, a missing channel is simply gone.
    b.answer(
        originate,
        vec![Ok(Answer::Job(b"-ERR NO_ANSWER\n".to_vec()))],
    );
    b.answer_api(&kill, "-ERR No such channel!\n");
    b.advance(Duration::from_secs(1));
    assert!(b.ticket(&kill).is_none(), "{:?}", b.lines());
    assert!(!b.core.originated.contains_key(&agent));
}

#[test]
fn an_originate_that_fails_after_its_answer_has_its_leg_killed() {
    let mut b = bench();
    b.available();
    b.arrive(leg(1));
    let originate = b.ticket("originate").unwrap();
    let agent = b.agent_leg();
    b.switch_event(event("CHANNEL_ANSWER", agent, &[]));
    b.answer(
        originate,
        vec![Ok(Answer::Job(b"-ERR ORIGINATOR_CANCEL\n".to_vec()))],
    );
    assert!(b.ticket(&format!("uuid_kill {agent}")).is_some());
    assert_eq!(b.core.stats().originates_failed_after_answer, 1);
    assert_eq!(b.core.stats().bridges_failed, 1, "the held bridge is lost");
    // Tracked until its hangup, which files its CDR.
    assert!(b.core.originated.contains_key(&agent));
    b.switch_event(event(
        "CHANNEL_HANGUP_COMPLETE",
        agent,
        &[("Hangup-Cause", "NORMAL_CLEARING")],
    ));
    assert!(!b.core.originated.contains_key(&agent));
    assert!(
        b.records
            .iter()
            .any(|r| matches!(r, Record::Cdr(c) if c.leg == agent))
    );
}

#[test]
fn an_unrouted_caller_is_refused_with_the_configured_cause() {
    let mut b = bench_with(|c| c.unrouted_cause = "CALL_REJECTED".into());
    let a = b.core.caller_arrived(
        b.now,
        Arrival {
            leg: leg(9),
            route: RouteKeys {
                queue_var: Some("nowhere".into()),
                destination: Some("5000".into()),
            },
            caller: CallerInfo::default(),
            origin: Origin::default(),
        },
    );
    assert_eq!(
        a,
        Admission::Refused {
            cause: "CALL_REJECTED".into()
        }
    );
    assert_eq!(b.core.stats().calls_unrouted, 1);
}

#[test]
fn a_reconnect_resyncs_and_a_caller_the_switch_no_longer_lists_is_gone() {
    let mut b = bench();
    let (gone, kept) = (leg(1), leg(2));
    b.arrive(gone);
    b.arrive(kept);
    b.sent.clear();
    b.core.node_connected(b.now, 0, CORE, false);
    b.flush();
    let listing = format!(r#"{{"row_count":1,"rows":[{{"uuid":"{kept}"}}]}}"#);
    b.answer_api("show channels as json", &listing);
    assert_eq!(b.core.stats().resyncs, 1);
    assert!(!b.core.callers.contains(&gone));
    assert!(b.core.callers.contains(&kept));
    assert!(b.core.engine().owns_leg(kept));
    assert!(!b.core.engine().owns_leg(gone));
}

#[test]
fn a_stray_leg_of_ours_is_killed_at_its_second_listing_unless_bridged_or_foreign() {
    let mut b = bench();
    let (stray, talking, peer, foreign) = (leg(1), leg(2), leg(3), leg(4));
    let listing = format!(
        r#"{{"row_count":4,"rows":[
            {{"uuid":"{stray}","call_uuid":"{stray}"}},
            {{"uuid":"{talking}","call_uuid":"{talking}"}},
            {{"uuid":"{peer}","call_uuid":"{talking}"}},
            {{"uuid":"{foreign}","call_uuid":"{foreign}"}}]}}"#
    );
    b.advance(Duration::from_secs(30));
    b.answer_api("show channels as json", &listing);
    b.answer_api(&format!("uuid_getvar {stray} switchyard_leg"), "agent");
    b.answer_api(&format!("uuid_getvar {talking} switchyard_leg"), "agent");
    b.answer_api(&format!("uuid_getvar {peer} switchyard_leg"), "_undef_");
    b.answer_api(&format!("uuid_getvar {foreign} switchyard_leg"), "_undef_");
    assert!(b.sent.is_empty(), "nothing killed at the first listing");
    b.advance(Duration::from_secs(30));
    b.answer_api("show channels as json", &listing);
    assert_eq!(
        b.lines(),
        [format!("api uuid_kill {stray} NORMAL_CLEARING")],
        "only the unbridged leg of ours, and no question asked twice"
    );
    b.answer_api(&format!("uuid_kill {stray}"), "+OK\n");
    assert_eq!(b.core.stats().orphans_killed, 1);
}

#[test]
fn a_hangup_of_a_caller_files_its_cdr_under_its_queue() {
    let mut b = bench();
    let caller = leg(1);
    b.arrive(caller);
    b.switch_event(event(
        "CHANNEL_HANGUP_COMPLETE",
        caller,
        &[("Hangup-Cause", "NORMAL_CLEARING")],
    ));
    let cdr = b
        .records
        .iter()
        .find_map(|r| match r {
            Record::Cdr(c) if c.leg == caller => Some(c.clone()),
            _ => None,
        })
        .expect("a CDR");
    assert_eq!(cdr.queue, Some(QueueId(1)));
    assert_eq!(cdr.call_leg, Some(caller));
    assert!(!b.core.engine().owns_leg(caller));
}

#[test]
fn a_priority_change_is_written_on_the_callers_channel_for_its_return() {
    let mut b = bench();
    let caller = leg(1);
    b.arrive(caller);
    b.sent.clear();
    let call = b.core.engine().call_by_leg(caller).expect("a call");
    b.command(Command::SetCallPriority { call, priority: 7 });
    assert_eq!(
        b.lines(),
        [format!(
            "api uuid_setvar_multi {caller} switchyard_priority=7;switchyard_queue=sales"
        )]
    );
}

/// Steps a core whose only node was down at start through `d` of time; the nodes it asked to
/// connect to, with when.
fn connects_during(
    core: &mut DriverCore,
    now: &mut Instant,
    d: Duration,
) -> Vec<(Duration, usize)> {
    let start = *now;
    let until = start + d;
    let mut asked = Vec::new();
    loop {
        while let Some(o) = core.poll_output() {
            if let CoreOutput::Connect { node } = o {
                asked.push((now.duration_since(start), node));
            }
        }
        let next = core.next_deadline();
        if next > until {
            break;
        }
        *now = next.max(*now);
        core.handle_timeout(*now);
    }
    *now = until;
    asked
}

#[test]
fn a_core_whose_only_node_is_down_keeps_asking_to_connect_with_backoff_until_refused() {
    let mut now = Instant::now();
    let mut cfg = DriverConfig::new("127.0.0.1:8021", "ClueCon");
    cfg.esl.backoff.initial = Duration::from_millis(100);
    cfg.esl.backoff.max = Duration::from_millis(400);
    let engine = crate::Engine::new(EngineConfig::default(), 7, now);
    let mut core = DriverCore::new(cfg, engine, &[false], now).expect("config");
    assert!(!core.nodes[0].connected, "down at start");
    // First attempt after the initial delay; every failure doubles it up to the maximum.
    let mut asked = connects_during(&mut core, &mut now, Duration::from_millis(150));
    assert_eq!(asked, [(Duration::from_millis(100), 0)]);
    let refused = EslError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    let mut delays = Vec::new();
    for _ in 0..4 {
        core.node_unreachable(now, 0, &refused);
        asked = connects_during(&mut core, &mut now, Duration::from_secs(1));
        assert_eq!(asked.len(), 1, "one attempt per failure: {asked:?}");
        delays.push(asked[0].0);
    }
    assert_eq!(
        delays,
        [200, 400, 400, 400].map(Duration::from_millis),
        "doubling, capped at the backoff maximum"
    );
    // The switch answers but refuses the password: asking again would only repeat that.
    let wrong = EslError::AuthFailed {
        reply: "-ERR invalid".into(),
    };
    core.node_unreachable(now, 0, &wrong);
    assert!(connects_during(&mut core, &mut now, Duration::from_secs(60)).is_empty());
    // Reachable after all: connected once its stream says so.
    core.node_connected(now, 0, CORE, false);
    assert!(core.nodes[0].connected);
}

#[test]
fn a_callers_first_offer_waits_until_its_open_record_is_kept() {
    let mut b = bench();
    b.available();
    b.keep_records = false;
    let caller = leg(1);
    b.arrive(caller);
    let opened = b
        .records
        .iter()
        .any(|r| matches!(r, Record::CallOpened(o) if o.leg == caller));
    assert!(
        opened,
        "the call's open row was handed out: {:?}",
        b.records
    );
    assert!(
        !b.lines().iter().any(|l| l.starts_with("bgapi originate")),
        "no offer before the row is kept: {:?}",
        b.lines()
    );
    // The caller's own commands (answer, music) do not wait.
    assert!(
        b.lines()
            .iter()
            .any(|l| l.contains("uuid_answer") || l.contains("answer")),
        "{:?}",
        b.lines()
    );
    // Every record before the open row is kept: still waiting.
    let at = b
        .records
        .iter()
        .position(|r| matches!(r, Record::CallOpened(_)))
        .expect("the open row") as u64;
    assert_eq!(b.core.records_handed_out(), b.records.len() as u64);
    b.core.records_kept(b.now, at);
    b.flush();
    assert!(!b.lines().iter().any(|l| l.starts_with("bgapi originate")));
    b.core.records_kept(b.now, at + 1);
    b.flush();
    assert!(
        b.lines().iter().any(|l| l.starts_with("bgapi originate")),
        "the offer goes once the row is kept: {:?}",
        b.lines()
    );
}

#[test]
fn an_offer_hung_up_before_its_record_is_kept_is_never_sent() {
    let mut b = bench();
    b.available();
    b.keep_records = false;
    b.arrive(leg(1));
    // The caller leaves before the store answered.
    b.core.caller_input(
        b.now,
        CallerInput::HungUp {
            leg: leg(1),
            cause: crate::io::HangupCause::Normal,
        },
    );
    b.flush();
    let n = b.core.records_handed_out();
    b.core.records_kept(b.now, n);
    b.flush();
    assert!(
        !b.lines().iter().any(|l| l.starts_with("bgapi originate")),
        "{:?}",
        b.lines()
    );
}

#[test]
fn the_engine_hears_that_no_node_can_take_originates_and_when_one_can() {
    let now = Instant::now();
    let cfg = DriverConfig::new("127.0.0.1:8021", "ClueCon");
    let engine = crate::Engine::new(EngineConfig::default(), 7, now);
    let mut core = DriverCore::new(cfg, engine, &[false], now).expect("config");
    assert!(core.engine().switch_down);
    core.node_connected(now, 0, CORE, false);
    // Not before the takeover of what the switch carries is over.
    assert!(core.engine().switch_down);
    let mut listing = None;
    while let Some(o) = core.poll_output() {
        if let CoreOutput::Send {
            ticket, requests, ..
        } = o
            && matches!(&requests[0], EslRequest::Api(l) if l.starts_with("show channels"))
        {
            listing = Some(ticket);
        }
    }
    let ticket = listing.expect("the takeover lists the channels");
    core.answered(
        now,
        ticket,
        vec![Ok(Answer::Api(b"{\"row_count\":0}".to_vec()))],
    );
    assert!(!core.engine().switch_down);
    core.node_disconnected(now, 0, &switchyard_esl::EslError::ConnectionClosed);
    assert!(core.engine().switch_down);
}

/// A bench whose node answered the join check with `answer`.
fn bench_answering_join_check(answer: &str) -> Bench {
    let mut b = bench_with(|_| {});
    let check = "eval ${echo switchyard-join}";
    // The check went out at the connection (cleared from `sent` with the set-up's requests).
    b.core
        .node_disconnected(b.now, 0, &switchyard_esl::EslError::ConnectionClosed);
    b.core.node_connected(b.now, 0, CORE, false);
    b.flush();
    b.answer_all_matching("show channels", "{\"row_count\":0}");
    b.answer_all_matching("global_getvar", "");
    b.answer_all_matching("file_exists", "true");
    assert!(b.ticket(check).is_some(), "{:?}", b.lines());
    b.answer_api(check, answer);
    b.sent.clear();
    b
}

#[test]
fn on_a_node_that_expands_api_calls_the_agent_leg_joins_its_caller_itself() {
    let mut b = bench_answering_join_check("switchyard-join");
    b.available();
    let caller = leg(1);
    b.arrive(caller);
    let agent = b.agent_leg();
    let originate = b
        .lines()
        .into_iter()
        .find(|l| l.contains("originate"))
        .unwrap();
    assert!(
        originate.ends_with(&format!("'&eval(${{uuid_bridge {caller} {agent}}})'")),
        "{originate}"
    );
    // The answer: the caller gets its after-bridge variables, and no uuid_bridge goes out,
    // held or not: the switch bridges as the originate completes.
    b.switch_event(event("CHANNEL_ANSWER", agent, &[]));
    assert!(
        b.lines().contains(&format!(
            "api uuid_setvar_multi {caller} hangup_after_bridge=true;socket_resume=false"
        )),
        "{:?}",
        b.lines()
    );
    let st = b.core.stats();
    assert_eq!((st.bridges_joined, st.bridges_held), (1, 0));
    let ticket = b.ticket("originate").unwrap();
    b.answer(
        ticket,
        vec![Ok(Answer::Job(format!("+OK {agent}\n").into()))],
    );
    assert!(
        !b.lines().iter().any(|l| l.contains("api uuid_bridge")),
        "{:?}",
        b.lines()
    );
    // CHANNEL_BRIDGE, as ever, is what makes the call answered.
    b.switch_event(event(
        "CHANNEL_BRIDGE",
        caller,
        &[("Other-Leg-Unique-ID", &agent.to_string())],
    ));
    assert_eq!(
        b.core.engine().agent_state(AgentId(1)),
        Some(crate::agent::AgentStateKind::OnCall)
    );
}

#[test]
fn a_node_that_does_not_expand_api_calls_is_bridged_with_uuid_bridge() {
    let mut b = bench_answering_join_check("<API Execute Permission Denied>");
    b.available();
    let caller = leg(1);
    b.arrive(caller);
    let agent = b.agent_leg();
    assert!(
        b.lines()
            .iter()
            .any(|l| l.contains("originate") && l.ends_with("&park()"))
    );
    b.switch_event(event("CHANNEL_ANSWER", agent, &[]));
    let ticket = b.ticket("originate").unwrap();
    b.answer(
        ticket,
        vec![Ok(Answer::Job(format!("+OK {agent}\n").into()))],
    );
    assert!(
        b.lines()
            .contains(&format!("api uuid_bridge {caller} {agent}")),
        "{:?}",
        b.lines()
    );
    assert_eq!(b.core.stats().bridges_joined, 0);
}

#[test]
fn an_originate_ended_by_our_own_kill_after_its_answer_is_no_failure() {
    let mut b = bench();
    b.available();
    let caller = leg(1);
    b.arrive(caller);
    let originate = b.ticket("originate").unwrap();
    let agent = b.agent_leg();
    b.switch_event(event("CHANNEL_ANSWER", agent, &[]));
    // The caller leaves as the agent answers: the agent leg is killed inside the originate's
    // window, and the originate reports the kill's cause.
    b.core.caller_input(
        b.now,
        CallerInput::HungUp {
            leg: caller,
            cause: crate::io::HangupCause::Normal,
        },
    );
    b.flush();
    assert!(
        b.ticket(&format!("uuid_kill {agent}")).is_some(),
        "{:?}",
        b.lines()
    );
    b.answer(
        originate,
        vec![Ok(Answer::Job(b"-ERR NORMAL_CLEARING\n".to_vec()))],
    );
    assert_eq!(b.core.stats().originates_failed_after_answer, 0);
}

// ---- recording capture (module `capture`) ----------------------------------------------

use crate::driver::{MediaReport, MediaRequest};
use crate::recording::{RecordingCapture, RecordingMode, RecordingPolicy, RecordingStatus};

const RECORDER_DIAL: &str = "sofia/internal/{user}@127.0.0.1:5090";

/// A bench whose queue records every call (`capture` says how) and whose caller is talking
/// to agent 1: the caller's leg.
fn recorded_call(
    capture: RecordingCapture,
    tune: impl FnOnce(&mut DriverConfig),
) -> (Bench, LegId) {
    recorded_call_after(capture, tune, |_| {})
}

/// `recorded_call`, with `before` run on the bench once it is connected.
fn recorded_call_after(
    capture: RecordingCapture,
    tune: impl FnOnce(&mut DriverConfig),
    before: impl FnOnce(&mut Bench),
) -> (Bench, LegId) {
    let policy = RecordingPolicy {
        mode: RecordingMode::Always,
        capture,
        ..RecordingPolicy::default()
    };
    recorded_call_with(policy, tune, before)
}

/// A call bridged in a queue recording by `policy`.
fn recorded_call_with(
    policy: RecordingPolicy,
    tune: impl FnOnce(&mut DriverConfig),
    before: impl FnOnce(&mut Bench),
) -> (Bench, LegId) {
    let mut b = bench_with(|c| {
        c.recording.recorder_dial = Some(RECORDER_DIAL.into());
        c.recording.switch_path = "/var/lib/fs/rec/{file}".into();
        c.recording.switch_files = "/mnt/fs-rec".into();
        tune(c);
    });
    before(&mut b);
    b.command(Command::UpsertQueue(Box::new(QueueConfig {
        id: QueueId(1),
        name: "sales".into(),
        recording: policy,
        ..QueueConfig::default()
    })));
    b.available();
    let caller = leg(1);
    b.arrive(caller);
    let agent = b.agent_leg();
    let originate = b.ticket("originate").expect("agent dialled");
    b.switch_event(event("CHANNEL_ANSWER", agent, &[]));
    b.answer(
        originate,
        vec![Ok(Answer::Job(format!("+OK {agent}\n").into()))],
    );
    let other = agent.to_string();
    b.switch_event(event(
        "CHANNEL_BRIDGE",
        caller,
        &[("Other-Leg-Unique-ID", other.as_str())],
    ));
    (b, caller)
}

fn recording_of(b: &Bench) -> crate::recording::RecordingRecord {
    b.records
        .iter()
        .find_map(|r| match r {
            Record::Recording(r) => Some((**r).clone()),
            _ => None,
        })
        .expect("a recording record")
}

fn expected_id(b: &Bench) -> crate::recording::RecordingId {
    b.media
        .iter()
        .find_map(|m| match m {
            MediaRequest::Expect { id, .. } => Some(*id),
            _ => None,
        })
        .expect("the endpoint was asked to expect the legs")
}

#[test]
fn a_live_recording_dials_two_recorder_legs_once_the_endpoint_expects_them() {
    let (mut b, caller) = recorded_call(RecordingCapture::Live, |_| {});
    let id = expected_id(&b);
    let MediaRequest::Expect {
        path,
        caller_user,
        agent_user,
        stereo,
        ..
    } = b.media[0].clone()
    else {
        panic!("expect first: {:?}", b.media);
    };
    assert!(stereo);
    assert_eq!(caller_user, format!("rec-{id}-a"));
    assert_eq!(agent_user, format!("rec-{id}-b"));
    assert!(path.ends_with(format!("{id}.wav")));
    assert!(
        !b.lines().iter().any(|l| l.contains("&eavesdrop")),
        "no leg is dialled before the endpoint is ready"
    );
    b.core.media_report(b.now, MediaReport::Ready { id });
    b.flush();
    let dials: Vec<String> = b
        .lines()
        .into_iter()
        .filter(|l| l.contains("&eavesdrop"))
        .collect();
    assert_eq!(dials.len(), 2, "{dials:?}");
    assert!(dials[0].contains(&format!("sofia/internal/rec-{id}-a@127.0.0.1:5090")));
    assert!(dials[0].contains("eavesdrop_bridge_aleg=true"));
    assert!(dials[1].contains(&format!("sofia/internal/rec-{id}-b@127.0.0.1:5090")));
    assert!(dials[1].contains("eavesdrop_bridge_bleg=true"));
    for d in &dials {
        assert!(d.starts_with("bgapi originate {"), "{d}");
        assert!(d.contains("switchyard_leg=recorder"));
        assert!(d.contains("absolute_codec_string=PCMU"));
        assert!(d.ends_with(&format!("&eavesdrop({caller})")), "{d}");
    }
    b.core.media_report(
        b.now,
        MediaReport::Finished {
            id,
            path: path.clone(),
            figures: None,
            error: Some("no audio".into()),
        },
    );
    b.flush();
    let r = recording_of(&b);
    assert_eq!(r.capture, RecordingCapture::Live);
    assert!(!r.fell_back);
    assert_eq!(r.status, RecordingStatus::Failed);
    assert_eq!(r.path, path.display().to_string());
}

#[test]
fn a_refused_recorder_leg_falls_back_to_uuid_record_and_its_file_is_ingested_at_record_stop() {
    let (mut b, caller) = recorded_call(RecordingCapture::Live, |_| {});
    let id = expected_id(&b);
    b.core.media_report(b.now, MediaReport::Ready { id });
    b.flush();
    let a_leg = b
        .ticket("originate {origination_uuid=")
        .expect("recorder leg a");
    b.answer(
        a_leg,
        vec![Ok(Answer::Job(b"-ERR USER_NOT_REGISTERED\n".to_vec()))],
    );
    assert!(
        b.media.contains(&MediaRequest::Abandon { id }),
        "the endpoint forgets it: {:?}",
        b.media
    );
    let path = format!("/var/lib/fs/rec/{id}.wav");
    let lines = b.lines();
    assert!(
        lines.iter().any(|l| l.starts_with("api uuid_kill ")),
        "the other recorder leg goes: {lines:?}"
    );
    assert!(lines.contains(&format!("api uuid_setvar {caller} RECORD_STEREO true")));
    assert!(lines.contains(&format!("api uuid_record {caller} start {path}")));
    assert_eq!(b.core.stats().recorder_fallbacks, 1);
    b.switch_event(event(
        "RECORD_STOP",
        caller,
        &[("Record-File-Path", path.as_str())],
    ));
    let ingest = b.media.last().cloned();
    assert_eq!(
        ingest,
        Some(MediaRequest::Ingest {
            id,
            path: format!("/mnt/fs-rec/{id}.wav").into(),
            wait: b.core.cfg.recording.switch_file_wait,
        })
    );
    let figures = crate::recording::AudioFigures {
        duration_ms: 4000,
        sample_rate: 8000,
        channels: 2,
        bytes: 128_044,
        silence_ratio: 0.0,
        peak_dbfs: vec![Some(-3.0), Some(-3.0)],
        channel_silence: vec![0.0, 0.0],
        peaks: vec![Vec::new(), Vec::new()],
        frames_per_peak: 1,
    };
    b.core.media_report(
        b.now,
        MediaReport::Ingested {
            id,
            path: format!("/mnt/fs-rec/{id}.wav").into(),
            figures: Some(figures.clone()),
            error: None,
        },
    );
    b.flush();
    let r = recording_of(&b);
    assert_eq!(r.capture, RecordingCapture::Switch);
    assert!(r.fell_back);
    assert_eq!(r.status, RecordingStatus::Completed);
    assert_eq!(r.figures, Some(figures));
}

#[test]
fn a_switch_recording_is_masked_for_a_pause_and_stopped_on_request() {
    let (mut b, caller) = recorded_call(RecordingCapture::Switch, |_| {});
    assert!(b.media.is_empty(), "the endpoint is not involved");
    let path = b
        .lines()
        .into_iter()
        .find_map(|l| {
            l.strip_prefix(&format!("api uuid_record {caller} start "))
                .map(str::to_owned)
        })
        .expect("uuid_record started");
    let call = b.core.engine.call_by_leg(caller).expect("the call");
    let by = crate::recording::Requester {
        name: "supervisor".into(),
        agent: None,
    };
    for action in [
        crate::recording::RecordingAction::Pause,
        crate::recording::RecordingAction::Resume,
        crate::recording::RecordingAction::Stop,
    ] {
        b.command(Command::RecordCall {
            call,
            action,
            by: by.clone(),
        });
    }
    let lines = b.lines();
    for verb in ["mask", "unmask", "stop"] {
        assert!(
            lines.contains(&format!("api uuid_record {caller} {verb} {path}")),
            "{verb}: {lines:?}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.contains(" pause ")),
        "FreeSWITCH's pause would cut the span out of the file"
    );
}

#[test]
fn without_a_recorder_endpoint_a_live_policy_records_on_the_switch() {
    let (b, caller) = recorded_call(RecordingCapture::Live, |c| c.recording.recorder_dial = None);
    assert!(b.media.is_empty());
    assert!(
        b.lines()
            .iter()
            .any(|l| l.starts_with(&format!("api uuid_record {caller} start "))),
        "{:?}",
        b.lines()
    );
}

#[test]
fn a_recorder_leg_of_the_last_run_is_hung_up_at_the_takeover() {
    let now = Instant::now();
    let cfg = DriverConfig::new("127.0.0.1:8021", "ClueCon");
    let engine = crate::Engine::new(EngineConfig::default(), 7, now);
    let mut core = DriverCore::new(cfg, engine, &[true], now).expect("config");
    core.node_connected(now, 0, CORE, false);
    let recorder = leg(77);
    let mut sent: Vec<(Ticket, Vec<EslRequest>)> = Vec::new();
    let drain = |core: &mut DriverCore, sent: &mut Vec<(Ticket, Vec<EslRequest>)>| {
        while let Some(o) = core.poll_output() {
            if let CoreOutput::Send {
                ticket, requests, ..
            } = o
            {
                sent.push((ticket, requests));
            }
        }
    };
    drain(&mut core, &mut sent);
    let first_line = |r: &Vec<EslRequest>| match &r[0] {
        EslRequest::Api(l) | EslRequest::BgApi(l) => l.clone(),
        EslRequest::Execute { app, arg, .. } => format!("{app} {arg}"),
    };
    let listing = sent
        .iter()
        .find(|(_, r)| first_line(r).starts_with("show channels"))
        .map(|(t, _)| *t)
        .expect("the takeover lists the channels");
    let rows = format!(
        "{{\"row_count\":1,\"rows\":[{{\"uuid\":\"{recorder}\",\"call_uuid\":\"\",\"callstate\":\"ACTIVE\",\"cid_num\":\"\"}}]}}"
    );
    core.answered(now, listing, vec![Ok(Answer::Api(rows.into_bytes()))]);
    drain(&mut core, &mut sent);
    let (vars, n) = sent
        .iter()
        .find(|(_, r)| first_line(r) == format!("uuid_getvar {recorder} switchyard_leg"))
        .map(|(t, r)| (*t, r.len()))
        .expect("the channel is asked who it is");
    let mut replies = vec![Ok(Answer::Api(b"recorder".to_vec()))];
    replies.extend((1..n).map(|_| Ok(Answer::Api(b"_undef_".to_vec()))));
    core.answered(now, vars, replies);
    drain(&mut core, &mut sent);
    assert!(
        sent.iter()
            .any(|(_, r)| first_line(r) == format!("uuid_kill {recorder} NORMAL_CLEARING")),
        "{sent:?}"
    );
}

/// A call recorded with capture `oreka` on a node that answered `module_exists mod_oreka`
/// with `module`.
fn oreka_call(module: &str) -> (Bench, LegId) {
    recorded_call_after(
        RecordingCapture::Oreka,
        |c| {
            c.recording.oreka = true;
            c.recording.endpoint = Some(crate::driver::EndpointSetup::default());
        },
        |b| {
            // The question went out at the first connection (cleared with the set-up's
            // requests): ask again on a new one.
            b.core
                .node_disconnected(b.now, 0, &switchyard_esl::EslError::ConnectionClosed);
            b.core.node_connected(b.now, 0, CORE, false);
            b.flush();
            b.answer_all_matching("show channels", "{\"row_count\":0}");
            b.answer_all_matching("global_getvar", "");
            b.answer_all_matching("file_exists", "true");
            b.answer_all_matching("eval", "switchyard-join");
            b.answer_api("module_exists", module);
            b.sent.clear();
        },
    )
}

#[test]
fn an_oreka_recording_runs_oreka_record_once_the_endpoint_expects_the_fork_and_stops_it() {
    let (mut b, caller) = oreka_call("true");
    let MediaRequest::ExpectFork {
        id,
        path,
        stereo,
        channel,
        wait,
    } = b.media[0].clone()
    else {
        panic!("the fork is announced first: {:?}", b.media);
    };
    assert!(stereo);
    assert_eq!(
        channel,
        caller.to_string(),
        "mod_oreka's Call-ID is the channel's uuid"
    );
    assert_eq!(
        wait,
        std::time::Duration::from_secs(10),
        "the recorder timeout"
    );
    assert!(
        !b.lines().iter().any(|l| l.contains("oreka_record")),
        "nothing runs before the endpoint is ready"
    );
    b.core.media_report(b.now, MediaReport::Ready { id });
    b.flush();
    let start = format!("api uuid_broadcast {caller} oreka_record:: aleg");
    assert!(b.lines().contains(&start), "{:?}", b.lines());
    assert!(
        !b.lines().iter().any(|l| l.contains("&eavesdrop")),
        "no recorder legs"
    );
    b.answer_api(
        &format!("uuid_broadcast {caller} oreka_record"),
        "+OK Message sent",
    );
    b.sent.clear();

    // A supervisor's pause is the endpoint's silence, as for recorder legs.
    let call = b.core.engine.call_by_leg(caller).expect("the call");
    let by = crate::recording::Requester {
        name: "supervisor".into(),
        agent: None,
    };
    b.command(Command::RecordCall {
        call,
        action: crate::recording::RecordingAction::Pause,
        by: by.clone(),
    });
    b.flush();
    assert!(
        b.media.contains(&MediaRequest::Silence { id, on: true }),
        "{:?}",
        b.media
    );
    b.command(Command::RecordCall {
        call,
        action: crate::recording::RecordingAction::Stop,
        by,
    });
    b.flush();
    let stop = format!("api uuid_broadcast {caller} oreka_record::stop aleg");
    assert!(b.lines().contains(&stop), "{:?}", b.lines());
    b.core.media_report(
        b.now,
        MediaReport::Finished {
            id,
            path: path.clone(),
            figures: None,
            error: None,
        },
    );
    b.flush();
    let r = recording_of(&b);
    assert_eq!(r.capture, RecordingCapture::Oreka);
    assert!(!r.fell_back);
    assert_eq!(r.path, path.display().to_string());
}

#[test]
fn a_node_without_mod_oreka_records_an_oreka_policy_with_recorder_legs_and_never_runs_it() {
    // FreeSWITCH hangs up a channel told to run an application it lacks: never guess.
    let (mut b, _caller) = oreka_call("false");
    assert!(
        matches!(b.media[0], MediaRequest::Expect { .. }),
        "{:?}",
        b.media
    );
    let id = expected_id(&b);
    b.core.media_report(b.now, MediaReport::Ready { id });
    b.flush();
    assert_eq!(
        b.lines()
            .iter()
            .filter(|l| l.contains("&eavesdrop"))
            .count(),
        2
    );
    assert!(!b.lines().iter().any(|l| l.contains("oreka_record")));
}

#[test]
fn oreka_record_refused_falls_back_to_uuid_record() {
    let (mut b, caller) = oreka_call("true");
    let MediaRequest::ExpectFork { id, .. } = b.media[0].clone() else {
        panic!("{:?}", b.media);
    };
    b.core.media_report(b.now, MediaReport::Ready { id });
    b.flush();
    b.answer_api(
        &format!("uuid_broadcast {caller} oreka_record"),
        "-ERR no such channel",
    );
    b.flush();
    assert!(
        b.media.contains(&MediaRequest::Abandon { id }),
        "the endpoint forgets the fork: {:?}",
        b.media
    );
    let record = format!("api uuid_record {caller} start /var/lib/fs/rec/{id}.wav");
    assert!(b.lines().contains(&record), "{:?}", b.lines());
}

#[test]
fn an_announcement_plays_before_the_recording_begins() {
    const NOTICE: &str = "ivr/ivr-this_call_may_be_recorded.wav";
    let policy = RecordingPolicy {
        mode: RecordingMode::Always,
        announcement: Some(NOTICE.into()),
        ..RecordingPolicy::default()
    };
    let (mut b, caller) = recorded_call_with(policy, |_| {}, |_| {});
    let broadcast = format!("api uuid_broadcast {caller} {NOTICE} both");
    assert!(b.lines().contains(&broadcast), "{:?}", b.lines());
    assert!(
        b.media.is_empty(),
        "nothing captures during the announcement"
    );
    // Another playback's end (the music) is not the announcement's.
    b.switch_event(event(
        "CHANNEL_EXECUTE_COMPLETE",
        caller,
        &[
            ("Application", "playback"),
            ("Application-Data", "local_stream://moh"),
        ],
    ));
    assert!(b.media.is_empty());
    b.switch_event(event(
        "CHANNEL_EXECUTE_COMPLETE",
        caller,
        &[("Application", "playback"), ("Application-Data", NOTICE)],
    ));
    assert!(
        matches!(b.media.as_slice(), [MediaRequest::Expect { .. }]),
        "{:?}",
        b.media
    );
}

#[test]
fn a_recording_stopped_during_its_announcement_ends_with_nothing_captured() {
    const NOTICE: &str = "ivr/notice.wav";
    let policy = RecordingPolicy {
        mode: RecordingMode::OnDemand,
        announcement: Some(NOTICE.into()),
        ..RecordingPolicy::default()
    };
    let (mut b, caller) = recorded_call_with(policy, |_| {}, |_| {});
    let call = b.core.engine.call_by_leg(caller).expect("the call");
    let by = crate::recording::Requester {
        name: "supervisor".into(),
        agent: None,
    };
    for action in [
        crate::recording::RecordingAction::Start,
        crate::recording::RecordingAction::Stop,
    ] {
        b.command(Command::RecordCall {
            call,
            action,
            by: by.clone(),
        });
    }
    b.flush();
    assert!(
        b.lines()
            .contains(&format!("api uuid_broadcast {caller} {NOTICE} both"))
    );
    let r = recording_of(&b);
    assert_eq!(r.status, RecordingStatus::Failed);
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.contains("announcement")),
        "{r:?}"
    );
    // The announcement's end later starts nothing.
    b.switch_event(event(
        "CHANNEL_EXECUTE_COMPLETE",
        caller,
        &[("Application", "playback"), ("Application-Data", NOTICE)],
    ));
    assert!(b.media.is_empty(), "{:?}", b.media);
}

#[test]
fn a_refused_announcement_starts_the_recording_at_once() {
    let policy = RecordingPolicy {
        mode: RecordingMode::Always,
        announcement: Some("ivr/notice.wav".into()),
        ..RecordingPolicy::default()
    };
    let (mut b, caller) = recorded_call_with(policy, |_| {}, |_| {});
    assert!(b.media.is_empty());
    b.answer_api(
        &format!("uuid_broadcast {caller} ivr/notice.wav"),
        "-ERR no such channel",
    );
    b.flush();
    assert!(
        matches!(b.media.as_slice(), [MediaRequest::Expect { .. }]),
        "{:?}",
        b.media
    );
}

/// A caller bridged to the agent: the caller's and the agent's legs.
fn talking_bench() -> (Bench, LegId, LegId) {
    let mut b = bench();
    b.available();
    let caller = leg(1);
    b.arrive(caller);
    let originate = b.ticket("originate").expect("the agent is dialled");
    let agent = b.agent_leg();
    b.switch_event(event("CHANNEL_ANSWER", agent, &[]));
    b.answer(
        originate,
        vec![Ok(Answer::Job(format!("+OK {agent}\n").into()))],
    );
    let caller_text = caller.to_string();
    b.switch_event(event(
        "CHANNEL_BRIDGE",
        caller,
        &[("Other-Leg-Unique-ID", agent.to_string().as_str())],
    ));
    assert!(b.lines().iter().any(|l| l.contains(&caller_text)));
    (b, caller, agent)
}

fn call_outcome(b: &Bench) -> Option<crate::io::CallOutcome> {
    b.records.iter().find_map(|r| match r {
        Record::Call(c) => Some(c.outcome),
        _ => None,
    })
}

#[test]
fn an_agent_leg_gone_with_a_transfer_disposition_leaves_its_caller_up() {
    for disposition in ["BLIND_TRANSFER", "ATTENDED_TRANSFER"] {
        let (mut b, caller, agent) = talking_bench();
        let sent = b.lines().len();
        b.switch_event(event(
            "CHANNEL_HANGUP_COMPLETE",
            agent,
            &[
                ("Hangup-Cause", "NORMAL_CLEARING"),
                ("variable_endpoint_disposition", disposition),
                ("variable_transfer_destination", "blind:2000"),
            ],
        ));
        let kill = format!("uuid_kill {caller}");
        assert!(
            !b.lines()[sent..].iter().any(|l| l.contains(&kill)),
            "{disposition}: the caller is not hung up: {:?}",
            &b.lines()[sent..]
        );
        assert_eq!(
            call_outcome(&b),
            Some(crate::io::CallOutcome::Transferred),
            "{disposition}"
        );
    }
}

#[test]
fn an_agent_leg_gone_without_a_transfer_takes_its_caller_down() {
    let (mut b, caller, agent) = talking_bench();
    let sent = b.lines().len();
    b.switch_event(event(
        "CHANNEL_HANGUP_COMPLETE",
        agent,
        &[
            ("Hangup-Cause", "NORMAL_CLEARING"),
            // A REFER mod_sofia could not carry out moved nobody.
            ("variable_endpoint_disposition", "ATTENDED_TRANSFER_ERROR"),
        ],
    ));
    let kill = format!("uuid_kill {caller}");
    assert!(
        b.lines()[sent..].iter().any(|l| l.contains(&kill)),
        "{:?}",
        &b.lines()[sent..]
    );
    assert_eq!(call_outcome(&b), Some(crate::io::CallOutcome::Answered));
}

/// A caller whose queue's max wait leads to the queue's own voicemail box, past that wait.
fn caller_sent_to_voicemail(keep_records: bool) -> (Bench, LegId) {
    let mut b = bench_with(|cfg| {
        cfg.recording.switch_path = "/fs/rec/{file}".into();
        cfg.recording.switch_files = "/mnt/fs-rec".into();
    });
    b.command(Command::UpsertQueue(Box::new(QueueConfig {
        id: QueueId(1),
        name: "sales".into(),
        max_wait: Some(Duration::from_secs(30)),
        on_timeout: crate::config::Exit::Mailbox(crate::config::Mailbox::Queue(QueueId(1))),
        ..QueueConfig::default()
    })));
    b.keep_records = keep_records;
    let caller = leg(1);
    assert_eq!(b.arrive(caller), Admission::Accepted);
    b.sent.clear();
    b.advance(Duration::from_secs(31));
    (b, caller)
}

#[test]
fn a_message_is_greeted_recorded_after_its_open_row_then_checked_and_filed() {
    let (mut b, caller) = caller_sent_to_voicemail(false);
    let open = b.records.iter().find_map(|r| match r {
        Record::VoicemailOpened(o) => Some(o.clone()),
        _ => None,
    });
    let open = open.expect("the open row goes first");
    assert_eq!(open.leg, caller);
    assert_eq!(open.mailbox, crate::config::Mailbox::Queue(QueueId(1)));
    let lines = b.lines();
    // Before it: the queue's own announcements while the caller waited.
    let from = lines
        .iter()
        .rposition(|l| l.starts_with("api uuid_break"))
        .expect("the music is stopped");
    let vm = crate::driver::VoicemailSetup::default();
    assert_eq!(
        lines[from..].to_vec(),
        vec![
            format!("api uuid_break {caller} all"),
            format!("sendmsg {caller} answer "),
            format!("sendmsg {caller} playback {}", vm.greeting),
            format!("sendmsg {caller} playback {}", vm.beep),
        ],
        "the music stops, the greeting and the tone play; record waits for the open row"
    );
    // The writer keeps the open row: record goes, into the switch's directory.
    let n = b.core.records_handed_out();
    b.core.records_kept(b.now, n);
    b.flush();
    let id = open.id;
    let record = format!("sendmsg {caller} record /fs/rec/{id}.wav 180 200 3");
    assert_eq!(b.lines().last(), Some(&record));
    let exec = b
        .sent
        .iter()
        .flat_map(|(_, r)| r.iter())
        .find_map(|r| match r {
            EslRequest::Execute { app, id, .. } if app == "record" => id.clone(),
            _ => None,
        })
        .expect("record has an execution id");
    // Another application's completion is not the message's.
    b.switch_event(event(
        "CHANNEL_EXECUTE_COMPLETE",
        caller,
        &[("Application", "playback"), ("Application-UUID", "other")],
    ));
    assert!(b.media.is_empty());
    b.sent.clear();
    b.switch_event(event(
        "CHANNEL_EXECUTE_COMPLETE",
        caller,
        &[
            ("Application", "record"),
            ("Application-UUID", exec.as_str()),
            ("Application-Response", "_none_"),
            ("variable_record_ms", "1940"),
            ("variable_silence_hits_exhausted", "true"),
        ],
    ));
    assert_eq!(
        b.lines(),
        vec![format!("sendmsg {caller} hangup NORMAL_CLEARING")]
    );
    assert_eq!(
        b.media.last(),
        Some(&MediaRequest::Ingest {
            id,
            path: format!("/mnt/fs-rec/{id}.wav").into(),
            wait: b.core.cfg.recording.switch_file_wait,
        })
    );
    let figures = crate::recording::AudioFigures {
        duration_ms: 1940,
        sample_rate: 8000,
        channels: 1,
        bytes: 31_084,
        silence_ratio: 0.0,
        peak_dbfs: vec![Some(-3.0)],
        channel_silence: vec![0.0],
        peaks: vec![Vec::new()],
        frames_per_peak: 1,
    };
    b.core.media_report(
        b.now,
        MediaReport::Ingested {
            id,
            path: format!("/mnt/fs-rec/{id}.wav").into(),
            figures: Some(figures.clone()),
            error: None,
        },
    );
    b.flush();
    let filed = b.records.iter().find_map(|r| match r {
        Record::Voicemail(v) => Some(v.clone()),
        _ => None,
    });
    let filed = filed.expect("the message is filed");
    assert_eq!(filed.id, id);
    assert_eq!(filed.status, RecordingStatus::Completed);
    assert_eq!(filed.figures, Some(figures));
    assert_eq!(filed.path, format!("/mnt/fs-rec/{id}.wav"));
}

#[test]
fn a_caller_who_leaves_during_the_greeting_leaves_no_message() {
    let (mut b, caller) = caller_sent_to_voicemail(true);
    let id = b
        .records
        .iter()
        .find_map(|r| match r {
            Record::VoicemailOpened(o) => Some(o.id),
            _ => None,
        })
        .expect("opened");
    b.switch_event(event(
        "CHANNEL_HANGUP_COMPLETE",
        caller,
        &[("Hangup-Cause", "NORMAL_CLEARING")],
    ));
    // Whatever is there is checked: the switch writes what `record` had, if it ran.
    assert!(matches!(b.media.last(), Some(MediaRequest::Ingest { id: i, .. }) if *i == id));
    b.core.media_report(
        b.now,
        MediaReport::Ingested {
            id,
            path: format!("/mnt/fs-rec/{id}.wav").into(),
            figures: None,
            error: Some("no file".into()),
        },
    );
    b.flush();
    let filed = b.records.iter().find_map(|r| match r {
        Record::Voicemail(v) => Some(v.clone()),
        _ => None,
    });
    let filed = filed.expect("the open row is closed");
    assert_eq!(filed.status, RecordingStatus::Failed);
    assert!(filed.path.is_empty());
    assert!(filed.error.is_some_and(|e| e.contains("no message")));
}

/// A plan whose number `+15550100` runs a one-menu flow: a single silence ends in a message
/// and a hangup.
fn bench_with_flow() -> Bench {
    let mut b = bench_with(|cfg| cfg.prompt_timeout = Duration::from_secs(10));
    let flow: switchyard_dialplan::flow::Flow = serde_json::from_str(
        r#"{
          "id": "main",
          "steps": [
            {"kind": "menu", "id": "greet", "menu": "m"},
            {"kind": "play_hangup", "id": "bye", "prompt": "ivr/bye.wav"}
          ],
          "menus": [{
            "id": "m", "greet_long": "ivr/main.wav",
            "timeout_ms": 2000, "inter_digit_timeout_ms": 1000,
            "max_failures": 1, "max_timeouts": 1,
            "entries": [{"keys": {"exact": "1"}, "action": {"kind": "step", "step": "bye"}}],
            "on_max_failures": {"kind": "step", "step": "bye"},
            "on_max_timeouts": {"kind": "step", "step": "bye"}
          }],
          "fallback": {"play_hangup": "ivr/bye.wav"}
        }"#,
    )
    .unwrap();
    let plan = switchyard_dialplan::flow::NumberPlan {
        numbers: vec![switchyard_dialplan::flow::NumberRoute {
            number: "+15550100".into(),
            flow: "main".into(),
        }],
        default_flow: String::new(),
    };
    b.core
        .set_inbound(Some(std::sync::Arc::new(crate::driver::InboundPlan {
            numbers: plan.index(),
            flows: std::collections::HashMap::from([(
                "main".to_owned(),
                std::sync::Arc::new(flow),
            )]),
            schedules: Default::default(),
            queues: Default::default(),
            skills: Default::default(),
            agents: Default::default(),
        })));
    b
}

fn arrive_dialling(b: &mut Bench, caller: LegId, number: &str) {
    let a = b.core.caller_arrived(
        b.now,
        Arrival {
            leg: caller,
            route: RouteKeys {
                queue_var: None,
                destination: Some(number.into()),
            },
            caller: CallerInfo {
                number: "+15557770001".into(),
                ..CallerInfo::default()
            },
            origin: Origin {
                core_uuid: Some(CORE.into()),
                ..Origin::default()
            },
        },
    );
    assert_eq!(a, Admission::Accepted);
    b.flush();
}

#[test]
fn a_collection_whose_end_never_comes_counts_as_a_silence_and_the_flow_goes_on() {
    let mut b = bench_with_flow();
    let caller = leg(1);
    arrive_dialling(&mut b, caller, "+15550100");
    assert!(
        b.lines()
            .iter()
            .any(|l| l.starts_with(&format!("sendmsg {caller} play_and_get_digits"))),
        "{:?}",
        b.lines()
    );
    b.sent.clear();
    // No CHANNEL_EXECUTE_COMPLETE ever: past the prompt's allowance and the wait for keys.
    b.advance(Duration::from_secs(9));
    assert!(b.lines().is_empty(), "still within the allowance");
    b.advance(Duration::from_secs(5));
    assert_eq!(
        b.lines(),
        vec![
            format!("api uuid_break {caller} all"),
            format!("sendmsg {caller} playback ivr/bye.wav"),
            format!("sendmsg {caller} hangup NORMAL_CLEARING"),
        ]
    );
    // The walk is over: its journey is filed, with the silence and where it led.
    let journey = b.records.iter().find_map(|r| match r {
        Record::Journey(j) => Some(j.clone()),
        _ => None,
    });
    let journey = journey.expect("journey filed");
    assert_eq!(journey.leg, caller);
    assert_eq!(journey.flow, "main");
    assert_eq!(journey.dialled, "+15550100");
    assert_eq!(journey.routed.as_deref(), Some("play_hangup"));
    let entries: serde_json::Value = serde_json::from_str(&journey.journey).unwrap();
    let outcomes: Vec<&serde_json::Value> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["outcome"])
        .collect();
    assert!(
        outcomes.contains(&&serde_json::json!("timeout")),
        "{entries}"
    );
    // Its CDR names the flow: a caller who never reached a queue is still its tenant's.
    b.switch_event(event(
        "CHANNEL_HANGUP_COMPLETE",
        caller,
        &[("Hangup-Cause", "NORMAL_CLEARING")],
    ));
    let cdr = b.records.iter().find_map(|r| match r {
        Record::Cdr(c) if c.leg == caller => Some(c.clone()),
        _ => None,
    });
    let cdr = cdr.expect("the caller's CDR");
    assert_eq!(cdr.flow.as_deref(), Some("main"));
    assert_eq!(cdr.queue, None);
    assert_eq!(cdr.call_leg, Some(caller), "its own call");
}

#[test]
fn a_caller_who_hangs_up_in_the_flow_has_a_journey_that_routed_nowhere() {
    let mut b = bench_with_flow();
    let caller = leg(2);
    arrive_dialling(&mut b, caller, "+15550100");
    b.switch_event(event(
        "CHANNEL_HANGUP_COMPLETE",
        caller,
        &[("Hangup-Cause", "NORMAL_CLEARING")],
    ));
    let journey = b.records.iter().find_map(|r| match r {
        Record::Journey(j) => Some(j.clone()),
        _ => None,
    });
    let journey = journey.expect("journey filed at the hangup");
    assert_eq!(journey.routed, None);
    // Nothing is left waiting: the overdue collection changes nothing.
    b.sent.clear();
    b.advance(Duration::from_secs(30));
    let about_caller: Vec<String> = b
        .lines()
        .into_iter()
        .filter(|l| l.contains(&caller.to_string()))
        .collect();
    assert!(about_caller.is_empty(), "{about_caller:?}");
}
