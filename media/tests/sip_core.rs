//! The recorder endpoint's sans-IO core driven directly: the cases whose timing a loopback
//! shell cannot force (a CANCEL while the route is still being made, an ACK that never
//! comes), its bounds, and arbitrary input.

use std::net::SocketAddr;
use std::time::Duration;

use proptest::prelude::*;
use switchyard_media::Leg;
use switchyard_media::sip::{EndReason, LegEvent, Uas, UasConfig, UasOutput};

const SWITCH: &str = "127.0.0.1:5060";

fn switch() -> SocketAddr {
    SWITCH.parse().unwrap()
}

fn request(
    method: &str,
    user: &str,
    call_id: &str,
    branch: &str,
    cseq: u32,
    to_tag: &str,
) -> String {
    let sdp = "v=0\r\no=FreeSWITCH 1 2 IN IP4 127.0.0.1\r\ns=FreeSWITCH\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30586 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n";
    let body = if method == "INVITE" { sdp } else { "" };
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let to_tag = if to_tag.is_empty() {
        String::new()
    } else {
        format!(";tag={to_tag}")
    };
    format!(
        "{method} sip:{user}@127.0.0.1:5090 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;rport;branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:0000000000@127.0.0.1>;tag=fs1\r\nTo: <sip:{user}@127.0.0.1:5090>{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {}\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
        if method == "ACK" { "ACK" } else { method },
        body.len()
    )
}

fn outputs(uas: &mut Uas<u32>) -> Vec<UasOutput<u32>> {
    std::iter::from_fn(|| uas.poll_output()).collect()
}

fn statuses(outputs: &[UasOutput<u32>]) -> Vec<u16> {
    outputs
        .iter()
        .filter_map(|o| match o {
            UasOutput::Send { datagram, .. } => std::str::from_utf8(&datagram[8..11])
                .ok()
                .and_then(|s| s.parse().ok()),
            _ => None,
        })
        .collect()
}

fn tag_of(outputs: &[UasOutput<u32>], status: u16) -> String {
    outputs
        .iter()
        .find_map(|o| match o {
            UasOutput::Send { datagram, .. } => {
                let text = String::from_utf8_lossy(datagram);
                text.starts_with(&format!("SIP/2.0 {status}")).then(|| {
                    let to = text.lines().find(|l| l.starts_with("To:")).unwrap();
                    to.split(";tag=").nth(1).unwrap().to_owned()
                })
            }
            _ => None,
        })
        .expect("a response with a To tag")
}

fn invited(uas: &mut Uas<u32>, now: Duration, call_id: &str) -> Vec<UasOutput<u32>> {
    let invite = request("INVITE", "rec-a", call_id, "z9hG4bKi1", 1, "");
    uas.handle_datagram(now, switch(), invite.as_bytes());
    outputs(uas)
}

#[test]
fn cancel_before_answer_gets_200_the_invite_487_and_the_leg_ends_cancelled() {
    let mut uas = Uas::new(UasConfig::default());
    uas.expect("rec-a".into(), 7, Leg::Caller).unwrap();
    let first = invited(&mut uas, Duration::ZERO, "c1");
    assert_eq!(statuses(&first), vec![100]);
    assert!(matches!(first[1], UasOutput::Route { key: 7, .. }));

    // The route has not been confirmed yet: the INVITE is still unanswered.
    let cancel = request("CANCEL", "rec-a", "c1", "z9hG4bKi1", 1, "");
    uas.handle_datagram(Duration::from_millis(5), switch(), cancel.as_bytes());
    let out = outputs(&mut uas);
    assert_eq!(statuses(&out), vec![200, 487]);
    assert!(out.iter().any(|o| matches!(o, UasOutput::Unroute { .. })));
    assert!(out.iter().any(|o| matches!(
        o,
        UasOutput::Event(LegEvent::Ended {
            key: 7,
            reason: EndReason::Cancelled,
            ..
        })
    )));
    assert!(out.iter().any(|o| matches!(o, UasOutput::Stop { key: 7 })));
    assert_eq!(uas.dialogs(), 0);

    // The route's answer arriving late changes nothing; the INVITE retransmitted gets 487.
    uas.handle_routed(Duration::from_millis(6), "c1", Ok(()));
    assert!(outputs(&mut uas).is_empty());
    let invite = request("INVITE", "rec-a", "c1", "z9hG4bKi1", 1, "");
    uas.handle_datagram(Duration::from_millis(7), switch(), invite.as_bytes());
    assert_eq!(statuses(&outputs(&mut uas)), vec![487]);
}

