//! Legs dialled over real SIP: `sofia/<profile>/<user>@<ip>:<port>`, the recorder legs
//! switchyard originates to its own user agent server with `&eavesdrop(<customer>)`.
//!
//! The core decides and the shell dials (capture `eavesdrop-recorder-leg.md`):
//! ```text
//!  originate ─▶ CHANNEL_OUTGOING, STATE CS_INIT, CREATE, ORIGINATE, STATE CS_ROUTING,
//!               STATE CS_CONSUME_MEDIA                 ──▶ Output::Recorder(Dial)
//!  recorder_answered ─▶ CODEC x2, CHANNEL_ANSWER, CALLSTATE ACTIVE, CALL_UPDATE,
//!               then, after the originate's handover window (`handover`), the job's
//!               BACKGROUND_JOB +OK and STATE CS_EXECUTE, EXECUTE eavesdrop
//!                                                      ──▶ Output::Recorder(Audio)
//!  target bridged elsewhere / unbridged                ──▶ Output::Recorder(Audio)
//!  target hangs up ─▶ EXECUTE_COMPLETE eavesdrop, HANGUP NORMAL_CLEARING ...
//!                                                      ──▶ Output::Recorder(HangUp): BYE
//!  recorder_failed(cause) before the answer ─▶ hangup(cause): BACKGROUND_JOB -ERR <cause>
//!  no answer by originate_timeout ─▶ hangup NO_ANSWER (the ordinary originate timer)
//!  recorder_bye ─▶ hangup NORMAL_CLEARING
//! ```
//! What the leg streams follows mod_dptools' eavesdrop flags: `eavesdrop_bridge_aleg=true`
//! is what the target itself says, `eavesdrop_bridge_bleg=true` what it hears (its bridged
//! peer; silence while it has none), neither both mixed.

use std::net::{IpAddr, SocketAddr};

use super::*;
use crate::sim::tone::TONE_VAR;

/// What the shell must do about a leg dialled over SIP ([`Output::Recorder`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecorderAction {
    /// Send an INVITE for `leg` (its uuid) to `user@to`, and report
    /// [`Switch::recorder_answered`] or [`Switch::recorder_failed`]. Stream silence until an
    /// `Audio` comes.
    Dial {
        leg: String,
        to: SocketAddr,
        user: String,
        /// The calling number (`From`), as the originate set it.
        from: String,
    },
    /// From now on the leg's RTP carries the sum of these tones (empty: silence).
    Audio { leg: String, tones_hz: Vec<u32> },
    /// The leg hung up: BYE if answered, CANCEL (or nothing) if not. `cause` goes into the
    /// BYE's `Reason`, as sofia writes it.
    HangUp { leg: String, cause: String },
}

/// A dial string's SIP target: `<user>@<ip>[:<port>][;params]`. Only IP literals: the fake
/// switch resolves no names.
pub(super) fn parse_sip_target(dest: &str) -> Option<(String, SocketAddr)> {
    let dest = dest.split(';').next().unwrap_or(dest).trim();
    let dest = dest.strip_prefix("sip:").unwrap_or(dest);
    let (user, host) = dest.rsplit_once('@')?;
    if user.is_empty() || user.contains(char::is_whitespace) {
        return None;
    }
    let addr = match host.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => SocketAddr::new(host.parse::<IpAddr>().ok()?, 5060),
    };
    if addr.port() == 0 {
        return None;
    }
    Some((user.to_owned(), addr))
}

