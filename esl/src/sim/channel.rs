//! Channels: their data and how FreeSWITCH lays it out in an event.
//!
//! Header layout, taken from the captures (see `switch_channel_event_set_basic_data`):
//! ```text
//! Event-Name .. Event-Sequence          common part (every event)
//! <event-specific "pre" headers>        e.g. Original-Channel-Call-State, Bridge-A-Unique-ID
//! Channel-State .. Answer-State         basic data (+ Hangup-Cause once hung up)
//! Channel-Read/Write-Codec-*
//! Caller-*                              caller profile (empty names left out)
//! Other-Type, Other-Leg-*               once bridged
//! variable_*                            only for the "extended data" event types
//! <event-specific "post" headers>       e.g. Application, Record-File-Path, DTMF-Digit
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::config::RaceOutcome;
use super::core::ConnId;

/// Index of a channel in the switch; never reused, so a stale timer finds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChanId(pub u64);

/// `Channel-State`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CState {
    #[allow(dead_code)]
    New,
    Init,
    Routing,
    Execute,
    ExchangeMedia,
    #[allow(dead_code)]
    Park,
    /// Where a leg the uuid_bridge race stranded settles (FreeSWITCH's log shows it).
    ConsumeMedia,
    Hangup,
    Reporting,
    Destroy,
}

impl CState {
    pub fn name(self) -> &'static str {
        match self {
            CState::New => "CS_NEW",
            CState::Init => "CS_INIT",
            CState::Routing => "CS_ROUTING",
            CState::Execute => "CS_EXECUTE",
            CState::ExchangeMedia => "CS_EXCHANGE_MEDIA",
            CState::Park => "CS_PARK",
            CState::ConsumeMedia => "CS_CONSUME_MEDIA",
            CState::Hangup => "CS_HANGUP",
            CState::Reporting => "CS_REPORTING",
            CState::Destroy => "CS_DESTROY",
        }
    }
    pub fn number(self) -> u32 {
        match self {
            CState::New => 0,
            CState::Init => 1,
            CState::Routing => 2,
            CState::Execute => 4,
            CState::ExchangeMedia => 5,
            CState::Park => 6,
            CState::ConsumeMedia => 7,
            CState::Hangup => 10,
            CState::Reporting => 11,
            CState::Destroy => 12,
        }
    }
}

/// A caller profile snapshot (also what `Other-Leg-*` shows).
#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub direction: &'static str,
    pub cid_name: String,
    pub cid_num: String,
    pub callee_name: String,
    pub callee_num: String,
    pub dest: String,
    pub uuid: String,
    pub source: &'static str,
    pub context: String,
    pub channel_name: String,
    pub created_us: u64,
    /// `Caller-Profile-Index`: 1, one more for each transfer (a uuid_bridge is one).
    pub index: u32,
    /// `Caller-Transfer-Source` once transferred (`<epoch>:<uuid>:uuid_br:<other uuid>`).
    pub transfer_source: Option<String>,
}

