//! Inbound calls, placed the way a dialplan `socket` application does.

use super::*;
use crate::sim::config::DtmfScript;

impl Switch {
    // ---- inbound calls -------------------------------------------------------------------

    /// A caller arrives: the channel runs the dialplan's `socket` application, which opens an
    /// outbound socket to the inbound target. `None` when no target is configured.
    pub fn place_inbound_call(&mut self, now: Instant, call: InboundCall) -> Option<String> {
        self.place_inbound(now, call, None)
    }

    /// [`Switch::place_inbound_call`] with a caller who presses digits as `script` says,
    /// timed from the answer (see `config`'s module doc). The call's own `dtmf`, if any, is
    /// pressed too; the digits of both reach the channel in time order. A script's voice
    /// message ([`DtmfScript::with_message`]) is what the caller says into a `record`.
    pub fn place_scripted_call(
        &mut self,
        now: Instant,
        call: InboundCall,
        script: DtmfScript,
    ) -> Option<String> {
        self.place_inbound(now, call, Some(script))
    }

    pub(super) fn place_inbound(
        &mut self,
        now: Instant,
        call: InboundCall,
        script: Option<DtmfScript>,
    ) -> Option<String> {
        let addr = self.cfg.inbound_target.clone()?;
        self.inbound_placed += 1;
        let uuid = self.rng.uuid();
        let num = if call.caller_number.is_empty() {
            "0000000000".to_owned()
        } else {
            call.caller_number.clone()
        };
        let name = format!("sofia/external/{num}@198.51.100.10");
        let dest = if call.destination.is_empty() {
            "5000".to_owned()
        } else {
            call.destination.clone()
        };
        let ch = self.new_channel(
            now,
            uuid.clone(),
            name,
            false,
            &call.caller_name,
            &num,
            &dest,
            "mod_sofia",
        );
        self.give_voice(ch, Voice::Caller);
        if let Some(c) = self.chans.get_mut(&ch) {
            c.inbound_caller = true;
            c.talk_time = call.talk_time;
            c.hangup_when_idle = false;
            c.set_var("call_uuid", uuid.clone());
            if let Some((d, digits)) = &call.dtmf {
                c.dtmf = Some(digits.clone());
                c.set_var("sim_dtmf_delay_ms", d.as_millis().to_string());
            }
        }
        if let Some(script) = script {
            if let Some(m) = script.message() {
                self.set_caller_message(ch, *m);
            }
            self.dtmf_scripts.insert(ch, script);
        }
        if let Some(c) = self.chans.get_mut(&ch)
            && let Some(r) = &self.cfg.switch.resume_loop
        {
            // The documented dialplan's first actions.
            c.set_var("socket_resume", "true");
            c.set_var("resume_tries", "1");
            c.set_var("resume_max", r.max_tries.to_string());
        }
        self.chan_event(now, ch, "CHANNEL_CREATE", vec![], vec![], true);
        self.set_state(now, ch, CState::Routing);
        self.set_callstate(now, ch, "RINGING");
        self.set_state(now, ch, CState::Execute);
        self.run_socket(now, ch, addr);
        if let Some(p) = call.patience {
            self.schedule(now + p, TimerKey::Patience(ch));
        }
        Some(uuid)
    }
}

impl Switch {
    /// The `socket <addr> async full` action: the channel parks in it and the switch connects
    /// to `addr` for it.
    pub(super) fn run_socket(&mut self, now: Instant, ch: ChanId, addr: String) {
        let Some(uuid) = self.chans.get(&ch).map(|c| c.uuid.clone()) else {
            return;
        };
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let mut c = Conn::new(ConnKind::Outbound);
        c.channel = Some(ch);
        c.session = Some(uuid.clone());
        self.conns.insert(conn, c);
        let data = format!("{addr} async full");
        let host = addr
            .rsplit_once(':')
            .map_or(addr.as_str(), |(h, _)| h)
            .to_owned();
        let app_uuid = self.rng.uuid();
        if let Some(c) = self.chans.get_mut(&ch) {
            c.socket = Some(conn);
            c.set_var("current_application_data", data.clone());
            c.set_var("current_application", "socket");
            c.set_var("socket_host", host);
            c.app_seq += 1;
            let app = App {
                name: "socket".into(),
                data,
                uuid: app_uuid,
                seq: 0,
            };
            let post = app_post(&app, None);
            c.queue.push_front(app);
            c.parked = true;
            self.chan_event(now, ch, "CHANNEL_EXECUTE", vec![], post, true);
        }
        self.out
            .push_back(Output::OpenOutbound { conn, addr, uuid });
    }
}
