//! The wire driven as an engine-side harness would drive it: step to `poll_timeout`, handle it,
//! poll every event, and note when it came.

use super::*;
use crate::sim::{Dist, ResumeLoop};

const PW: &str = "ClueCon";
const X: &str = "aaaaaaaa-0000-4000-8000-00000000000a";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A wire and what it reported, each event with the virtual time (since the start) at which
/// it was polled.
struct T {
    w: Wire,
    t0: Instant,
    seen: Vec<(Duration, WireEvent)>,
}

impl T {
    fn new(cfg: SimConfig) -> T {
        T::with(cfg, 7, Duration::ZERO)
    }

    fn with(cfg: SimConfig, seed: u64, latency: Duration) -> T {
        let t0 = Instant::now();
        T {
            w: Wire::new(cfg, seed, t0).with_latency(latency),
            t0,
            seen: Vec::new(),
        }
    }

    fn now(&self) -> Instant {
        self.w.now()
    }

    fn collect(&mut self) {
        let at = self.w.now() - self.t0;
        while let Some(ev) = self.w.poll_event() {
            self.seen.push((at, ev));
        }
    }

    /// Steps through everything that happens in the next `d`.
    fn run_for(&mut self, d: Duration) {
        let end = self.now() + d;
        self.collect();
        while let Some(t) = self.w.poll_timeout().filter(|t| *t <= end) {
            self.w.handle_timeout(t);
            self.collect();
        }
        self.w.handle_timeout(end);
        self.collect();
    }

    /// Steps until an event matching `want` has been seen (within a minute); returns when.
    fn until(&mut self, want: impl Fn(&WireEvent) -> bool) -> Duration {
        let end = self.now() + Duration::from_secs(60);
        loop {
            self.collect();
            if let Some((at, _)) = self.seen.iter().find(|(_, e)| want(e)) {
                return *at;
            }
            let t = self
                .w
                .poll_timeout()
                .filter(|t| *t <= end)
                .expect("the event came within a minute");
            self.w.handle_timeout(t);
        }
    }

    fn take(&mut self) -> Vec<(Duration, WireEvent)> {
        self.collect();
        std::mem::take(&mut self.seen)
    }

    fn events(&mut self) -> Vec<WireEvent> {
        self.take().into_iter().map(|(_, e)| e).collect()
    }

    /// A link that is up, with the events cleared.
    fn link(&mut self, events: &str) -> Link {
        let link = self.w.connect(self.now(), PW, events).unwrap();
        self.until(|e| matches!(e, WireEvent::Connected { link: l, .. } if *l == link));
        self.take();
        link
    }

    /// A caller's socket, opened; returns it with the call's uuid.
    fn socket(&mut self, call: InboundCall) -> (Socket, String) {
        let uuid = self.w.place_inbound_call(self.now(), call).unwrap();
        self.until(|e| matches!(e, WireEvent::SocketOpened { .. }));
        let opened = self.events().into_iter().find_map(|e| match e {
            WireEvent::SocketOpened { socket, uuid, .. } => Some((socket, uuid)),
            _ => None,
        });
        let (socket, u) = opened.unwrap();
        assert_eq!(u, uuid);
        (socket, uuid)
    }
}

fn inbound_cfg() -> SimConfig {
    SimConfig {
        inbound_target: Some("127.0.0.1:8084".into()),
        ..SimConfig::default()
    }
}

fn name(e: &Event) -> String {
    e.name().unwrap_or_default().into_owned()
}