/// What the model decided an endpoint will do.
#[derive(Clone, Debug, PartialEq)]
pub enum Ring {
    Answer,
    /// Hang up ringing with this cause.
    Fail(&'static str),
}

/// Who waits for an originate.
#[derive(Clone, Debug)]
pub enum Waiter {
    /// `api originate` on this connection (blocked until the answer).
    Api(ConnId),
    /// `bgapi originate`: a BACKGROUND_JOB with this Job-UUID.
    Bg {
        job: String,
        command: String,
        arg: String,
    },
    /// The `bridge` application of this channel.
    Bridge { a: ChanId, app_seq: u64 },
    /// Nobody (inbound calls, fire and forget).
    None,
}

/// An application queued or running on a channel.
#[derive(Clone, Debug)]
pub struct App {
    pub name: String,
    pub data: String,
    /// `Application-UUID` (the sendmsg's Event-UUID, or one we made up).
    pub uuid: String,
    pub seq: u64,
}

/// Spans and changes one recording may note (mask/unmask, pause/resume, peer changes); past
/// it further ones are ignored (a client toggling a mask in a loop must not grow us).
pub const MAX_RECORDING_MARKS: usize = 4096;

/// A `uuid_record` / `record_session` in progress. Offsets are wall time since `started`;
/// [`Recording::finish`] turns them into file time (the paused stretches taken out).
#[derive(Clone, Debug)]
pub struct Recording {
    pub path: String,
    pub started: Instant,
    pub masked: Vec<(Duration, Option<Duration>)>,
    pub paused: Vec<(Duration, Option<Duration>)>,
    /// From when on the recorded channel heard which tone (its bridged peer's).
    pub heard: Vec<(Duration, Option<u32>)>,
    /// What the recorded channel itself says.
    pub said: Option<u32>,
    pub stereo: bool,
    pub limit: Option<Duration>,
}

/// A recording's spans in file time, ready for the WAV writer.
pub struct FinishedRecording {
    pub duration: Duration,
    pub masked: Vec<(Duration, Duration)>,
    pub heard: Vec<(Duration, Option<u32>)>,
}

impl Recording {
    /// Opens (`on`) or closes a span of `spans` at `at`; opening an open span or closing a
    /// closed one does nothing, as FreeSWITCH's flags do.
    fn toggle(spans: &mut Vec<(Duration, Option<Duration>)>, at: Duration, on: bool) {
        if on {
            if spans.last().is_none_or(|(_, e)| e.is_some()) && spans.len() < MAX_RECORDING_MARKS {
                spans.push((at, None));
            }
        } else if let Some(last) = spans.last_mut()
            && last.1.is_none()
        {
            last.1 = Some(at);
        }
    }

    pub fn mask(&mut self, now: Instant, on: bool) {
        let at = now.saturating_duration_since(self.started);
        Self::toggle(&mut self.masked, at, on);
    }

    pub fn pause(&mut self, now: Instant, on: bool) {
        let at = now.saturating_duration_since(self.started);
        Self::toggle(&mut self.paused, at, on);
    }

    /// The recorded channel hears `tone` from now on.
    pub fn hears(&mut self, now: Instant, tone: Option<u32>) {
        if self.heard.len() < MAX_RECORDING_MARKS {
            let at = now.saturating_duration_since(self.started);
            self.heard.push((at, tone));
        }
    }

    /// Wall offset `wall` in file time: minus what was paused before it.
    fn file_time(&self, wall: Duration, end: Duration) -> Duration {
        let paused: Duration = self
            .paused
            .iter()
            .map(|(s, e)| {
                let e = e.unwrap_or(end).min(wall);
                e.saturating_sub(*s)
            })
            .sum();
        wall.saturating_sub(paused)
    }