impl Switch {
    /// An originate of `sofia/<profile>/<user>@<ip>:<port>`: a leg the shell dials over UDP.
    /// `Err(cause)` when the URL is unusable (nothing is created, `-ERR` at once).
    #[allow(clippy::type_complexity)]
    pub(super) fn originate_sip(
        &mut self,
        now: Instant,
        profile: &str,
        dest: &str,
        vars: Vec<(String, String)>,
        waiter: Waiter,
        opts: Option<(
            Option<(String, String)>,
            Option<Duration>,
            (Option<String>, Option<String>),
        )>,
    ) -> Result<ChanId, &'static str> {
        let Some((user, to)) = parse_sip_target(dest) else {
            return Err("INVALID_URL");
        };
        let var = |k: &str| {
            vars.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        let uuid = var("origination_uuid").unwrap_or_else(|| self.rng.uuid());
        if self.by_uuid.contains_key(&uuid) {
            return Err("DESTINATION_OUT_OF_ORDER");
        }
        let (after, timeout, (cid_name, cid_num)) = opts.unwrap_or((None, None, (None, None)));
        let cid_name = var("origination_caller_id_name")
            .or(cid_name)
            .unwrap_or_default();
        let cid_num = var("origination_caller_id_number")
            .or(cid_num)
            .unwrap_or_else(|| "0000000000".into());
        let timeout = var("originate_timeout")
            .or_else(|| var("leg_timeout"))
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs)
            .or(timeout)
            .unwrap_or(Duration::from_secs(60));
        let name = format!("sofia/{profile}/{user}@{to}");
        let ch = self.new_channel(
            now,
            uuid.clone(),
            name,
            true,
            &cid_name,
            &cid_num,
            &user,
            "mod_sofia",
        );
        if let Some(c) = self.chans.get_mut(&ch) {
            for (k, v) in &vars {
                c.set_var(k, v.clone());
            }
            c.set_var("originate_endpoint", "sofia");
            c.sip_leg = true;
            c.waiter = waiter;
            c.after_answer = after;
            c.ring_deadline = Some(now + timeout);
        }
        // The order of the capture's recorder legs (mod_sofia: OUTGOING before CREATE).
        self.chan_event(now, ch, "CHANNEL_OUTGOING", vec![], vec![], false);
        self.chan_event(now, ch, "CHANNEL_STATE", vec![], vec![], false);
        self.chan_event(now, ch, "CHANNEL_CREATE", vec![], vec![], true);
        self.chan_event(now, ch, "CHANNEL_ORIGINATE", vec![], vec![], true);
        self.set_state(now, ch, CState::Routing);
        self.set_state(now, ch, CState::ConsumeMedia);
        self.schedule(now + timeout, TimerKey::OriginateTimeout(ch));
        self.out.push_back(Output::Recorder(RecorderAction::Dial {
            leg: uuid,
            to,
            user,
            from: cid_num,
        }));
        Ok(ch)
    }

    /// The shell's INVITE got a 2xx (and it sent the ACK): the leg answers and its
    /// originate completes as any other.
    pub fn recorder_answered(&mut self, now: Instant, leg: &str) {
        let Some(ch) = self.sip_leg(leg) else { return };
        if self.chans.get(&ch).is_none_or(|c| c.answered) {
            return;
        }
        // The answer's SDP settles the codec: read and write CODEC, then the answer.
        self.chan_event(now, ch, "CODEC", vec![], vec![], true);
        self.chan_event(now, ch, "CODEC", vec![], vec![], true);
        self.answer(now, ch);
        let pre = vec![("Direction".into(), "RECV".into())];
        self.chan_event(now, ch, "CALL_UPDATE", pre, vec![], true);
        self.answer_originated(now, ch);
    }

    /// The dial failed: a final non-2xx response (mapped to a cause with
    /// [`crate::sim::sip::cause_for_status`]), an ICMP error or a transport failure. An
    /// unknown cause name counts as NORMAL_TEMPORARY_FAILURE.
    pub fn recorder_failed(&mut self, now: Instant, leg: &str, cause: &str) {
        let Some(ch) = self.sip_leg(leg) else { return };
        let cause = known_cause(cause).unwrap_or("NORMAL_TEMPORARY_FAILURE");
        self.hangup(now, ch, cause);
    }

    /// The far end sent BYE: sofia hangs the leg up NORMAL_CLEARING.
    pub fn recorder_bye(&mut self, now: Instant, leg: &str) {
        let Some(ch) = self.sip_leg(leg) else { return };
        self.hangup(now, ch, "NORMAL_CLEARING");
    }

    /// The tone of a channel in Hz (its `sim_tone_hz`), for tests that check recordings.
    pub fn tone_hz(&self, uuid: &str) -> Option<u32> {
        let id = self.by_uuid.get(uuid)?;
        self.tone_of(*id)
    }

    /// Gives a new channel the next tone of its class (`sim_tone_hz`). Recorder legs get
    /// none: they only listen.
    pub(super) fn give_voice(&mut self, ch: ChanId, voice: Voice) {
        let counter = match voice {
            Voice::Caller => &mut self.voices.0,
            Voice::Agent => &mut self.voices.1,
        };
        let n = *counter;
        *counter += 1;
        if let Some(c) = self.chans.get_mut(&ch) {
            c.set_var(TONE_VAR, tone_hz(voice, n).to_string());
        }
    }

    fn sip_leg(&self, uuid: &str) -> Option<ChanId> {
        let ch = *self.by_uuid.get(uuid)?;
        self.chans
            .get(&ch)
            .filter(|c| c.sip_leg && c.hangup_cause.is_none())
            .map(|c| c.id)
    }

    pub(super) fn tone_of(&self, ch: ChanId) -> Option<u32> {
        self.chans.get(&ch)?.var(TONE_VAR)?.parse().ok()
    }

    /// What `ch` hears: its bridged peer's tone (nothing while unbridged).
    pub(super) fn heard_by(&self, ch: ChanId) -> Option<u32> {
        let peer = self.chans.get(&ch)?.peer?;
        self.tone_of(peer)
    }

    /// The tones a recorder leg eavesdropping on `target` streams, by its flags.
    fn eavesdrop_tones(&self, leg: ChanId, target: ChanId) -> Vec<u32> {
        let flag = |n: &str| {
            self.chans
                .get(&leg)
                .and_then(|c| c.var(n))
                .is_some_and(is_true)
        };
        let (aleg, bleg) = (flag("eavesdrop_bridge_aleg"), flag("eavesdrop_bridge_bleg"));
        let said = self.tone_of(target);
        let heard = self.heard_by(target);
        match (aleg, bleg) {
            (true, false) => said.into_iter().collect(),
            (false, true) => heard.into_iter().collect(),
            _ => said.into_iter().chain(heard).collect(),
        }
    }

    /// Tells the shell what a SIP leg eavesdropping on `target` now streams.
    pub(super) fn refresh_eavesdrop_audio(&mut self, leg: ChanId, target: ChanId) {
        let Some(c) = self.chans.get(&leg).filter(|c| c.sip_leg) else {
            return;
        };
        let uuid = c.uuid.clone();
        let tones_hz = self.eavesdrop_tones(leg, target);
        self.out.push_back(Output::Recorder(RecorderAction::Audio {
            leg: uuid,
            tones_hz,
        }));
    }

    /// `ch`'s bridged peer changed (bridge, unbridge, transfer): its recordings hear someone
    /// else from now on, and so do the recorder legs eavesdropping on it.
    pub(super) fn peer_changed(&mut self, now: Instant, ch: ChanId) {
        let heard = self.heard_by(ch);
        if let Some(c) = self.chans.get_mut(&ch) {
            for r in &mut c.recordings {
                r.hears(now, heard);
            }
        }
        let legs = self.eavesdroppers.get(&ch).cloned().unwrap_or_default();
        for leg in legs {
            self.refresh_eavesdrop_audio(leg, ch);
        }
        self.oreka_refresh(ch);
    }

    /// A SIP leg is hanging up: the shell ends its dialog.
    pub(super) fn sip_leg_hung_up(&mut self, ch: ChanId, cause: &str) {
        if let Some(c) = self.chans.get(&ch).filter(|c| c.sip_leg) {
            self.out.push_back(Output::Recorder(RecorderAction::HangUp {
                leg: c.uuid.clone(),
                cause: cause.to_owned(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_targets_need_a_user_and_an_ip_literal() {
        let (u, a) = parse_sip_target("rec-1-a@127.0.0.1:5090").unwrap();
        assert_eq!(
            (u.as_str(), a.to_string().as_str()),
            ("rec-1-a", "127.0.0.1:5090")
        );
        let (_, a) = parse_sip_target("rec@127.0.0.1;transport=udp").unwrap();
        assert_eq!(a.port(), 5060);
        assert_eq!(parse_sip_target("rec-1-a"), None);
        assert_eq!(parse_sip_target("@127.0.0.1:5090"), None);
        assert_eq!(parse_sip_target("rec@pbx.example:5090"), None);
        assert_eq!(parse_sip_target("rec@127.0.0.1:0"), None);
    }
}