fn body(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn api_body(evs: &[(Duration, WireEvent)], token: u64) -> Option<(Duration, String)> {
    evs.iter().find_map(|(at, e)| match e {
        WireEvent::Api {
            token: t, body: b, ..
        } if *t == token => Some((*at, body(b))),
        _ => None,
    })
}

fn job_body(evs: &[(Duration, WireEvent)], token: u64) -> Option<(Duration, String)> {
    evs.iter().find_map(|(at, e)| match e {
        WireEvent::Job {
            token: t, body: b, ..
        } if *t == token => Some((*at, body(b))),
        _ => None,
    })
}

// ---- links -------------------------------------------------------------------------------

#[test]
fn auth_and_subscription_complete_and_connected_carries_the_switch_core_uuid() {
    let mut t = T::new(SimConfig::default());
    let link = t.w.connect(t.now(), PW, "CHANNEL_ANSWER").unwrap();
    let core = t.w.switch().core_uuid().to_owned();
    assert_eq!(
        t.take(),
        [(
            Duration::ZERO,
            WireEvent::Connected {
                link,
                core_uuid: core
            }
        )]
    );

    // With a latency each leg of the handshake takes it: greeting, auth, its reply, the
    // setup commands, their replies.
    let mut t = T::with(SimConfig::default(), 7, ms(3));
    let link = t.w.connect(t.now(), PW, "CHANNEL_ANSWER").unwrap();
    let at = t.until(|e| matches!(e, WireEvent::Connected { .. }));
    assert_eq!(at, ms(15));
    assert_eq!(t.events().len(), 1, "nothing but Connected for {link:?}");
}

#[test]
fn a_refused_password_closes_the_link_and_loses_what_waited_for_it() {
    let mut t = T::new(SimConfig::default());
    let link = t.w.connect(t.now(), "wrong", "ALL").unwrap();
    assert_eq!(t.events(), [WireEvent::Closed { link }]);

    let mut t = T::with(SimConfig::default(), 7, ms(1));
    let link = t.w.connect(t.now(), "wrong", "ALL").unwrap();
    let token = t.w.api(t.now(), link, "status").unwrap();
    t.run_for(ms(10));
    assert_eq!(
        t.events(),
        [WireEvent::Lost { link, token }, WireEvent::Closed { link }]
    );
    // A closed link answers nothing: the request is lost at once.
    let late = t.w.api(t.now(), link, "status").unwrap();
    assert_eq!(t.events(), [WireEvent::Lost { link, token: late }]);
}

#[test]
fn requests_made_before_the_link_is_up_wait_for_its_setup() {
    let mut t = T::with(SimConfig::default(), 7, ms(2));
    let link = t.w.connect(t.now(), PW, "").unwrap();
    let token = t.w.api(t.now(), link, "global_getvar hostname").unwrap();
    t.run_for(ms(20));
    let evs = t.take();
    assert!(matches!(evs[0], (at, WireEvent::Connected { .. }) if at == ms(10)));
    // Sent once the setup is answered, it takes one more round trip.
    assert_eq!(api_body(&evs, token), Some((ms(14), "fakeswitch".into())));
    assert_eq!(evs.len(), 2);
}

#[test]
fn api_answers_come_in_request_order_with_two_requests_in_flight() {
    let mut t = T::with(SimConfig::default(), 7, ms(5));
    let link = t.link("");
    let sent = t.now() - t.t0;
    let status = t.w.api(t.now(), link, "status").unwrap();
    let core = t.w.api(t.now(), link, "global_getvar core_uuid").unwrap();
    t.run_for(ms(4));
    assert!(t.take().is_empty(), "both still in flight");
    t.run_for(ms(10));
    let evs = t.take();
    let tokens: Vec<u64> = evs
        .iter()
        .map(|(_, e)| match e {
            WireEvent::Api { token, .. } => *token,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(tokens, [status, core]);
    let (at, text) = api_body(&evs, status).unwrap();
    assert_eq!(at - sent, ms(10));
    assert!(text.starts_with("UP "), "{text}");
    assert_eq!(api_body(&evs, core).unwrap().1, t.w.switch().core_uuid());
}

#[test]
fn stall_and_slow_replies_delay_answers_through_the_switch_timers() {
    let mut t = T::new(SimConfig::default());
    let link = t.link("");
    let start = t.now() - t.t0;
    t.w.inject(t.now(), Fault::Stall(Duration::from_secs(2)));
    let token = t.w.api(t.now(), link, "status").unwrap();
    t.run_for(ms(1999));
    assert!(api_body(&t.take(), token).is_none(), "stalled");
    t.run_for(ms(1));
    let (at, _) = api_body(&t.take(), token).unwrap();
    assert_eq!(at - start, Duration::from_secs(2));

    t.w.inject(t.now(), Fault::SlowReplies(ms(300)));
    let start = t.now() - t.t0;
    let token = t.w.api(t.now(), link, "status").unwrap();
    let at = t.until(|e| matches!(e, WireEvent::Api { token: tk, .. } if *tk == token));
    assert_eq!(at - start, ms(300));
}

// ---- bgapi -------------------------------------------------------------------------------

#[test]
fn bgapi_originate_reports_the_answer_then_the_job_after_the_handover_gap() {
    let mut gaps = BTreeSet::new();
    for seed in 1..=24 {
        let mut t = T::with(SimConfig::default(), seed, Duration::ZERO);
        let link = t.link("CHANNEL_ANSWER");
        let token =
            t.w.bgapi(
                t.now(),
                link,
                &format!("originate {{origination_uuid={X}}}user/1000 &park()"),
            )
            .unwrap();
        t.run_for(Duration::from_secs(5));
        let evs = t.take();
        let answered = evs
            .iter()
            .find_map(|(at, e)| match e {
                WireEvent::Event { event, .. }
                    if name(event) == "CHANNEL_ANSWER"
                        && event.unique_id().as_deref() == Some(X) =>
                {
                    Some(*at)
                }
                _ => None,
            })
            .expect("CHANNEL_ANSWER");
        let (done, text) = job_body(&evs, token).expect("the job's outcome");
        assert_eq!(text, format!("+OK {X}\n"));
        let gap = done - answered;
        // The default handover: 0.5 ms, 3 ms or one 20 ms step (issue 15's real-switch run).
        assert!(
            [Duration::from_micros(500), ms(3), ms(20)].contains(&gap),
            "seed {seed}: gap {gap:?}"
        );
        gaps.insert(gap);
        // Our job's BACKGROUND_JOB is the Job, not an event; HEARTBEAT was not asked for.
        assert!(evs.iter().all(|(_, e)| match e {
            WireEvent::Event { event, .. } => name(event) == "CHANNEL_ANSWER",
            _ => true,
        }));
    }
    assert!(gaps.len() > 1, "the gap is drawn per leg: {gaps:?}");
}

#[test]
fn a_job_is_reported_on_its_own_link_and_as_an_event_where_subscribed() {
    let mut t = T::new(SimConfig::default());
    let mine = t.link("CHANNEL_ANSWER");
    let watcher = t.link("BACKGROUND_JOB");
    let other = t.link("CHANNEL_ANSWER");
    let ok =
        t.w.bgapi(t.now(), mine, "originate user/1000 &park()")
            .unwrap();
    let refused =
        t.w.bgapi(t.now(), mine, "originate user/4999 &park()")
            .unwrap();
    t.run_for(Duration::from_secs(5));
    let evs = t.take();
    assert!(job_body(&evs, ok).unwrap().1.starts_with("+OK "));
    assert_eq!(
        job_body(&evs, refused).unwrap().1,
        "-ERR USER_NOT_REGISTERED\n"
    );
    let jobs_seen_by = |link: Link| -> Vec<String> {
        evs.iter()
            .filter_map(|(_, e)| match e {
                WireEvent::Event { link: l, event } if *l == link => Some(name(event)),
                WireEvent::Job { link: l, .. } if *l == link => Some("Job".into()),
                _ => None,
            })
            .filter(|n| n != "CHANNEL_ANSWER")
            .collect()
    };
    assert_eq!(jobs_seen_by(mine), ["Job", "Job"]);
    assert_eq!(jobs_seen_by(watcher), ["BACKGROUND_JOB", "BACKGROUND_JOB"]);
    assert!(jobs_seen_by(other).is_empty());
}

// ---- sockets -----------------------------------------------------------------------------

#[test]
fn an_inbound_call_opens_a_socket_whose_channel_data_names_the_call() {
    let mut t = T::new(inbound_cfg());
    let uuid =
        t.w.place_inbound_call(
            t.now(),
            InboundCall {
                caller_number: "+15551230000".into(),
                destination: "5001".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let evs = t.events();
    let [WireEvent::SocketOpened { uuid: u, data, .. }] = &evs[..] else {
        panic!("{evs:?}")
    };
    assert_eq!(u, &uuid);
    assert_eq!(data.header("Event-Name").as_deref(), Some("CHANNEL_DATA"));
    assert_eq!(data.unique_id().as_deref(), Some(uuid.as_str()));
    assert_eq!(
        data.caller("Caller-ID-Number").as_deref(),
        Some("+15551230000")
    );
    assert_eq!(data.caller("Destination-Number").as_deref(), Some("5001"));
    assert_eq!(data.header("Core-UUID").unwrap(), t.w.switch().core_uuid());
}

#[test]
fn a_socket_hangup_reaches_the_socket_as_hangup_complete_then_a_notice() {
    let mut t = T::with(inbound_cfg(), 7, ms(1));
    let (socket, uuid) = t.socket(InboundCall::default());
    t.w.socket_hangup(t.now(), socket, "NORMAL_CLEARING")
        .unwrap();
    t.run_for(ms(50));
    let evs = t.events();
    let hangup = evs.iter().position(|e| {
        matches!(e, WireEvent::SocketEvent { event, .. }
            if name(event) == "CHANNEL_HANGUP_COMPLETE"
                && event.hangup_cause().as_deref() == Some("NORMAL_CLEARING"))
    });
    assert!(hangup.is_some(), "{evs:?}");
    assert_eq!(
        evs.last(),
        Some(&WireEvent::SocketClosed {
            socket,
            notice: true
        })
    );
    assert!(!t.w.switch().has_channel(&uuid));
    // We left (`exit`) after the notice, as the engine's session does, and the switch closed:
    // both ends are gone and nothing more comes for the socket.
    assert!(!t.w.peers.contains_key(&socket.conn()));
    assert!(!t.w.readers.contains_key(&socket.conn()));
    t.run_for(Duration::from_secs(30));
    assert!(t.events().is_empty());
    assert!(t.w.socket_hangup(t.now(), socket, "NO cause").is_err());
}

#[test]
fn a_caller_who_gives_up_is_seen_as_hangup_complete_then_a_notice() {
    let mut t = T::new(inbound_cfg());
    let (socket, _) = t.socket(InboundCall {
        patience: Some(Duration::from_secs(3)),
        ..Default::default()
    });
    let start = t.now() - t.t0;
    t.run_for(Duration::from_secs(5));
    let evs = t.take();
    let names: Vec<(Duration, String)> = evs
        .iter()
        .filter_map(|(at, e)| match e {
            WireEvent::SocketEvent { event, .. } => Some((*at - start, name(event))),
            WireEvent::SocketClosed { notice: true, .. } => Some((*at - start, "notice".into())),
            _ => None,
        })
        .collect();
    let tail: Vec<&str> = names
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(|(_, n)| n.as_str())
        .collect();
    assert_eq!(tail, ["CHANNEL_HANGUP_COMPLETE", "notice"], "{names:?}");
    assert!(names.iter().all(|(at, _)| *at == Duration::from_secs(3)));
    let cause = evs.iter().find_map(|(_, e)| match e {
        WireEvent::SocketEvent { event, .. } if name(event) == "CHANNEL_HANGUP_COMPLETE" => {
            event.hangup_cause().map(|c| c.into_owned())
        }
        _ => None,
    });
    assert_eq!(cause.as_deref(), Some("ORIGINATOR_CANCEL"));
    assert!(evs.iter().any(|(_, e)| *e
        == WireEvent::SocketClosed {
            socket,
            notice: true
        }));
}

#[test]
fn socket_exit_ends_the_call() {
    let mut t = T::new(inbound_cfg());
    let (socket, uuid) = t.socket(InboundCall::default());
    t.w.socket_exit(t.now(), socket).unwrap();
    assert_eq!(
        t.events(),
        [WireEvent::SocketClosed {
            socket,
            notice: true
        }]
    );
    assert!(!t.w.switch().has_channel(&uuid));
}

#[test]
fn a_caller_gone_during_the_handshake_never_opens_a_socket() {
    let mut t = T::with(inbound_cfg(), 7, ms(10));
    let uuid =
        t.w.place_inbound_call(
            t.now(),
            InboundCall {
                patience: Some(ms(25)),
                ..Default::default()
            },
        )
        .unwrap();
    t.run_for(Duration::from_secs(1));
    assert!(t.events().is_empty());
    assert!(!t.w.switch().has_channel(&uuid));
}

#[test]
fn events_during_the_socket_handshake_follow_socket_opened() {
    // L = 10 ms: the switch dials at 0, we accept at 10, `connect` is read at 20, `myevents`
    // at 40, `linger` at 60, and its reply reaches us at 70.
    let mut t = T::with(inbound_cfg(), 7, ms(10));
    let link = t.link("");
    let start = t.now();
    let uuid =
        t.w.place_inbound_call(start, InboundCall::default())
            .unwrap();
    // Read by the switch at 50, between `myevents` and `linger`: CHANNEL_ANSWER reaches the
    // socket at 60, before the socket is open.
    t.w.handle_timeout(start + ms(40));
    t.w.api(start + ms(40), link, &format!("uuid_answer {uuid}"))
        .unwrap();
    t.run_for(ms(100));
    let evs: Vec<(Duration, String)> = t
        .take()
        .into_iter()
        .filter_map(|(at, e)| match e {
            WireEvent::SocketOpened { .. } => Some((at, "opened".into())),
            WireEvent::SocketEvent { event, .. } => Some((at, name(&event))),
            _ => None,
        })
        .collect();
    let opened_at = start - t.t0 + ms(70);
    assert_eq!(evs[0], (opened_at, "opened".to_owned()), "{evs:?}");
    assert!(
        evs.iter()
            .any(|(at, n)| n == "CHANNEL_ANSWER" && *at == opened_at),
        "{evs:?}"
    );
}

// ---- faults ------------------------------------------------------------------------------

#[test]
fn restart_loses_unanswered_tokens_then_closes_and_a_new_link_sees_a_new_core_uuid() {
    let mut t = T::new(inbound_cfg());
    let link = t.link("CHANNEL_ANSWER");
    let (socket, _) = t.socket(InboundCall::default());
    let old_core = t.w.switch().core_uuid().to_owned();
    let job =
        t.w.bgapi(t.now(), link, "originate user/1000 &park()")
            .unwrap();
    t.w.inject(t.now(), Fault::Stall(Duration::from_secs(10)));
    let api = t.w.api(t.now(), link, "status").unwrap();
    t.run_for(ms(100));
    assert!(t.take().is_empty(), "the job is accepted, the api stalled");
    t.w.inject(t.now(), Fault::Restart);
    assert_eq!(
        t.events(),
        [
            WireEvent::Lost { link, token: job },
            WireEvent::Lost { link, token: api },
            WireEvent::Closed { link },
            WireEvent::SocketClosed {
                socket,
                notice: false
            },
        ]
    );
    let again = t.w.connect(t.now(), PW, "").unwrap();
    let evs = t.events();
    let [WireEvent::Connected { link: l, core_uuid }] = &evs[..] else {
        panic!("{evs:?}")
    };
    assert_eq!(*l, again);
    assert_ne!(*core_uuid, old_core);
    assert_eq!(core_uuid, t.w.switch().core_uuid());
}

#[test]
fn garbled_bytes_make_us_drop_the_link_as_the_real_client_does() {
    let mut t = T::new(SimConfig::default());
    let link = t.link("");
    let bystander = t.link("");
    assert_eq!(t.w.switch().connection_count(), 2);
    t.w.inject(t.now(), Fault::Garble(Some(link.conn())));
    let token = t.w.api(t.now(), link, "status").unwrap();
    assert_eq!(
        t.events(),
        [WireEvent::Lost { link, token }, WireEvent::Closed { link }]
    );
    // The switch saw us close, as it sees a reader's EOF.
    assert_eq!(t.w.switch().connection_count(), 1);
    let token = t.w.api(t.now(), bystander, "status").unwrap();
    assert!(api_body(&t.take(), token).is_some());
}

#[test]
fn dropped_connections_close_links_but_not_sockets() {
    let mut t = T::new(inbound_cfg());
    let link = t.link("");
    let (socket, _) = t.socket(InboundCall::default());
    t.w.inject(t.now(), Fault::DropConnections);
    assert_eq!(t.events(), [WireEvent::Closed { link }]);
    t.w.socket_hangup(t.now(), socket, "NORMAL_CLEARING")
        .unwrap();
    assert!(t.events().contains(&WireEvent::SocketClosed {
        socket,
        notice: true
    }));
}

// ---- time --------------------------------------------------------------------------------

#[test]
fn latency_shifts_replies_by_exactly_twice_the_latency() {
    /// (api round trip, bgapi originate request -> Job) at this latency.
    fn trip(latency: Duration) -> (Duration, Duration) {
        let mut t = T::with(SimConfig::default(), 11, latency);
        let link = t.link("");
        let sent = t.now() - t.t0;
        let api = t.w.api(t.now(), link, "status").unwrap();
        let answered = t.until(|e| matches!(e, WireEvent::Api { token, .. } if *token == api));
        let sent_job = t.now() - t.t0;
        let job =
            t.w.bgapi(
                t.now(),
                link,
                &format!("originate {{origination_uuid={X}}}user/1000 &park()"),
            )
            .unwrap();
        let done = t.until(|e| matches!(e, WireEvent::Job { token, .. } if *token == job));
        (answered - sent, done - sent_job)
    }
    let (api0, job0) = trip(Duration::ZERO);
    let l = ms(7);
    let (api1, job1) = trip(l);
    assert_eq!(api0, Duration::ZERO);
    assert_eq!(api1, 2 * l);
    assert!(job0 > Duration::from_millis(500), "{job0:?}");
    assert_eq!(job1, job0 + 2 * l);
}

#[test]
fn the_same_seed_gives_the_same_events() {
    fn run() -> Vec<(Duration, WireEvent)> {
        let mut t = T::with(inbound_cfg(), 5, ms(3));
        let link =
            t.w.connect(
                t.now(),
                PW,
                "CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE HEARTBEAT",
            )
            .unwrap();
        t.w.bgapi(t.now(), link, "originate user/1001 &park()")
            .unwrap();
        t.w.place_inbound_call(
            t.now(),
            InboundCall {
                patience: Some(Duration::from_secs(2)),
                ..Default::default()
            },
        );
        t.run_for(Duration::from_secs(25));
        t.take()
    }
    let a = run();
    assert!(a.len() > 10, "{a:?}");
    assert!(
        a.iter().any(
            |(_, e)| matches!(e, WireEvent::Event { event, .. } if name(event) == "HEARTBEAT")
        )
    );
    assert_eq!(a, run());
}

// ---- recordings --------------------------------------------------------------------------

#[test]
fn a_recording_is_reported_in_order_and_not_written() {
    let path = std::env::temp_dir()
        .join(format!("switchyard-wire-{}", std::process::id()))
        .join("never.wav");
    let p = path.to_string_lossy().into_owned();
    let mut t = T::new(SimConfig::default());
    let link = t.link("RECORD_STOP");
    let token =
        t.w.bgapi(
            t.now(),
            link,
            &format!("originate {{origination_uuid={X}}}user/1000 &park()"),
        )
        .unwrap();
    t.until(|e| matches!(e, WireEvent::Job { token: tk, .. } if *tk == token));
    t.w.api(t.now(), link, &format!("uuid_record {X} start {p}"))
        .unwrap();
    t.run_for(Duration::from_secs(2));
    t.take();
    t.w.api(t.now(), link, &format!("uuid_record {X} stop {p}"))
        .unwrap();
    let evs = t.events();
    let order: Vec<String> = evs
        .iter()
        .map(|e| match e {
            WireEvent::Recording(job) => format!("recording {}", job.path),
            WireEvent::Event { event, .. } => name(event),
            WireEvent::Api { body: b, .. } => body(b),
            other => format!("{other:?}"),
        })
        .collect();
    let rec = order.iter().position(|s| *s == format!("recording {p}"));
    let stop = order.iter().position(|s| s == "RECORD_STOP");
    assert!(rec.is_some() && stop.is_some() && rec < stop, "{order:?}");
    let Some(WireEvent::Recording(job)) = rec.map(|i| &evs[i]) else {
        panic!()
    };
    assert_eq!(job.duration, Duration::from_secs(2));
    assert!(!path.exists());
}

// ---- bounds ------------------------------------------------------------------------------

#[test]
fn requests_past_the_bound_are_refused_and_the_rest_answered() {
    let mut t = T::with(SimConfig::default(), 7, ms(1));
    let link = t.w.connect(t.now(), PW, "").unwrap();
    // Held until the link is up, they fill the bound.
    for _ in 0..MAX_UNANSWERED {
        t.w.api(t.now(), link, "hostname").unwrap();
    }
    assert!(matches!(
        t.w.api(t.now(), link, "hostname"),
        Err(EslError::Overloaded {
            limit: MAX_UNANSWERED
        })
    ));
    t.run_for(ms(20));
    let answers = t
        .events()
        .into_iter()
        .filter(|e| matches!(e, WireEvent::Api { .. }))
        .count();
    assert_eq!(answers, MAX_UNANSWERED);
    assert_eq!(t.w.dropped_events(), 0);
}

// ---- the hold loop (socket_resume) -------------------------------------------------------

fn socket_openings(evs: &[WireEvent]) -> Vec<(Socket, Event)> {
    evs.iter()
        .filter_map(|e| match e {
            WireEvent::SocketOpened { socket, data, .. } => Some((*socket, data.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_caller_whose_controller_dies_hears_the_hold_tone_and_comes_back_with_its_variables() {
    let mut t = T::new(inbound_cfg());
    let (socket, uuid) = t.socket(InboundCall::default());
    let link = t.link("CHANNEL_HANGUP");
    t.w.api(
        t.now(),
        link,
        &format!("uuid_setvar {uuid} switchyard_arrived 12345"),
    )
    .unwrap();
    t.run_for(ms(10));
    t.take();
    t.w.drop_socket(t.now(), socket);
    // The hold tone (3 s), then `socket` again.
    t.run_for(ms(2_900));
    assert!(
        socket_openings(&t.events()).is_empty(),
        "not before the hold tone ends"
    );
    assert!(t.w.switch().has_channel(&uuid));
    t.run_for(ms(200));
    let back = socket_openings(&t.events());
    let [(again, data)] = &back[..] else {
        panic!("{back:?}")
    };
    assert_ne!(*again, socket);
    assert_eq!(
        data.variable("switchyard_arrived").as_deref(),
        Some("12345")
    );
    assert_eq!(data.variable("resume_tries").as_deref(), Some("2"));
    assert_eq!(data.variable("socket_resume").as_deref(), Some("true"));
}

#[test]
fn while_nobody_listens_a_caller_loops_until_its_tries_run_out() {
    let mut cfg = inbound_cfg();
    cfg.switch.resume_loop = Some(ResumeLoop {
        max_tries: 4,
        hold: Dist::Fixed(3.0),
    });
    let mut t = T::new(cfg);
    let link = t.link("CHANNEL_HANGUP_COMPLETE");
    t.w.set_accepting(t.now(), false);
    let uuid =
        t.w.place_inbound_call(t.now(), InboundCall::default())
            .unwrap();
    // Passes at 0, 3, 6 and 9 s; after the fourth's hold tone the dialplan gives up.
    t.run_for(ms(11_900));
    assert!(
        t.w.switch().has_channel(&uuid),
        "still in the loop at 11.9 s"
    );
    t.run_for(ms(200));
    assert!(!t.w.switch().has_channel(&uuid));
    let evs = t.events();
    let cause = evs.iter().find_map(|e| match e {
        WireEvent::Event { link: l, event } if *l == link => event.hangup_cause(),
        _ => None,
    });
    assert_eq!(cause.as_deref(), Some("NORMAL_TEMPORARY_FAILURE"));
    assert!(socket_openings(&evs).is_empty());
}

#[test]
fn a_caller_back_before_its_tries_run_out_is_taken_again() {
    let mut t = T::new(inbound_cfg());
    t.w.set_accepting(t.now(), false);
    let uuid =
        t.w.place_inbound_call(t.now(), InboundCall::default())
            .unwrap();
    t.run_for(ms(5_000));
    t.w.set_accepting(t.now(), true);
    t.run_for(ms(1_100));
    let back = socket_openings(&t.events());
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0].1.unique_id().as_deref(), Some(uuid.as_str()));
}

/// A caller bridged to a parked agent leg by the controller; returns (socket, caller, agent).
fn bridged_caller(t: &mut T, link: Link, resume_off: bool) -> (Socket, String, String) {
    let (socket, caller) = t.socket(InboundCall::default());
    let agent = "bbbbbbbb-0000-4000-8000-00000000000b";
    t.w.bgapi(
        t.now(),
        link,
        &format!("originate {{origination_uuid={agent}}}loopback/7001/default &park()"),
    )
    .unwrap();
    t.run_for(ms(100));
    if resume_off {
        t.w.api(
            t.now(),
            link,
            &format!("uuid_setvar_multi {caller} hangup_after_bridge=true;socket_resume=false"),
        )
        .unwrap();
    }
    t.w.api(t.now(), link, &format!("uuid_bridge {caller} {agent}"))
        .unwrap();
    t.run_for(ms(200));
    assert_eq!(
        t.w.switch().channel_var(&caller, "bridge_uuid").as_deref(),
        Some(agent)
    );
    t.take();
    (socket, caller, agent.to_owned())
}

#[test]
fn a_bridge_made_after_socket_resume_false_survives_the_controllers_death() {
    let mut t = T::new(inbound_cfg());
    let link = t.link("CHANNEL_HANGUP_COMPLETE");
    let (socket, caller, agent) = bridged_caller(&mut t, link, true);
    t.w.drop_socket(t.now(), socket);
    t.run_for(ms(5_000));
    assert!(t.w.switch().has_channel(&caller));
    assert!(t.w.switch().has_channel(&agent));
    assert_eq!(
        t.w.switch().channel_var(&caller, "bridge_uuid").as_deref(),
        Some(agent.as_str())
    );
    assert!(socket_openings(&t.events()).is_empty(), "no hold loop");
}

#[test]
fn a_bridge_with_socket_resume_on_is_torn_down_when_the_controller_dies() {
    let mut t = T::new(inbound_cfg());
    let link = t.link("CHANNEL_HANGUP_COMPLETE");
    let (socket, caller, agent) = bridged_caller(&mut t, link, false);
    t.w.drop_socket(t.now(), socket);
    t.run_for(ms(100));
    assert!(
        !t.w.switch().has_channel(&agent),
        "the agent leg is hung up"
    );
    assert!(t.w.switch().has_channel(&caller));
    t.run_for(ms(3_000));
    let back = socket_openings(&t.events());
    assert_eq!(
        back.len(),
        1,
        "the caller is in the hold loop again: {back:?}"
    );
}

// ---- recorder legs (no UDP on the wire) ----------------------------------------------------

/// A recorder leg on a parked caller, dialled through the wire; the caller's uuid and the
/// job's token.
fn recorder_leg(t: &mut T, link: Link) -> (String, u64) {
    let caller = "cccccccc-0000-4000-8000-00000000000c";
    let tok =
        t.w.bgapi(
            t.now(),
            link,
            &format!("originate {{origination_uuid={caller}}}loopback/9441 &park()"),
        )
        .unwrap();
    t.until(|e| matches!(e, WireEvent::Job { token, .. } if *token == tok));
    let token =
        t.w.bgapi(
            t.now(),
            link,
            &format!(
                "originate {{origination_uuid={X},eavesdrop_bridge_aleg=true,originate_timeout=10}}\
                 sofia/internal/rec-1-a@127.0.0.1:5090 &eavesdrop({caller})"
            ),
        )
        .unwrap();
    (caller.to_owned(), token)
}

#[test]
fn a_recorder_dial_on_the_wire_is_answered_after_the_modelled_delay_and_eavesdrops() {
    let mut t = T::new(SimConfig::default());
    let link = t.link("CHANNEL_ANSWER CHANNEL_EXECUTE");
    let (caller, token) = recorder_leg(&mut t, link);
    t.run_for(Duration::from_secs(1));
    let evs = t.take();
    let (_, text) = job_body(&evs, token).expect("the job's outcome");
    assert_eq!(text, format!("+OK {X}\n"));
    let exec = evs.iter().find_map(|(_, e)| match e {
        WireEvent::Event { event, .. }
            if name(event) == "CHANNEL_EXECUTE" && event.unique_id().as_deref() == Some(X) =>
        {
            event.header("Application-Data").map(|d| d.into_owned())
        }
        _ => None,
    });
    assert_eq!(exec.as_deref(), Some(caller.as_str()));
    assert!(t.w.switch().has_channel(X));
}

#[test]
fn a_recorder_dial_on_the_wire_fails_with_the_configured_cause() {
    let mut t = T::new(SimConfig::default());
    t.w.set_recorder_dials(RecorderDials::Fail {
        after: ms(3),
        cause: "USER_BUSY".into(),
    });
    let link = t.link("CHANNEL_HANGUP");
    let (_, token) = recorder_leg(&mut t, link);
    t.run_for(Duration::from_secs(1));
    let (_, text) = job_body(&t.take(), token).expect("the job's outcome");
    assert_eq!(text, "-ERR USER_BUSY\n");
    assert!(!t.w.switch().has_channel(X));
}

#[test]
fn a_silent_recorder_dial_on_the_wire_times_out_no_answer() {
    let mut t = T::new(SimConfig::default());
    t.w.set_recorder_dials(RecorderDials::Silent);
    let link = t.link("CHANNEL_HANGUP");
    let (_, token) = recorder_leg(&mut t, link);
    t.run_for(Duration::from_secs(9));
    assert!(job_body(&t.take(), token).is_none());
    t.run_for(Duration::from_secs(2));
    let (_, text) = job_body(&t.take(), token).expect("the job's outcome");
    assert_eq!(text, "-ERR NO_ANSWER\n");
}