#[test]
fn cancel_after_answer_is_answered_200_and_leaves_the_dialog_alone() {
    let mut uas = Uas::new(UasConfig::default());
    uas.expect("rec-a".into(), 7, Leg::Caller).unwrap();
    invited(&mut uas, Duration::ZERO, "c2");
    uas.handle_routed(Duration::ZERO, "c2", Ok(()));
    let out = outputs(&mut uas);
    assert_eq!(statuses(&out), vec![200]);
    let cancel = request("CANCEL", "rec-a", "c2", "z9hG4bKi1", 1, "");
    uas.handle_datagram(Duration::from_millis(5), switch(), cancel.as_bytes());
    assert_eq!(statuses(&outputs(&mut uas)), vec![200]);
    assert_eq!(uas.dialogs(), 1);
    // A CANCEL for nothing we know: 481.
    let stray = request("CANCEL", "rec-a", "nope", "z9hG4bKzz", 1, "");
    uas.handle_datagram(Duration::from_millis(6), switch(), stray.as_bytes());
    assert_eq!(statuses(&outputs(&mut uas)), vec![481]);
}

#[test]
fn an_unacknowledged_200_is_resent_with_backoff_then_the_leg_ends_no_ack() {
    let config = UasConfig::default();
    let (t1, t2) = (config.t1, config.t2);
    let mut uas = Uas::new(config);
    uas.expect("rec-a".into(), 7, Leg::Caller).unwrap();
    invited(&mut uas, Duration::ZERO, "c3");
    uas.handle_routed(Duration::ZERO, "c3", Ok(()));
    outputs(&mut uas);
    let mut resent = Vec::new();
    let mut now = Duration::ZERO;
    while let Some(next) = uas.poll_timeout() {
        if next > Duration::from_secs(60) {
            break;
        }
        now = next;
        uas.handle_timeout(now);
        let out = outputs(&mut uas);
        if statuses(&out) == vec![200] {
            resent.push(now);
        }
        if out.iter().any(|o| {
            matches!(
                o,
                UasOutput::Event(LegEvent::Ended {
                    reason: EndReason::NoAck,
                    ..
                })
            )
        }) {
            break;
        }
    }
    assert_eq!(now, t1 * 64, "gives up at 64*T1");
    assert_eq!(&resent[..4], &[t1, t1 * 3, t1 * 7, t1 * 7 + t2]);
    assert_eq!(uas.dialogs(), 0);
}

#[test]
fn an_offer_without_a_decodable_codec_gets_488_and_ends_the_expected_leg() {
    let mut uas = Uas::new(UasConfig::default());
    uas.expect("rec-a".into(), 9, Leg::Agent).unwrap();
    let invite = request("INVITE", "rec-a", "c4", "z9hG4bKg", 1, "")
        .replace("RTP/AVP 0 101", "RTP/AVP 18 19"); // same length: Content-Length holds
    uas.handle_datagram(Duration::ZERO, switch(), invite.as_bytes());
    let out = outputs(&mut uas);
    assert_eq!(statuses(&out), vec![488]);
    assert!(out.iter().any(|o| matches!(
        o,
        UasOutput::Event(LegEvent::Ended {
            key: 9,
            reason: EndReason::NotAcceptable,
            ..
        })
    )));
    assert!(out.iter().any(|o| matches!(o, UasOutput::Stop { key: 9 })));
    assert!(!out.iter().any(|o| matches!(o, UasOutput::Route { .. })));
}

