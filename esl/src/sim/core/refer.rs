//! Transfers: `uuid_transfer` and a phone's SIP REFER, both ending in FreeSWITCH's
//! `switch_ivr_session_transfer`.
//!
//! `switch_ivr_session_transfer` (switch_ivr.c) sets CF_TRANSFER on the channel (so the bridge
//! it leaves does not apply `hangup_after_bridge`), gives it a new caller profile for the
//! extension, pushes `transfer_history` and sets `transfer_source`, both
//! `<epoch>:<uuid>:bl_xfer:<exten>/<context>/<dialplan>`, and sends it to CS_ROUTING.
//!
//! A blind REFER (`sofia_handle_sip_i_refer`, no Replaces) arrives on the transferor's leg
//! (the agent's phone). With a bridged peer, mod_sofia answers 202, marks the transferor
//! (`transfer_to=blind:<peer uuid>`, `transfer_destination=blind:<exten>`,
//! `transfer_fallback_extension=<From user>`, `endpoint_disposition=BLIND_TRANSFER`), gives the
//! peer `sip_refer_to` and `sip_h_Referred-By`, sends the phone NOTIFY `SIP/2.0 200 OK` and
//! transfers the peer to the Refer-To user in the peer's own context. The phone then hangs up
//! its dialog (BYE); if the bridge's end reached the transferor first, FreeSWITCH hung it up
//! already. Without a bridged peer ("Cannot Blind Transfer 1 Legged calls") the transferor gets
//! `endpoint_disposition=ATTENDED_TRANSFER_ERROR`, NOTIFY 403, and the call goes on.

use super::*;

/// How long after the NOTIFY the transferring phone sends its BYE (a UA ends the dialog once
/// told the transfer succeeded; no capture measured it, so a LAN round trip or two).
const PHONE_BYE_AFTER: Duration = Duration::from_millis(30);

impl Switch {
    /// `switch_ivr_session_transfer` for each target at once (`uuid_transfer -both` moves two
    /// legs of one bridge, neither of which may hang up when the other leaves).
    pub(super) fn session_transfer(
        &mut self,
        now: Instant,
        targets: &[ChanId],
        dest: &str,
        inline: bool,
    ) {
        let us = self.us(now);
        // Transferred legs keep going in the dialplan rather than hang up: FreeSWITCH's
        // CF_TRANSFER, modelled as park_after_bridge for the transfer's own unbridge only.
        // The flag is no channel variable there, so none is left behind for a later bridge.
        let before: Vec<(ChanId, Option<String>)> = targets
            .iter()
            .map(|t| {
                let old = self
                    .chans
                    .get(t)
                    .and_then(|c| c.var("park_after_bridge").map(str::to_owned));
                (*t, old)
            })
            .collect();
        for t in targets {
            if let Some(c) = self.chans.get_mut(t) {
                c.set_var("park_after_bridge", "true");
            }
        }
        let dialplan = if inline { "inline" } else { "XML" };
        for &t in targets {
            if let Some(p) = self.chans.get(&t).and_then(|c| c.peer) {
                self.unbridge(now, t, p);
            }
            if inline {
                // A transfer ends whatever the leg was doing (music, detection...).
                self.abort_current(now, t);
            }
            if let Some(c) = self.chans.get_mut(&t) {
                c.profile.dest = dest.to_owned();
                c.profile.index += 1;
                let source = format!(
                    "{}:{}:bl_xfer:{dest}/{}/{dialplan}",
                    us / 1_000_000,
                    c.uuid,
                    c.profile.context
                );
                c.profile.transfer_source = Some(source.clone());
                c.transfer_us = us;
                c.set_var("transfer_history", source.clone());
                c.set_var("transfer_source", source);
                c.state = CState::Routing;
            }
            self.unpark(now, t);
            self.chan_event(now, t, "CHANNEL_STATE", vec![], vec![], false);
            self.set_state(now, t, CState::Execute);
            if inline {
                for item in dest.split(',').filter(|i| !i.trim().is_empty()) {
                    let (app, data) = item.split_once(':').unwrap_or((item, ""));
                    self.queue_app(now, t, app.trim(), data.trim(), None);
                }
            } else {
                // The simulated dialplan parks every extension.
                self.park(now, t, None);
            }
        }
        for (t, old) in before {
            if let Some(c) = self.chans.get_mut(&t) {
                match old {
                    Some(v) => c.set_var("park_after_bridge", v),
                    None => c.unset_var("park_after_bridge"),
                }
            }
        }
    }

    /// The phone on `ch` sends a blind REFER to `exten` (its transfer key). `false`: there was
    /// no bridged peer to move (NOTIFY 403), and the call goes on.
    pub(crate) fn phone_refer(&mut self, now: Instant, ch: ChanId, exten: &str) -> bool {
        let Some(c) = self.chans.get(&ch) else {
            return false;
        };
        if c.hangup_cause.is_some() || !c.answered {
            return false;
        }
        // The phone's own user: the extension the leg was dialled at.
        let from_user = c.profile.dest.clone();
        let peer = c.peer.and_then(|p| {
            self.chans
                .get(&p)
                .filter(|pc| pc.hangup_cause.is_none())
                .map(|pc| (p, pc.uuid.clone()))
        });
        let Some((peer, peer_uuid)) = peer else {
            if let Some(c) = self.chans.get_mut(&ch) {
                c.set_var("endpoint_disposition", "ATTENDED_TRANSFER_ERROR");
            }
            return false;
        };
        if let Some(c) = self.chans.get_mut(&ch) {
            c.set_var("transfer_to", format!("blind:{peer_uuid}"));
            c.set_var("transfer_destination", format!("blind:{exten}"));
            c.set_var("transfer_fallback_extension", from_user.clone());
            c.set_var("endpoint_disposition", "BLIND_TRANSFER");
        }
        if let Some(p) = self.chans.get_mut(&peer) {
            p.set_var("sip_refer_to", format!("<sip:{exten}@192.0.2.10>"));
            p.set_var(
                "sip_h_Referred-By",
                format!("<sip:{from_user}@192.0.2.50;transport=udp>"),
            );
        }
        self.session_transfer(now, &[peer], exten, false);
        // The phone's BYE once NOTIFY told it the transfer worked (the bridge's end may have
        // hung the leg up already; a persistent line parked again is hung up by it).
        self.schedule(now + PHONE_BYE_AFTER, TimerKey::TalkEnd(ch));
        true
    }
}