    /// The file's length and spans, the recording stopping at `now`.
    pub fn finish(&self, now: Instant) -> FinishedRecording {
        let end = now.saturating_duration_since(self.started);
        let mut duration = self.file_time(end, end);
        if let Some(l) = self.limit {
            duration = duration.min(l);
        }
        let masked = self
            .masked
            .iter()
            .map(|(s, e)| {
                (
                    self.file_time(*s, end),
                    self.file_time(e.unwrap_or(end), end),
                )
            })
            .filter(|(s, e)| s < e)
            .collect();
        let heard = self
            .heard
            .iter()
            .map(|(at, tone)| (self.file_time(*at, end), *tone))
            .collect();
        FinishedRecording {
            duration,
            masked,
            heard,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Channel {
    pub id: ChanId,
    pub uuid: String,
    pub name: String,
    pub outbound: bool,
    pub state: CState,
    pub callstate: &'static str,
    pub answered: bool,
    pub early: bool,
    pub hit_dialplan: bool,
    pub codec: &'static str,
    pub codec_rate: &'static str,
    pub codec_bits: &'static str,
    /// A read codec pushed over the negotiated one (`record` reads raw L16): name, rate,
    /// bit rate. Events show it as `Channel-Read-Codec-*` while it is pushed.
    pub read_codec_push: Option<(&'static str, &'static str, &'static str)>,
    pub profile: Profile,
    pub created_at: Instant,
    pub answered_at: Option<Instant>,
    pub progress_at: Option<Instant>,
    pub progress_media_at: Option<Instant>,
    pub bridged_at: Option<Instant>,
    pub answered_us: u64,
    pub progress_us: u64,
    pub progress_media_us: u64,
    pub bridged_us: u64,
    pub hangup_us: u64,
    pub transfer_us: u64,
    pub vars: Vec<(String, String)>,
    pub hangup_cause: Option<String>,
    pub peer: Option<ChanId>,
    pub other: Option<(&'static str, Profile)>,
    pub current: Option<App>,
    pub queue: VecDeque<App>,
    pub parked: bool,
    pub waiter: Waiter,
    /// Applications to run once answered (`&app(args)` of an originate).
    pub after_answer: Option<(String, String)>,
    /// Hang up once the last application finishes (originated calls; not socket-controlled).
    pub hangup_when_idle: bool,
    /// A `uuid_bridge` has claimed it and not joined it yet (FreeSWITCH's CF_TRANSFER, set as
    /// the API runs): running out of applications meanwhile does not hang it up.
    pub transferring: bool,
    pub socket: Option<ConnId>,
    /// Its `socket` application returned into an empty extension while a `uuid_bridge` was
    /// taking it: it is being hung up and no bridge will claim it.
    pub socket_fell_through: bool,
    /// Its controller died while it was bridged with `socket_resume=true`: the bridge is being
    /// torn down and the caller goes back into the hold loop, not where a bridge's end sends it.
    pub resuming: bool,
    pub recordings: Vec<Recording>,
    pub talk_time: Option<Duration>,
    /// The phone sends a blind REFER to this extension this long after its bridge.
    pub refer: Option<(Duration, String)>,
    pub app_seq: u64,
    pub last_app: Option<(String, String)>,
    pub eavesdrop: Option<(ChanId, &'static str)>,
    /// Dialled over real SIP by the shell (`sofia/<profile>/<user>@<ip>:<port>`).
    pub sip_leg: bool,
    /// mod_oreka forks its audio (`oreka_record`).
    pub oreka: bool,
    pub ring_deadline: Option<Instant>,
    pub inbound_caller: bool,
    pub dtmf: Option<String>,
    /// Answered, but the `originate` that made this leg has not completed yet: its reply and
    /// its application are still to come (the handover window of the race captures).
    pub handover: Option<Handover>,
}

/// An originate between its leg's CHANNEL_ANSWER and its completion.
#[derive(Clone, Debug, Default)]
pub struct Handover {
    /// A `uuid_bridge` that landed in the window, and what it will come to.
    pub race: Option<Race>,
}

/// `uuid_bridge a b` sent while `a` or `b` was inside its originate's handover window.
#[derive(Clone, Copy, Debug)]
pub struct Race {
    pub a: ChanId,
    pub b: ChanId,
    pub outcome: RaceOutcome,
}

impl Channel {
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn set_var(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name.to_owned(), value)),
        }
    }

    pub fn unset_var(&mut self, name: &str) {
        self.vars.retain(|(n, _)| n != name);
    }

    pub fn answer_state(&self) -> &'static str {
        if self.hangup_cause.is_some() {
            "hangup"
        } else if self.answered {
            "answered"
        } else if self.early {
            "early"
        } else {
            "ringing"
        }
    }

    pub fn direction(&self) -> &'static str {
        if self.outbound { "outbound" } else { "inbound" }
    }
}

/// Header list under construction: static names where possible, values owned.
pub(crate) type Pairs = Vec<(std::borrow::Cow<'static, str>, String)>;

pub(crate) fn push(h: &mut Pairs, name: &'static str, value: impl Into<String>) {
    h.push((name.into(), value.into()));
}

/// Basic data + caller profile + other leg (+ variables when `vars`).
pub(crate) fn channel_data(h: &mut Pairs, ch: &Channel, created_us: u64, vars: bool) {
    push(h, "Channel-State", ch.state.name());
    push(h, "Channel-Call-State", ch.callstate);
    push(h, "Channel-State-Number", ch.state.number().to_string());
    push(h, "Channel-Name", ch.name.clone());
    push(h, "Unique-ID", ch.uuid.clone());
    push(h, "Call-Direction", ch.direction());
    push(h, "Presence-Call-Direction", ch.direction());
    push(
        h,
        "Channel-HIT-Dialplan",
        if ch.hit_dialplan { "true" } else { "false" },
    );
    push(
        h,
        "Channel-Call-UUID",
        ch.var("call_uuid").unwrap_or(&ch.uuid).to_owned(),
    );
    push(h, "Answer-State", ch.answer_state());
    if let Some(c) = &ch.hangup_cause {
        push(h, "Hangup-Cause", c.clone());
    }
    let (rn, rr, rb) = ch
        .read_codec_push
        .unwrap_or((ch.codec, ch.codec_rate, ch.codec_bits));
    push(h, "Channel-Read-Codec-Name", rn);
    push(h, "Channel-Read-Codec-Rate", rr);
    push(h, "Channel-Read-Codec-Bit-Rate", rb);
    push(h, "Channel-Write-Codec-Name", ch.codec);
    push(h, "Channel-Write-Codec-Rate", ch.codec_rate);
    push(h, "Channel-Write-Codec-Bit-Rate", ch.codec_bits);
    profile(h, "Caller-", &ch.profile, Some(ch), created_us);
    if let Some((kind, other)) = &ch.other {
        push(h, "Other-Type", *kind);
        profile(h, "Other-Leg-", other, None, other.created_us);
    }
    if vars {
        variables(h, ch);
    }
}

pub(crate) fn variables(h: &mut Pairs, ch: &Channel) {
    for (n, v) in &ch.vars {
        h.push((format!("variable_{n}").into(), v.clone()));
    }
}

/// `switch_caller_profile_event_set_data`: empty fields are left out.
pub(crate) fn profile(
    h: &mut Pairs,
    prefix: &'static str,
    p: &Profile,
    times: Option<&Channel>,
    created_us: u64,
) {
    let mut f = |name: &str, v: String| {
        h.push((format!("{prefix}{name}").into(), v));
    };
    f("Direction", p.direction.into());
    f("Logical-Direction", p.direction.into());
    f("Dialplan", "xml".into());
    if !p.cid_name.is_empty() {
        f("Caller-ID-Name", p.cid_name.clone());
    }
    f("Caller-ID-Number", p.cid_num.clone());
    f("Orig-Caller-ID-Number", p.cid_num.clone());
    if !p.callee_name.is_empty() {
        f("Callee-ID-Name", p.callee_name.clone());
    }
    if !p.callee_num.is_empty() {
        f("Callee-ID-Number", p.callee_num.clone());
    }
    f("ANI", p.cid_num.clone());
    f("Destination-Number", p.dest.clone());
    f("Unique-ID", p.uuid.clone());
    f("Source", p.source.into());
    // The channel's own profile only: no capture shows these for the Other-Leg.
    if times.is_some()
        && let Some(t) = &p.transfer_source
    {
        f("Transfer-Source", t.clone());
    }
    f("Context", p.context.clone());
    f("Channel-Name", p.channel_name.clone());
    if times.is_some() {
        f("Profile-Index", p.index.max(1).to_string());
    }
    f("Profile-Created-Time", created_us.to_string());
    f("Channel-Created-Time", created_us.to_string());
    let t = |x: u64| x.to_string();
    match times {
        Some(ch) => {
            f("Channel-Answered-Time", t(ch.answered_us));
            f("Channel-Progress-Time", t(ch.progress_us));
            f("Channel-Progress-Media-Time", t(ch.progress_media_us));
            f("Channel-Hangup-Time", t(ch.hangup_us));
            f("Channel-Transfer-Time", t(ch.transfer_us));
            f("Channel-Resurrect-Time", "0".into());
            f("Channel-Bridged-Time", t(ch.bridged_us));
        }
        None => {
            for n in [
                "Channel-Answered-Time",
                "Channel-Progress-Time",
                "Channel-Progress-Media-Time",
                "Channel-Hangup-Time",
                "Channel-Transfer-Time",
                "Channel-Resurrect-Time",
                "Channel-Bridged-Time",
            ] {
                f(n, "0".into());
            }
        }
    }
    f("Channel-Last-Hold", "0".into());
    f("Channel-Hold-Accum", "0".into());
    f("Screen-Bit", "true".into());
    f("Privacy-Hide-Name", "false".into());
    f("Privacy-Hide-Number", "false".into());
}

/// Q.850 code of a cause, as `variable_hangup_cause_q850` shows it.
pub(crate) fn q850(cause: &str) -> u32 {
    match cause {
        "UNALLOCATED_NUMBER" => 1,
        "NO_ROUTE_DESTINATION" => 3,
        "NORMAL_CLEARING" => 16,
        "USER_BUSY" => 17,
        "NO_USER_RESPONSE" => 18,
        "NO_ANSWER" => 19,
        "SUBSCRIBER_ABSENT" => 20,
        "CALL_REJECTED" => 21,
        "DESTINATION_OUT_OF_ORDER" => 27,
        "NORMAL_TEMPORARY_FAILURE" => 41,
        "RECOVERY_ON_TIMER_EXPIRE" => 102,
        "ORIGINATOR_CANCEL" => 487,
        "LOSE_RACE" => 502,
        "MANAGER_REQUEST" => 503,
        "USER_NOT_REGISTERED" => 606,
        "NUMBER_CHANGED" => 22,
        "EXCHANGE_ROUTING_ERROR" => 25,
        "INVALID_NUMBER_FORMAT" => 28,
        "NORMAL_UNSPECIFIED" => 31,
        "NETWORK_OUT_OF_ORDER" => 38,
        "SERVICE_UNAVAILABLE" => 63,
        "SERVICE_NOT_IMPLEMENTED" => 79,
        "INCOMPATIBLE_DESTINATION" => 88,
        "INTERWORKING" => 127,
        _ => 0,
    }
}

/// FreeSWITCH's cause names, for `uuid_kill <uuid> <cause>` and hupall.
pub(crate) fn known_cause(c: &str) -> Option<&'static str> {
    const CAUSES: &[&str] = &[
        "UNALLOCATED_NUMBER",
        "NO_ROUTE_DESTINATION",
        "NORMAL_CLEARING",
        "USER_BUSY",
        "NO_USER_RESPONSE",
        "NO_ANSWER",
        "SUBSCRIBER_ABSENT",
        "CALL_REJECTED",
        "DESTINATION_OUT_OF_ORDER",
        "NORMAL_TEMPORARY_FAILURE",
        "RECOVERY_ON_TIMER_EXPIRE",
        "ORIGINATOR_CANCEL",
        "LOSE_RACE",
        "MANAGER_REQUEST",
        "USER_NOT_REGISTERED",
        "ALLOTTED_TIMEOUT",
        "CHAN_NOT_IMPLEMENTED",
        "INVALID_NUMBER_FORMAT",
        "NORMAL_UNSPECIFIED",
        "NUMBER_CHANGED",
        "EXCHANGE_ROUTING_ERROR",
        "NETWORK_OUT_OF_ORDER",
        "SERVICE_UNAVAILABLE",
        "SERVICE_NOT_IMPLEMENTED",
        "INCOMPATIBLE_DESTINATION",
        "INTERWORKING",
    ];
    let up = c.trim().to_ascii_uppercase();
    CAUSES.iter().copied().find(|k| *k == up)
}