#[test]
fn a_failed_route_answers_503_and_in_dialog_requests_for_unknown_dialogs_get_481() {
    let mut uas = Uas::new(UasConfig::default());
    uas.expect("rec-a".into(), 7, Leg::Caller).unwrap();
    invited(&mut uas, Duration::ZERO, "c5");
    uas.handle_routed(
        Duration::ZERO,
        "c5",
        Err(switchyard_media::MediaError::NoSuchRecording),
    );
    let out = outputs(&mut uas);
    assert_eq!(statuses(&out), vec![503]);
    assert!(out.iter().any(|o| matches!(
        o,
        UasOutput::Event(LegEvent::Ended {
            reason: EndReason::RouteFailed(_),
            ..
        })
    )));
    let bye = request("BYE", "rec-a", "c5", "z9hG4bKb", 2, "whatever");
    uas.handle_datagram(Duration::ZERO, switch(), bye.as_bytes());
    assert_eq!(statuses(&outputs(&mut uas)), vec![481]);
    let reinvite = request("INVITE", "rec-a", "c5", "z9hG4bKre", 3, "whatever");
    uas.handle_datagram(Duration::ZERO, switch(), reinvite.as_bytes());
    assert_eq!(statuses(&outputs(&mut uas)), vec![481]);
}

#[test]
fn dialogs_beyond_the_bound_get_503_and_the_expectation_is_kept() {
    let mut uas = Uas::new(UasConfig {
        max_dialogs: 1,
        ..UasConfig::default()
    });
    uas.expect("rec-a".into(), 1, Leg::Caller).unwrap();
    uas.expect("rec-b".into(), 1, Leg::Agent).unwrap();
    invited(&mut uas, Duration::ZERO, "c6");
    let second = request("INVITE", "rec-b", "c7", "z9hG4bKi2", 1, "");
    uas.handle_datagram(Duration::ZERO, switch(), second.as_bytes());
    assert_eq!(statuses(&outputs(&mut uas)), vec![503]);
    assert_eq!(uas.stats().refused, 1);
    // Once the first leg is gone, the second may come in.
    uas.handle_routed(Duration::ZERO, "c6", Ok(()));
    let tag = tag_of(&outputs(&mut uas), 200);
    let bye = request("BYE", "rec-a", "c6", "z9hG4bKb6", 2, &tag);
    uas.handle_datagram(Duration::from_secs(1), switch(), bye.as_bytes());
    assert_eq!(statuses(&outputs(&mut uas)), vec![200]);
    let retry = request("INVITE", "rec-b", "c7", "z9hG4bKi3", 2, "");
    uas.handle_datagram(Duration::from_secs(2), switch(), retry.as_bytes());
    assert_eq!(statuses(&outputs(&mut uas)), vec![100]);
}

#[test]
fn the_transaction_cache_forgets_its_oldest_at_the_bound() {
    let mut uas = Uas::new(UasConfig {
        max_transactions: 2,
        ..UasConfig::default()
    });
    for i in 0..3 {
        let options = request(
            "OPTIONS",
            "x",
            &format!("o{i}"),
            &format!("z9hG4bKo{i}"),
            1,
            "",
        );
        uas.handle_datagram(Duration::ZERO, switch(), options.as_bytes());
    }
    outputs(&mut uas);
    assert_eq!(uas.stats().transactions_evicted, 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any bytes at all: counted, never a panic.
    #[test]
    fn arbitrary_datagrams_never_panic(datagram in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let mut uas = Uas::new(UasConfig::default());
        uas.expect("rec-a".into(), 1, Leg::Caller).unwrap();
        uas.handle_datagram(Duration::ZERO, switch(), &datagram);
        let _ = outputs(&mut uas);
        prop_assert_eq!(uas.stats().datagrams, 1);
    }

    /// A real INVITE with bytes overwritten, cut or inserted anywhere: never a panic, and
    /// whatever comes back is a response.
    #[test]
    fn mutated_invites_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = request("INVITE", "rec-a", "c9", "z9hG4bKp", 1, "").into_bytes();
        for (at, byte, kind) in edits {
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
        }
        bytes.truncate(cut.index(bytes.len() + 1).max(1));
        let mut uas = Uas::new(UasConfig::default());
        uas.expect("rec-a".into(), 1, Leg::Caller).unwrap();
        uas.handle_datagram(Duration::ZERO, switch(), &bytes);
        for output in outputs(&mut uas) {
            if let UasOutput::Send { datagram, .. } = output {
                prop_assert!(datagram.starts_with(b"SIP/2.0 "));
            }
        }
        uas.handle_timeout(Duration::from_secs(60));
    }
}
