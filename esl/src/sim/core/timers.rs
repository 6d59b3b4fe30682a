//! Timers: heartbeats, answer delays, talk times, playback ends, inbound arrivals.

use super::*;

impl Switch {
    // ---- timers --------------------------------------------------------------------------

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((t, _, _)) = self.timers.first() {
            if *t > now {
                break;
            }
            let Some((_, _, key)) = self.timers.pop_first() else {
                break;
            };
            self.fire_timer(now, key);
        }
    }

    pub(super) fn fire_timer(&mut self, now: Instant, key: TimerKey) {
        match key {
            TimerKey::Heartbeat => {
                self.heartbeat(now);
                let hb = self.cfg.heartbeat_interval;
                self.schedule(now + hb, TimerKey::Heartbeat);
            }
            TimerKey::Pump(conn) => self.pump(now, conn),
            TimerKey::Resume(ch) => self.resume(now, ch),
            TimerKey::BgApi(n) => {
                if let Some((job, name, arg)) = self.bg_jobs.remove(&n) {
                    self.run_bg_job(now, job, name, arg);
                }
            }
            TimerKey::Ring(ch) => {
                let Some(c) = self.chans.get(&ch) else { return };
                if c.answered || c.hangup_cause.is_some() {
                    return;
                }
                match c.var("sim_ring_outcome").unwrap_or("answer") {
                    "answer" => self.answer_originated(now, ch),
                    cause => {
                        let cause = known_cause(cause).unwrap_or("NORMAL_TEMPORARY_FAILURE");
                        self.hangup(now, ch, cause);
                    }
                }
            }
            TimerKey::OriginateTimeout(ch) => {
                if self.chans.get(&ch).is_some_and(|c| !c.answered) {
                    self.hangup(now, ch, "NO_ANSWER");
                }
            }
            TimerKey::TalkEnd(ch) => {
                if self.chans.get(&ch).is_some_and(|c| c.answered) {
                    self.hangup(now, ch, "NORMAL_CLEARING");
                }
            }
            TimerKey::Refer(ch) => {
                let to = self.chans.get(&ch).and_then(|c| c.refer.clone());
                if let Some((_, to)) = to {
                    self.phone_refer(now, ch, &to);
                }
            }
            TimerKey::AppDone(ch, seq) => {
                let Some(c) = self.chans.get(&ch) else { return };
                let Some(app) = c.current.as_ref().filter(|a| a.seq == seq) else {
                    return;
                };
                if app.name == "playback" {
                    let post = playback_post(&app.data, "done");
                    self.chan_event(now, ch, "PLAYBACK_STOP", vec![], post, true);
                    self.complete_app(now, ch, "FILE PLAYED");
                } else if app.name == "amd" {
                    self.amd_verdict(ch);
                    self.complete_app(now, ch, "_none_");
                } else {
                    self.complete_app(now, ch, "_none_");
                }
            }
            TimerKey::AvmdBeep(ch) => {
                if self
                    .chans
                    .get(&ch)
                    .is_some_and(|c| c.answered && c.hangup_cause.is_none())
                {
                    self.avmd_beep(now, ch);
                }
            }
            TimerKey::Patience(ch) => {
                let Some(c) = self.chans.get(&ch) else { return };
                if c.peer.is_none() {
                    let cause = if c.answered {
                        "NORMAL_CLEARING"
                    } else {
                        "ORIGINATOR_CANCEL"
                    };
                    self.hangup(now, ch, cause);
                }
            }
            TimerKey::Dtmf(ch) => {
                let Some(c) = self.chans.get_mut(&ch) else {
                    return;
                };
                if let Some(digits) = c.dtmf.take() {
                    // All at once, as `uuid_send_dtmf` sends them; non-DTMF characters are
                    // not sent (a phone has no such key).
                    for d in digits
                        .chars()
                        .filter(|d| crate::sim::config::is_dtmf_digit(*d))
                    {
                        self.caller_pressed(now, ch, d.to_ascii_uppercase());
                    }
                }
            }
            TimerKey::CallerDigit(ch) => self.caller_digits_due(now, ch),
            TimerKey::Collect(ch, id) => self.collect_timeout(now, ch, id),
            TimerKey::RecordEnd(ch, seq) => self.record_deadline(now, ch, seq),
            TimerKey::MessageEnd(ch) => self.message_end(now, ch),
            TimerKey::Arrival => {
                let Some(model) = self.cfg.scenario.inbound.clone() else {
                    return;
                };
                if self.cfg.inbound_target.is_none() {
                    return;
                }
                if model.max_calls.is_some_and(|m| self.inbound_placed >= m) {
                    return;
                }
                let num = format!("+1555{:07}", self.rng.range(0, 9_999_999));
                let patience = model.patience.as_ref().map(|d| d.sample(&mut self.rng));
                let talk = model.talk_time.as_ref().map(|d| d.sample(&mut self.rng));
                let dtmf_script = model.dtmf_script.as_ref().map(|s| {
                    let gap = model.dtmf_digit_gap.sample(&mut self.rng);
                    s.clone().with_digit_gap(gap)
                });
                // A voice message, when the scenario gives callers one (drawn only then, so
                // scenarios without it keep their random sequence).
                let message = model.message.as_ref().map(|d| {
                    crate::sim::config::VoiceMessage::capped(
                        d.sample(&mut self.rng),
                        model.after_message,
                    )
                });
                let dtmf = if model.dtmf.is_empty() || model.dtmf_script.is_some() {
                    None
                } else {
                    let i = self.rng.range(0, model.dtmf.len() as u64 - 1) as usize;
                    Some((
                        model.dtmf_delay.sample(&mut self.rng),
                        model.dtmf[i].clone(),
                    ))
                };
                self.place_inbound(
                    now,
                    InboundCall {
                        caller_number: num,
                        caller_name: String::new(),
                        destination: model.destination.clone(),
                        patience,
                        talk_time: talk,
                        dtmf,
                    },
                    match (dtmf_script, message) {
                        (Some(s), Some(m)) => Some(s.with_voice_message(m)),
                        (None, Some(m)) => Some(crate::sim::config::DtmfScript::only_message(m)),
                        (s, None) => s,
                    },
                );
                self.schedule_arrival(now);
            }
            TimerKey::LingerEnd(conn) => {
                if self.conns.contains_key(&conn) {
                    let n = self.goodbye_notice(conn, GOODBYE);
                    self.send(conn, n);
                    self.close(conn);
                }
            }
            TimerKey::Handover(ch) => self.complete_handover(now, ch),
            TimerKey::BridgeUnpark(a, b) => self.bridge_unpark(now, a, b),
            TimerKey::BridgeJoin(a, b) => self.bridge_join(now, a, b),
            TimerKey::ExtensionEnd(ch) => self.hangup(now, ch, "NORMAL_CLEARING"),
            TimerKey::ConnectTimeout(conn) => {
                if let Some(c) = self.conns.get(&conn)
                    && !c.connected
                {
                    let ch = c.channel;
                    self.close(conn);
                    self.conns.remove(&conn);
                    if let Some(ch) = ch {
                        self.hangup(now, ch, "NORMAL_CLEARING");
                    }
                }
            }
        }
    }

    pub(super) fn schedule_arrival(&mut self, now: Instant) {
        if self.cfg.inbound_target.is_none() {
            return;
        }
        let Some(m) = &self.cfg.scenario.inbound else {
            return;
        };
        if m.calls_per_minute <= 0.0 {
            return;
        }
        let gap = Dist::Exp(60.0 / m.calls_per_minute).sample(&mut self.rng);
        self.schedule(now + gap, TimerKey::Arrival);
    }

    pub(super) fn heartbeat(&mut self, now: Instant) {
        let up = now.saturating_duration_since(self.started);
        let mut p = self.common(now, "HEARTBEAT", ("switch_core.c", "send_heartbeat", 95));
        push(&mut p, "Event-Info", "System Ready");
        push(&mut p, "Up-Time", uptime_text(up));
        push(&mut p, "FreeSWITCH-Version", VERSION);
        push(&mut p, "Uptime-msec", up.as_millis().to_string());
        push(&mut p, "Session-Count", self.chans.len().to_string());
        push(&mut p, "Max-Sessions", "1000");
        push(&mut p, "Session-Per-Sec", "30");
        push(&mut p, "Session-Per-Sec-Last", "0");
        push(&mut p, "Session-Per-Sec-Max", "0");
        push(&mut p, "Session-Per-Sec-FiveMin", "0");
        push(
            &mut p,
            "Session-Since-Startup",
            self.sessions_since_start.to_string(),
        );
        push(&mut p, "Session-Peak-Max", self.peak.to_string());
        push(&mut p, "Session-Peak-FiveMin", self.peak.to_string());
        push(&mut p, "Idle-CPU", "99.000000");
        self.deliver("HEARTBEAT", None, None, p, None);
        let mut p = self.common(
            now,
            "RE_SCHEDULE",
            ("switch_scheduler.c", "switch_scheduler_execute", 73),
        );
        push(&mut p, "Task-ID", "1");
        push(&mut p, "Task-Desc", "heartbeat");
        push(&mut p, "Task-Group", "core");
        push(
            &mut p,
            "Task-Runtime",
            ((self.us(now) / 1_000_000) + 20).to_string(),
        );
        self.deliver("RE_SCHEDULE", None, None, p, None);
    }
}
