//! A caller whose controller is gone, as `esl-captures/socket-resume.md` shows FreeSWITCH
//! 1.10.12 doing it:
//!
//! | the caller                         | `socket_resume=true`                         | without it |
//! |------------------------------------|----------------------------------------------|------------|
//! | parked in `socket`                 | `socket` completes, the dialplan goes on: the hold loop | `socket` returns into its extension: `park` after it parks, nothing after it hangs up NORMAL_CLEARING |
//! | bridged by the controller          | the bridge is torn down (the other leg hung up NORMAL_CLEARING), the caller enters the hold loop | the bridge survives |
//! | `socket` target refuses (down)     | `socket` returns at once: the hold loop      | the call ends (DESTINATION_OUT_OF_ORDER) |
//!
//! The hold loop is the documented dialplan's (README "FreeSWITCH dialplan"): the hold tone
//! (`resume_loop.hold`), then `socket` again, at most `resume_loop.max_tries` passes, then
//! NORMAL_TEMPORARY_FAILURE. Every variable set on the caller stays, so the next `connect`
//! reply carries what the last controller stamped. Not modelled: the hold tone's own
//! playback events, a broadcast that keeps playing after a controller without
//! `socket_resume` dies (the capture's endless playback), and host lists (`a|b`).

use super::*;

impl Switch {
    /// The caller's outbound socket closed from the controller's side.
    pub(super) fn socket_lost(&mut self, now: Instant, ch: ChanId, conn: ConnId) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.hangup_cause.is_some() || c.socket != Some(conn) {
            return;
        }
        c.socket = None;
        let resume = c.var("socket_resume").is_some_and(is_true);
        match (c.peer, resume) {
            // socket_resume=false before the bridge: the bridge is the caller's now.
            (Some(_), false) => {}
            (Some(peer), true) => {
                c.resuming = true;
                self.hangup(now, peer, "NORMAL_CLEARING");
                if let Some(c) = self.chans.get_mut(&ch) {
                    c.resuming = false;
                    c.state = CState::Execute;
                }
                self.hold_then_resume(now, ch);
            }
            (None, true) => {
                self.stop_socket_app(now, ch);
                self.hold_then_resume(now, ch);
            }
            (None, false) => {
                self.stop_socket_app(now, ch);
                match self.cfg.switch.after_socket {
                    AfterSocket::Park => self.park(now, ch, None),
                    AfterSocket::Nothing => self.hangup(now, ch, "NORMAL_CLEARING"),
                }
            }
        }
    }

    /// Nobody accepted the caller's socket ("Connection refused").
    pub(super) fn socket_refused(&mut self, now: Instant, ch: ChanId, conn: ConnId) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.hangup_cause.is_some() || c.socket != Some(conn) {
            return;
        }
        c.socket = None;
        if c.var("socket_resume").is_some_and(is_true) {
            self.stop_socket_app(now, ch);
            self.hold_then_resume(now, ch);
        } else {
            self.hangup(now, ch, "DESTINATION_OUT_OF_ORDER");
        }
    }

    /// The hold tone ended: `socket` again, or give up.
    pub(super) fn resume(&mut self, now: Instant, ch: ChanId) {
        let Some(r) = self.cfg.switch.resume_loop.clone() else {
            return;
        };
        let Some(addr) = self.cfg.inbound_target.clone() else {
            return;
        };
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.hangup_cause.is_some() || c.socket.is_some() {
            return;
        }
        let tries = c
            .var("resume_tries")
            .and_then(|t| t.parse::<u32>().ok())
            .unwrap_or(0);
        if tries >= r.max_tries {
            self.hangup(now, ch, "NORMAL_TEMPORARY_FAILURE");
            return;
        }
        c.set_var("resume_tries", (tries + 1).to_string());
        self.run_socket(now, ch, addr);
    }

    /// The `socket` application completes (CHANNEL_UNPARK, EXECUTE_COMPLETE), and whatever
    /// the controller had playing on the caller stops with it.
    fn stop_socket_app(&mut self, now: Instant, ch: ChanId) {
        if let Some(c) = self.chans.get_mut(&ch) {
            c.current = None;
            c.queue.retain(|a| a.seq == 0);
        }
        self.unpark(now, ch);
    }

    fn hold_then_resume(&mut self, now: Instant, ch: ChanId) {
        let Some(r) = &self.cfg.switch.resume_loop else {
            self.hangup(now, ch, "NORMAL_CLEARING");
            return;
        };
        let hold = r.hold.sample(&mut self.rng);
        self.schedule(now + hold, TimerKey::Resume(ch));
    }
}
