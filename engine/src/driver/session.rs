//! One task per outbound socket (one per caller): read the channel data, ask for the
//! channel's events and for linger, report the arrival, then turn DTMF and hangup events into
//! messages for the loop. The task lives as long as the call: in `async full` mode FreeSWITCH
//! hangs the caller up when the socket closes, so the socket stays open until the channel is
//! gone (linger keeps it open for the final events; `exit` ends it after that).

use std::time::Duration;

use switchyard_esl::Event;
use switchyard_esl::server::{OutboundSession, SessionEvent, SessionHandle};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::ids::SkillId;
use crate::io::{CallerInfo, HangupCause, LegId};

/// What a session task tells the loop.
#[derive(Debug)]
pub(crate) enum SessionMsg {
    /// The socket is ready; the core picks the queue (routes may change at run time). The
    /// handle hangs the caller up if the core refuses them.
    Arrived {
        arrival: Arrival,
        handle: SessionHandle,
    },
    Input(CallerInput),
}

/// What a caller's socket reports once the caller is in (see [`SocketState`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallerInput {
    Dtmf {
        leg: LegId,
        digit: char,
    },
    HungUp {
        leg: LegId,
        cause: HangupCause,
    },
    /// The socket closed without a hangup event: the channel may or may not still exist.
    Vanished {
        leg: LegId,
    },
}

/// One caller socket's reading of its events, shared by the session task and the
/// virtual-time tests: DTMF digits, the hangup (once), and how the socket ended.
#[derive(Clone, Debug)]
pub struct SocketState {
    leg: LegId,
    hung_up: bool,
}

impl SocketState {
    pub fn new(leg: LegId) -> SocketState {
        SocketState {
            leg,
            hung_up: false,
        }
    }

    /// An event of the caller's own channel (`myevents`).
    pub fn event(&mut self, e: &Event) -> Option<CallerInput> {
        let leg = self.leg;
        match e.name().as_deref() {
            Some("DTMF") => e
                .header("DTMF-Digit")
                .and_then(|d| d.chars().next())
                .map(|digit| CallerInput::Dtmf { leg, digit }),
            Some("CHANNEL_HANGUP_COMPLETE") if !self.hung_up => {
                self.hung_up = true;
                let cause = e
                    .hangup_cause()
                    .map_or(HangupCause::Normal, |c| HangupCause::from_freeswitch(&c));
                Some(CallerInput::HungUp { leg, cause })
            }
            _ => None,
        }
    }

    /// The socket ended: with FreeSWITCH's disconnect notice (the channel is over; linger
    /// kept the socket for its last events, and if the hangup event was lost this is it), or
    /// closed without one (the channel may live on).
    pub fn closed(&mut self, notice: bool) -> Option<CallerInput> {
        if self.hung_up {
            return None;
        }
        self.hung_up = true;
        let leg = self.leg;
        Some(if notice {
            CallerInput::HungUp {
                leg,
                cause: HangupCause::Normal,
            }
        } else {
            CallerInput::Vanished { leg }
        })
    }

    pub fn hung_up(&self) -> bool {
        self.hung_up
    }
}

/// What routing looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteKeys {
    /// `variable_switchyard_queue`: a queue name (or any key of the route table).
    pub queue_var: Option<String>,
    /// `Caller-Destination-Number`.
    pub destination: Option<String>,
}

/// Where a caller comes from, as its socket shows it (see the driver's doc on nodes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// `Core-UUID` of the CHANNEL_DATA: the instance of FreeSWITCH that runs the channel.
    pub core_uuid: Option<String>,
    /// `variable_switchyard_node`: a node name the dialplan set.
    pub node_var: Option<String>,
    /// The address the socket came from.
    pub peer: Option<std::net::IpAddr>,
}

/// The session's channel data, read once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrival {
    pub leg: LegId,
    pub route: RouteKeys,
    pub caller: CallerInfo,
    pub origin: Origin,
}

/// Reads what the engine needs from CHANNEL_DATA. `None` when the uuid is not a uuid.
pub fn read_channel_data(data: &Event, uuid: &str) -> Option<Arrival> {
    let leg = LegId::parse(uuid)?;
    // The connect reply carries the caller profile twice, as `Caller-*` and `Channel-*`
    // (FreeSWITCH 1.10 capture); either will do.
    let profile = |field: &str| {
        data.caller(field)
            .or_else(|| data.header(&format!("Channel-{field}")))
            .map(|v| v.into_owned())
            .filter(|v| !v.is_empty())
    };
    let priority = data
        .variable("switchyard_priority")
        .and_then(|p| p.trim().parse::<i64>().ok())
        .map_or(0, |p| {
            p.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
        });
    let skills = data
        .variable("switchyard_skills")
        .map(|s| parse_skills(&s))
        .unwrap_or_default();
    Some(Arrival {
        leg,
        route: RouteKeys {
            queue_var: data
                .variable("switchyard_queue")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
            destination: profile("Destination-Number"),
        },
        caller: CallerInfo {
            number: profile("Caller-ID-Number").unwrap_or_default(),
            name: profile("Caller-ID-Name").unwrap_or_default(),
            priority,
            skills,
            first_arrived_unix_ms: data
                .variable(super::config::ARRIVED_VARIABLE)
                .and_then(|v| v.trim().parse::<u64>().ok()),
            flow_exits: Default::default(),
            agent: None,
        },
        origin: Origin {
            core_uuid: data
                .header("Core-UUID")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
            node_var: data
                .variable(super::config::NODE_VARIABLE)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
            peer: None,
        },
    })
}

