//! mod_oreka's `oreka_record`, as mod_oreka.c (FreeSWITCH 1.10.12; removed from the tree
//! afterwards) does it: a media bug on the channel whose INIT sends one SIP INVITE per
//! direction to the `oreka.conf` server and whose CLOSE sends one BYE per direction; RTP
//! from FreeSWITCH's address at a port it picked, to the server's address at the same port.
//!
//! ```text
//!  oreka_record (answered, not forked yet) ─▶ MEDIA_BUG_START (oreka)  ──▶ Output::Oreka(Start)
//!  oreka_record on a forked channel        ─▶ "Cannot run oreka recording 2 times": nothing
//!  oreka_record stop on a forked channel   ─▶ MEDIA_BUG_STOP           ──▶ Output::Oreka(Stop)
//!  (mod_oreka only looks for `stop` on a forked channel: elsewhere it starts a fork)
//!  peer changed (bridge, unbridge)         ─▶                          ──▶ Output::Oreka(Audio)
//!  hangup                                  ─▶ MEDIA_BUG_STOP           ──▶ Output::Oreka(Stop)
//!  no mod_oreka loaded ([`SimConfig::oreka`] unset): the application does not exist, and
//!  FreeSWITCH hangs the channel up DESTINATION_OUT_OF_ORDER ("Invalid Application")
//! ```
//! `oreka_mux_streams=true` on the channel sends RX only, carrying both directions mixed.
//! Channel variables `oreka_sip_h_<Name>` become `<Name>:` headers of the INVITEs and BYEs.

use std::net::{IpAddr, SocketAddr};

use super::*;

/// What the shell must do about a channel's mod_oreka fork ([`Output::Oreka`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrekaAction {
    /// Bind two RTP ports on `local_ip`, send the INVITEs to `server`, stream.
    Start {
        uuid: String,
        server: SocketAddr,
        local_ip: IpAddr,
        caller_number: String,
        caller_name: String,
        callee_number: String,
        callee_name: String,
        mux: bool,
        headers: Vec<(String, String)>,
        said: Vec<u32>,
        heard: Vec<u32>,
    },
    /// What each direction carries from now on.
    Audio {
        uuid: String,
        said: Vec<u32>,
        heard: Vec<u32>,
    },
    /// The media bug closed: one BYE per direction, the ports released.
    Stop { uuid: String },
}

/// Where mod_oreka sends (its `oreka.conf`), and the address it sends from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrekaSetup {
    /// `sip-server-addr` and `sip-server-port`.
    pub server: SocketAddr,
    /// FreeSWITCH's own address (`switch_find_local_ip`): the INVITE's `o=` line and where
    /// RTP comes from. Not the loopback address a recorder on the same host listens on, so
    /// both can hold the same port number.
    pub local_ip: IpAddr,
}

impl Switch {
    /// `uuid_broadcast <ch> oreka_record::<data>` on a bridged channel: the bridge loop runs
    /// queued applications between two frames (switch_ivr_bridge.c parses the private events
    /// of either leg), whatever the channel ran before the bridge, and this one returns at
    /// once. Answers whether it ran so.
    pub(super) fn oreka_in_bridge(&mut self, now: Instant, ch: ChanId, data: &str) -> bool {
        if self.chans.get(&ch).is_none_or(|c| c.peer.is_none()) {
            return false;
        }
        let app = App {
            name: "oreka_record".into(),
            data: data.to_owned(),
            uuid: self.rng.uuid(),
            seq: 0,
        };
        self.chan_event(
            now,
            ch,
            "CHANNEL_EXECUTE",
            vec![],
            app_post(&app, None),
            true,
        );
        self.oreka_record(now, ch, data);
        let post = app_post(&app, Some("_none_"));
        self.chan_event(now, ch, "CHANNEL_EXECUTE_COMPLETE", vec![], post, true);
        true
    }

    /// The `oreka_record` application on `ch` with argument `data` (its completion is the
    /// caller's).
    pub(super) fn oreka_record(&mut self, now: Instant, ch: ChanId, data: &str) {
        let Some(setup) = self.cfg.oreka.clone() else {
            // switch_core_session_execute_application_get_flags: no such application.
            self.hangup(now, ch, "DESTINATION_OUT_OF_ORDER");
            return;
        };
        let forked = self.chans.get(&ch).is_some_and(|c| c.oreka);
        if forked {
            if data.trim().eq_ignore_ascii_case("stop") {
                self.oreka_stop(now, ch);
            }
            return;
        }
        let said: Vec<u32> = self.tone_of(ch).into_iter().collect();
        let heard: Vec<u32> = self.heard_by(ch).into_iter().collect();
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        c.oreka = true;
        let p = &c.profile;
        let caller_number = p.cid_num.clone();
        let caller_name = if p.cid_name.is_empty() {
            caller_number.clone()
        } else {
            p.cid_name.clone()
        };
        let callee_number = if p.callee_num.is_empty() {
            p.dest.clone()
        } else {
            p.callee_num.clone()
        };
        let callee_name = if p.callee_name.is_empty() {
            callee_number.clone()
        } else {
            p.callee_name.clone()
        };
        let mux = c.var("oreka_mux_streams").is_some_and(is_true);
        let headers = c
            .vars
            .iter()
            .filter_map(|(k, v)| {
                let name = k
                    .get(..12)
                    .filter(|p| p.eq_ignore_ascii_case("oreka_sip_h_"))?;
                Some((k[name.len()..].to_owned(), v.clone()))
            })
            .collect();
        let uuid = c.uuid.clone();
        self.chan_event(now, ch, "MEDIA_BUG_START", oreka_bug_pre(), vec![], true);
        self.out.push_back(Output::Oreka(OrekaAction::Start {
            uuid,
            server: setup.server,
            local_ip: setup.local_ip,
            caller_number,
            caller_name,
            callee_number,
            callee_name,
            mux,
            headers,
            said,
            heard,
        }));
    }

    /// The fork's media bug closes (`oreka_record stop`, or the channel's hangup).
    pub(super) fn oreka_stop(&mut self, now: Instant, ch: ChanId) {
        let Some(c) = self.chans.get_mut(&ch).filter(|c| c.oreka) else {
            return;
        };
        c.oreka = false;
        let uuid = c.uuid.clone();
        self.chan_event(now, ch, "MEDIA_BUG_STOP", oreka_bug_pre(), vec![], true);
        self.out
            .push_back(Output::Oreka(OrekaAction::Stop { uuid }));
    }

    /// `ch` says or hears someone else now: the fork's directions follow.
    pub(super) fn oreka_refresh(&mut self, ch: ChanId) {
        let Some(c) = self.chans.get(&ch).filter(|c| c.oreka) else {
            return;
        };
        let uuid = c.uuid.clone();
        let said = self.tone_of(ch).into_iter().collect();
        let heard = self.heard_by(ch).into_iter().collect();
        self.out
            .push_back(Output::Oreka(OrekaAction::Audio { uuid, said, heard }));
    }
}

/// MEDIA_BUG_START/STOP's own headers for mod_oreka's bug (named `oreka`, no target).
fn oreka_bug_pre() -> Pairs {
    vec![
        ("Media-Bug-Function".into(), "oreka".into()),
        ("Media-Bug-Target".into(), String::new()),
    ]
}