/// `switchyard_skills=3:5,7` -> skill 3 at level 5 or more, skill 7 at any level. Malformed
/// items are skipped (a dialplan typo must not keep a caller out of the queue); at most 32.
fn parse_skills(text: &str) -> Vec<(SkillId, u8)> {
    text.split(',')
        .filter_map(|item| {
            let (id, min) = match item.split_once(':') {
                Some((id, min)) => (id, min.trim().parse::<u8>().ok()?),
                None => (item, 1),
            };
            let id = id.trim().parse::<u32>().ok()?;
            Some((SkillId(id), min.clamp(1, 10)))
        })
        .take(32)
        .collect()
}

/// Runs one caller's socket until the channel is gone or the loop stops listening.
pub(crate) async fn run(session: OutboundSession, to_loop: mpsc::Sender<SessionMsg>) {
    let uuid = session.uuid().to_owned();
    let Some(mut arrival) = read_channel_data(session.channel_data(), &uuid) else {
        warn!(%uuid, "outbound socket for a channel whose uuid is not a uuid; hanging up");
        let _ = session.hangup("NORMAL_TEMPORARY_FAILURE").await;
        let _ = session.exit().await;
        return;
    };
    arrival.origin.peer = session.handle().peer_addr().map(|a| a.ip());
    let (handle, mut events) = session.into_parts();
    // Our own channel's events (DTMF, hangup), and the socket kept after hangup so the last of
    // them are not lost. A channel that hung up already fails these: nothing to report.
    if let Err(e) = handle.myevents().await {
        debug!(%uuid, error = %e, "myevents failed; the caller is gone");
        return;
    }
    if let Err(e) = handle.linger(None).await {
        debug!(%uuid, error = %e, "linger failed; the caller is gone");
        return;
    }
    let mut state = SocketState::new(arrival.leg);
    let arrived = SessionMsg::Arrived {
        arrival,
        handle: handle.clone(),
    };
    if to_loop.send(arrived).await.is_err() {
        return;
    }
    while let Some(ev) = events.recv().await {
        let (msg, end) = match ev {
            SessionEvent::Event(e) => (state.event(&e), false),
            // The channel is over (linger), or the socket is closing: either way nothing runs
            // on it any more.
            SessionEvent::Disconnect { .. } => (state.closed(true), true),
            SessionEvent::Closed { .. } => {
                // Nothing to say `exit` to.
                if let Some(m) = state.closed(false) {
                    let _ = to_loop.send(SessionMsg::Input(m)).await;
                }
                return;
            }
            SessionEvent::Lagged { dropped } => {
                warn!(%uuid, dropped, "caller socket events dropped");
                (None, false)
            }
            _ => (None, false),
        };
        if let Some(m) = msg
            && to_loop.send(SessionMsg::Input(m)).await.is_err()
        {
            return;
        }
        if end {
            break;
        }
    }
    // With linger and no time FreeSWITCH keeps the socket until we leave.
    if state.hung_up() {
        let _ = tokio::time::timeout(Duration::from_secs(10), handle.exit()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_esl::EventFormat;
    use switchyard_esl::codec::Headers;

    fn data(pairs: &[(&str, &str)]) -> Event {
        Event::from_parts(
            EventFormat::Plain,
            Headers::from_pairs(pairs.iter().copied()),
            None,
        )
    }

    const U: &str = "6db7fc04-2acc-47ed-b482-df357cfa757c";

    #[test]
    fn reads_queue_variable_destination_caller_and_priority() {
        let ev = data(&[
            ("Event-Name", "CHANNEL_DATA"),
            ("Channel-Destination-Number", "5000"),
            ("Caller-Caller-ID-Number", "+15551230000"),
            ("Caller-Caller-ID-Name", "Jane Roe"),
            ("variable_switchyard_queue", "sales"),
            ("variable_switchyard_priority", "5"),
            ("variable_switchyard_skills", "3:5, 7,x:1,9:99"),
            ("Core-UUID", "6b3bea01-13d9-44e6-9ba3-d808481ca295"),
            ("variable_switchyard_node", "fs2"),
        ]);
        let a = read_channel_data(&ev, U).unwrap();
        assert_eq!(a.leg, LegId::parse(U).unwrap());
        assert_eq!(a.route.queue_var.as_deref(), Some("sales"));
        assert_eq!(a.route.destination.as_deref(), Some("5000"));
        assert_eq!(a.caller.number, "+15551230000");
        assert_eq!(a.caller.name, "Jane Roe");
        assert_eq!(a.caller.priority, 5);
        assert_eq!(
            a.caller.skills,
            vec![(SkillId(3), 5), (SkillId(7), 1), (SkillId(9), 10)]
        );
        assert_eq!(
            a.origin.core_uuid.as_deref(),
            Some("6b3bea01-13d9-44e6-9ba3-d808481ca295")
        );
        assert_eq!(a.origin.node_var.as_deref(), Some("fs2"));
    }

    #[test]
    fn missing_and_undefined_values_read_as_absent() {
        let ev = data(&[
            ("Caller-Destination-Number", "7000"),
            ("variable_switchyard_queue", "_undef_"),
            ("variable_switchyard_priority", "high"),
        ]);
        let a = read_channel_data(&ev, U).unwrap();
        assert_eq!(a.route.queue_var, None);
        assert_eq!(a.route.destination.as_deref(), Some("7000"));
        assert_eq!(a.caller.priority, 0);
        assert!(a.caller.skills.is_empty());
        assert!(read_channel_data(&ev, "it-1").is_none());
    }
}
