//! The channel state machine: answer, park, applications, bridge, hangup, recording.

use super::*;

impl Switch {
    // ---- channels ------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_channel(
        &mut self,
        now: Instant,
        uuid: String,
        name: String,
        outbound: bool,
        cid_name: &str,
        cid_num: &str,
        dest: &str,
        source: &'static str,
    ) -> ChanId {
        let id = ChanId(self.next_chan);
        self.next_chan += 1;
        self.session_id += 1;
        self.sessions_since_start += 1;
        let created_us = self.us(now);
        let profile = Profile {
            direction: if outbound { "outbound" } else { "inbound" },
            cid_name: cid_name.to_owned(),
            cid_num: cid_num.to_owned(),
            callee_name: if outbound {
                "Outbound Call".into()
            } else {
                String::new()
            },
            callee_num: if outbound {
                dest.to_owned()
            } else {
                String::new()
            },
            dest: dest.to_owned(),
            uuid: uuid.clone(),
            source,
            context: "default".into(),
            channel_name: name.clone(),
            created_us,
            index: 1,
            transfer_source: None,
        };
        let mut ch = Channel {
            id,
            uuid: uuid.clone(),
            name: name.clone(),
            outbound,
            state: CState::Init,
            callstate: "DOWN",
            answered: false,
            early: false,
            hit_dialplan: !outbound,
            codec: "PCMU",
            codec_rate: "8000",
            codec_bits: "64000",
            read_codec_push: None,
            profile,
            created_at: now,
            answered_at: None,
            progress_at: None,
            progress_media_at: None,
            bridged_at: None,
            answered_us: 0,
            progress_us: 0,
            progress_media_us: 0,
            bridged_us: 0,
            hangup_us: 0,
            transfer_us: 0,
            vars: Vec::with_capacity(48),
            hangup_cause: None,
            peer: None,
            other: None,
            current: None,
            queue: VecDeque::new(),
            parked: false,
            waiter: Waiter::None,
            after_answer: None,
            hangup_when_idle: outbound,
            transferring: false,
            socket: None,
            socket_fell_through: false,
            resuming: false,
            recordings: Vec::new(),
            talk_time: None,
            refer: None,
            app_seq: 0,
            last_app: None,
            eavesdrop: None,
            sip_leg: false,
            oreka: false,
            ring_deadline: None,
            inbound_caller: false,
            dtmf: None,
            handover: None,
        };
        ch.set_var("direction", ch.direction());
        if outbound {
            ch.set_var("is_outbound", "true");
        }
        ch.set_var("uuid", uuid.clone());
        ch.set_var("session_id", self.session_id.to_string());
        ch.set_var("channel_name", name);
        ch.set_var("read_codec", "PCMU");
        ch.set_var("read_rate", "8000");
        ch.set_var("write_codec", "PCMU");
        ch.set_var("write_rate", "8000");
        // Everyone is a caller's voice until `give_voice` says otherwise (agent legs).
        self.by_uuid.insert(uuid, id);
        self.chans.insert(id, ch);
        self.peak = self.peak.max(self.chans.len());
        id
    }

    pub(super) fn answer(&mut self, now: Instant, ch: ChanId) {
        let us = self.us(now);
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.answered || c.hangup_cause.is_some() {
            return;
        }
        c.answered = true;
        c.answered_at = Some(now);
        c.answered_us = us;
        c.set_var("endpoint_disposition", "ANSWER");
        let talk = if c.inbound_caller { None } else { c.talk_time };
        let dtmf_after = c
            .var("sim_dtmf_delay_ms")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis);
        self.chan_event(now, ch, "CHANNEL_ANSWER", vec![], vec![], true);
        self.set_callstate(now, ch, "ACTIVE");
        if let Some(t) = talk {
            self.schedule(now + t, TimerKey::TalkEnd(ch));
        }
        if let Some(d) = dtmf_after {
            self.schedule(now + d, TimerKey::Dtmf(ch));
        }
        self.start_caller_script(now, ch);
    }

    pub(super) fn progress(&mut self, now: Instant, ch: ChanId, media: bool) {
        let us = self.us(now);
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if media {
            if c.early {
                return;
            }
            c.early = true;
            c.progress_media_at = Some(now);
            c.progress_media_us = us;
            self.chan_event(now, ch, "CHANNEL_PROGRESS_MEDIA", vec![], vec![], true);
            self.set_callstate(now, ch, "EARLY");
        } else {
            if c.progress_at.is_some() {
                return;
            }
            c.progress_at = Some(now);
            c.progress_us = us;
            self.chan_event(now, ch, "CHANNEL_PROGRESS", vec![], vec![], true);
            self.set_callstate(now, ch, "RINGING");
        }
    }

    /// Tells whoever waited for an originate how it went.
    pub(super) fn resolve(
        &mut self,
        now: Instant,
        waiter: Waiter,
        b: ChanId,
        result: Result<&str, &str>,
    ) {
        let text = match result {
            Ok(u) => format!("+OK {u}\n"),
            Err(cause) => format!("-ERR {cause}\n"),
        };
        match waiter {
            Waiter::None => {}
            Waiter::Api(conn) => {
                self.api_done(conn, text);
                self.schedule(now, TimerKey::Pump(conn));
            }
            Waiter::Bg { job, command, arg } => {
                self.background_job(now, &job, &command, &arg, text)
            }
            Waiter::Bridge { a, app_seq } => {
                self.dialing.remove(&a);
                let current = self
                    .chans
                    .get(&a)
                    .and_then(|c| c.current.as_ref())
                    .is_some_and(|app| app.seq == app_seq);
                if !current {
                    // The a-leg moved on (hung up): drop the new leg.
                    if result.is_ok() {
                        self.hangup(now, b, "ORIGINATOR_CANCEL");
                    }
                    return;
                }
                match result {
                    Ok(_) => self.bridge(now, a, b),
                    Err(cause) => {
                        if let Some(c) = self.chans.get_mut(&a) {
                            c.set_var("originate_disposition", cause);
                            c.set_var("DIALSTATUS", cause);
                            c.set_var("last_bridge_hangup_cause", cause);
                        }
                        self.complete_app(now, a, "_none_");
                    }
                }
            }
        }
    }

    /// The api response, then whatever events waited behind it.
    pub(super) fn api_done(&mut self, conn: ConnId, text: String) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.blocked = false;
        let held: Vec<Message> = c.held.drain(..).collect();
        self.send(conn, Message::ApiResponse(Bytes::from(text)));
        for m in held {
            self.send(conn, m);
        }
    }

    pub(super) fn park(&mut self, now: Instant, ch: ChanId, app_uuid: Option<String>) {
        let uuid = app_uuid.unwrap_or_else(|| self.rng.uuid());
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.parked {
            return;
        }
        c.app_seq += 1;
        let app = App {
            name: "park".into(),
            data: String::new(),
            uuid,
            seq: c.app_seq,
        };
        c.set_var("current_application", "park");
        c.parked = true;
        c.hangup_when_idle = false;
        let post = app_post(&app, None);
        c.current = None;
        c.last_app = Some(("park".into(), String::new()));
        // Park holds the application slot open until something unparks the channel.
        c.queue.push_front(App { seq: 0, ..app });
        self.chan_event(now, ch, "CHANNEL_EXECUTE", vec![], post, true);
        self.chan_event(now, ch, "CHANNEL_PARK", vec![], vec![], true);
    }

    /// Leaves park: CHANNEL_UNPARK and the park (or socket) application's completion.
    pub(super) fn unpark(&mut self, now: Instant, ch: ChanId) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if !c.parked {
            return;
        }
        c.parked = false;
        let park_app = match c.queue.front() {
            Some(a) if a.seq == 0 => c.queue.pop_front(),
            _ => None,
        };
        self.chan_event(now, ch, "CHANNEL_UNPARK", vec![], vec![], true);
        if let Some(app) = park_app {
            let resp = self
                .chans
                .get(&ch)
                .and_then(|c| c.var("sim_last_response").map(str::to_owned))
                .unwrap_or_else(|| "_none_".into());
            let post = app_post(&app, Some(&resp));
            self.chan_event(now, ch, "CHANNEL_EXECUTE_COMPLETE", vec![], post, true);
        }
    }

    /// Queues an application (sendmsg execute, `&app()` of an originate, broadcast...).
    pub(super) fn queue_app(
        &mut self,
        now: Instant,
        ch: ChanId,
        name: &str,
        data: &str,
        uuid: Option<String>,
    ) {
        let uuid = uuid.unwrap_or_else(|| self.rng.uuid());
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.hangup_cause.is_some() {
            return;
        }
        // Park now, unless an application runs: then it parks when its turn comes.
        if name == "park" && c.current.is_none() {
            self.park(now, ch, Some(uuid));
            return;
        }
        c.app_seq += 1;
        let app = App {
            name: name.to_owned(),
            data: data.to_owned(),
            uuid,
            seq: c.app_seq,
        };
        c.queue.push_back(app);
        if c.current.is_none() {
            self.start_next(now, ch);
        }
    }

    /// Adds an application to the queue without starting anything.
    pub(super) fn enqueue_app(&mut self, ch: ChanId, name: &str, data: &str) {
        let uuid = self.rng.uuid();
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        c.app_seq += 1;
        let seq = c.app_seq;
        c.queue.push_back(App {
            name: name.to_owned(),
            data: data.to_owned(),
            uuid,
            seq,
        });
    }

    pub(super) fn start_next(&mut self, now: Instant, ch: ChanId) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.current.is_some() {
            return;
        }
        // A park placeholder stays at the head while parked.
        let idx = c.queue.iter().position(|a| a.seq != 0);
        let Some(app) = idx.and_then(|i| c.queue.remove(i)) else {
            // Inside an originate's handover window its application is still to come.
            if c.hangup_when_idle
                && c.peer.is_none()
                && !c.parked
                && c.handover.is_none()
                && !c.transferring
            {
                self.hangup(now, ch, "NORMAL_CLEARING");
            }
            return;
        };
        if app.name == "park" {
            self.park(now, ch, Some(app.uuid));
            return;
        }
        c.set_var("current_application", app.name.clone());
        if app.data.is_empty() {
            c.unset_var("current_application_data");
        } else {
            c.set_var("current_application_data", app.data.clone());
        }
        c.current = Some(app.clone());
        let post = app_post(&app, None);
        self.chan_event(now, ch, "CHANNEL_EXECUTE", vec![], post, true);
        self.run_app(now, ch, app);
    }

    pub(super) fn run_app(&mut self, now: Instant, ch: ChanId, app: App) {
        match app.name.as_str() {
            "answer" => {
                self.answer(now, ch);
                self.complete_app(now, ch, "_none_");
            }
            "pre_answer" => {
                self.progress(now, ch, true);
                self.complete_app(now, ch, "_none_");
            }
            "ring_ready" => {
                self.progress(now, ch, false);
                self.complete_app(now, ch, "_none_");
            }
            "hangup" => {
                let cause = known_cause(&app.data).unwrap_or("NORMAL_CLEARING");
                self.hangup(now, ch, cause);
            }
            "set" | "export" => {
                if let Some((n, v)) = app.data.split_once('=')
                    && let Some(c) = self.chans.get_mut(&ch)
                {
                    c.set_var(n.trim(), v);
                }
                self.complete_app(now, ch, "_none_");
            }
            "sleep" => {
                let ms = app.data.trim().parse::<u64>().unwrap_or(0);
                self.schedule(
                    now + Duration::from_millis(ms),
                    TimerKey::AppDone(ch, app.seq),
                );
            }
            "amd" => {
                // mod_amd listens until it decides, then sets amd_result / amd_cause.
                let d = self.cfg.scenario.customers.amd_delay.sample(&mut self.rng);
                self.schedule(now + d, TimerKey::AppDone(ch, app.seq));
            }
            "avmd_start" => {
                // mod_avmd starts a media bug and returns; a machine's beep fires later.
                let machine = self
                    .chans
                    .get(&ch)
                    .is_some_and(|c| c.var("sim_amd_result") == Some("MACHINE"));
                if machine {
                    let d = self.cfg.scenario.customers.amd_delay.sample(&mut self.rng);
                    self.schedule(now + d, TimerKey::AvmdBeep(ch));
                }
                self.complete_app(now, ch, "_none_");
            }
            "playback" | "endless_playback" => {
                // A file that is not there: no PLAYBACK_START, the application fails at once
                // (switch_ivr_play_file returns before the playback starts).
                if self.cfg.sounds.hidden(&app.data) {
                    if let Some(c) = self.chans.get_mut(&ch) {
                        c.set_var("sim_last_response", "FILE NOT FOUND");
                    }
                    self.complete_app(now, ch, "FILE NOT FOUND");
                    return;
                }
                let (kind, mut len) = playback_length(&app.data, self.cfg.default_playback);
                if kind == "file"
                    && let Some(known) = self.known_lengths.get(app.data.trim())
                {
                    len = Some(*known);
                }
                let post = vec![
                    ("Playback-File-Type".into(), kind.to_owned()),
                    ("Playback-File-Path".into(), app.data.clone()),
                ];
                self.chan_event(now, ch, "PLAYBACK_START", vec![], post, true);
                if let Some(len) = len.filter(|_| app.name == "playback") {
                    self.schedule(now + len, TimerKey::AppDone(ch, app.seq));
                }
                if let Some(c) = self.chans.get_mut(&ch) {
                    c.set_var("sim_last_response", "FILE PLAYED");
                }
            }
            "play_and_get_digits" => self.pagd_start(now, ch, &app),
            "record" => self.record_app_start(now, ch, &app),
            "record_session" => {
                self.record_start(now, ch, app.data.trim(), None);
                self.complete_app(now, ch, "_none_");
            }
            // `record-session-socket.md`: RECORD_STOP + MEDIA_BUG_STOP, response `_none_`;
            // without a path (or `all`) every recording of the channel stops.
            "stop_record_session" => {
                let path = app.data.trim();
                self.record_stop(now, ch, if path.is_empty() { "all" } else { path });
                self.complete_app(now, ch, "_none_");
            }
            "oreka_record" => {
                self.oreka_record(now, ch, &app.data);
                self.complete_app(now, ch, "_none_");
            }
            "eval" => {
                // The expansion runs any `${api args}` in it, on this channel's thread.
                self.expand(now, Some(ch), &app.data, 0);
                self.complete_app(now, ch, "_none_");
            }
            "bridge" => {
                let dial = app.data.clone();
                match self.originate_leg(
                    now,
                    &dial,
                    Waiter::Bridge {
                        a: ch,
                        app_seq: app.seq,
                    },
                    None,
                ) {
                    Ok(b) => {
                        self.dialing.insert(ch, b);
                    }
                    Err(cause) => {
                        if let Some(c) = self.chans.get_mut(&ch) {
                            c.set_var("originate_disposition", cause);
                        }
                        self.complete_app(now, ch, "_none_");
                    }
                }
            }
            "eavesdrop" => {
                let target = self.by_uuid.get(app.data.trim()).copied();
                match target {
                    Some(t) if t != ch => {
                        if let Some(c) = self.chans.get_mut(&ch) {
                            c.eavesdrop = Some((t, "listen"));
                            c.set_var("eavesdrop_target", app.data.trim());
                            c.set_var("eavesdrop_mode", "listen");
                        }
                        self.eavesdroppers.entry(t).or_default().push(ch);
                        self.refresh_eavesdrop_audio(ch, t);
                    }
                    _ => self.complete_app(now, ch, "_none_"),
                }
            }
            _ => self.complete_app(now, ch, "_none_"),
        }
    }

    /// mod_amd's result variables, from what the model decided the callee is (a leg that is
    /// neither a modelled human nor a machine is NOTSURE).
    pub(super) fn amd_verdict(&mut self, ch: ChanId) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        let (result, cause) = match c.var("sim_amd_result") {
            Some("HUMAN") => ("HUMAN", "HUMAN"),
            Some("MACHINE") => ("MACHINE", "LONGGREETING"),
            _ => ("NOTSURE", "TOOLONG"),
        };
        c.set_var("amd_result", result);
        c.set_var("amd_cause", cause);
    }

    /// `CUSTOM avmd::beep`, as mod_avmd's `avmd_fire_event` lays it out: the subclass first,
    /// the channel's data, then the beep's figures.
    pub(super) fn avmd_beep(&mut self, now: Instant, ch: ChanId) {
        let Some(uuid) = self.chans.get(&ch).map(|c| c.uuid.clone()) else {
            return;
        };
        let detected_ms = self
            .chans
            .get(&ch)
            .and_then(|c| c.answered_at)
            .map_or(0, |t| now.saturating_duration_since(t).as_millis());
        let mut p: Pairs = vec![("Event-Subclass".into(), "avmd::beep".into())];
        p.extend(self.common(now, "CUSTOM", ("mod_avmd.c", "avmd_fire_event", 1011)));
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        c.set_var("avmd_detect", "TRUE");
        let created = c.profile.created_us;
        channel_data(&mut p, c, created, true);
        push(&mut p, "Beep-Status", "DETECTED");
        push(&mut p, "Frequency", "1000.000000");
        push(&mut p, "Frequency-variance", "0.000000");
        push(&mut p, "Amplitude", "0.250000");
        push(&mut p, "Amplitude-variance", "0.000000");
        push(&mut p, "Detection-time", detected_ms.to_string());
        self.deliver("CUSTOM", Some("avmd::beep"), Some(&uuid), p, None);
    }

    /// `switch_channel_stop_broadcast`: a playback running (a broadcast: music, a prompt) stops
    /// with PLAYBACK_STOP and completes; nothing queued is touched.
    pub(super) fn stop_broadcast(&mut self, now: Instant, ch: ChanId) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if !c
            .current
            .as_ref()
            .is_some_and(|a| a.name.ends_with("playback"))
        {
            return;
        }
        let Some(app) = c.current.take() else { return };
        c.last_app = Some((app.name.clone(), app.data.clone()));
        let post = playback_post(&app.data, "break");
        self.chan_event(now, ch, "PLAYBACK_STOP", vec![], post, true);
        let post = app_post(&app, Some("FILE PLAYED"));
        self.chan_event(now, ch, "CHANNEL_EXECUTE_COMPLETE", vec![], post, true);
    }

    /// Ends the running application at once (a transfer): a playback stops with
    /// PLAYBACK_STOP, and the application completes without starting the next one.
    pub(super) fn abort_current(&mut self, now: Instant, ch: ChanId) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        // Park's placeholder (seq 0) goes with `unpark`; everything else queued is dropped.
        c.queue.retain(|a| a.seq == 0);
        self.collect_abort(now, ch);
        self.record_finish(now, ch, super::record::RecordEnd::Break);
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        let Some(app) = c.current.take() else { return };
        c.last_app = Some((app.name.clone(), app.data.clone()));
        let response = if app.name.ends_with("playback") {
            let post = playback_post(&app.data, "break");
            self.chan_event(now, ch, "PLAYBACK_STOP", vec![], post, true);
            "FILE PLAYED"
        } else {
            "_none_"
        };
        let post = app_post(&app, Some(response));
        self.chan_event(now, ch, "CHANNEL_EXECUTE_COMPLETE", vec![], post, true);
    }

    pub(super) fn complete_app(&mut self, now: Instant, ch: ChanId, response: &str) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        let Some(app) = c.current.take() else { return };
        c.last_app = Some((app.name.clone(), app.data.clone()));
        c.set_var("last_app", app.name.clone());
        let post = app_post(&app, Some(response));
        self.chan_event(now, ch, "CHANNEL_EXECUTE_COMPLETE", vec![], post, true);
        if self
            .chans
            .get(&ch)
            .is_some_and(|c| c.hangup_cause.is_none())
        {
            self.start_next(now, ch);
        }
    }

    /// Joins two channels (uuid_bridge or the bridge application).
    pub(super) fn bridge(&mut self, now: Instant, a: ChanId, b: ChanId) {
        let us = self.us(now);
        let (Some(pa), Some(pb)) = (
            self.chans.get(&a).map(|c| c.profile.clone()),
            self.chans.get(&b).map(|c| c.profile.clone()),
        ) else {
            return;
        };
        for (x, y) in [(a, b), (b, a)] {
            if let Some(old) = self.chans.get(&x).and_then(|c| c.peer)
                && old != y
            {
                self.unbridge(now, x, old);
            }
        }
        // switch_ivr_uuid_bridge: `switch_channel_stop_broadcast` on both legs, so the music
        // a parked caller had ends here; what is queued stays, and plays over the bridge.
        for x in [a, b] {
            self.stop_broadcast(now, x);
        }
        let (ua, ub) = (pa.uuid.clone(), pb.uuid.clone());
        for (x, other, kind, ou) in [
            (a, pb, "originatee", ub.clone()),
            (b, pa, "originator", ua.clone()),
        ] {
            self.unpark(now, x);
            if let Some(c) = self.chans.get_mut(&x) {
                c.peer = Some(if x == a { b } else { a });
                c.transferring = false;
                c.other = Some((kind, other));
                c.bridged_at = Some(now);
                c.bridged_us = us;
                c.state = CState::ExchangeMedia;
                c.set_var("bridge_uuid", ou.clone());
                c.set_var("signal_bond", ou.clone());
                c.set_var("last_bridge_to", ou);
                c.set_var("bridge_epoch", (us / 1_000_000).to_string());
                c.set_var("bridge_uepoch", us.to_string());
            }
        }
        if let Some(c) = self.chans.get_mut(&b) {
            c.set_var("call_uuid", ua.clone());
        }
        let pre = vec![
            ("Bridge-A-Unique-ID".into(), ua),
            ("Bridge-B-Unique-ID".into(), ub),
        ];
        self.chan_event(now, a, "CHANNEL_BRIDGE", pre, vec![], true);
        self.peer_changed(now, a);
        self.peer_changed(now, b);
        for x in [a, b] {
            let talk = self
                .chans
                .get(&x)
                .filter(|c| c.inbound_caller)
                .and_then(|c| c.talk_time);
            if let Some(t) = talk {
                self.schedule(now + t, TimerKey::TalkEnd(x));
            }
            let refer = self
                .chans
                .get(&x)
                .and_then(|c| c.refer.as_ref())
                .map(|r| r.0);
            if let Some(after) = refer {
                self.schedule(now + after, TimerKey::Refer(x));
            }
        }
    }

    /// Ends a bridge from `x`'s side; the peer goes on as FreeSWITCH would send it on.
    pub(super) fn unbridge(&mut self, now: Instant, x: ChanId, y: ChanId) {
        let (ux, uy) = match (self.chans.get(&x), self.chans.get(&y)) {
            (Some(cx), Some(cy)) => (cx.uuid.clone(), cy.uuid.clone()),
            (Some(cx), None) => (cx.uuid.clone(), String::new()),
            _ => return,
        };
        for c in [x, y] {
            if let Some(ch) = self.chans.get_mut(&c) {
                ch.peer = None;
            }
        }
        let pre = vec![
            ("Bridge-A-Unique-ID".into(), ux),
            ("Bridge-B-Unique-ID".into(), uy),
        ];
        self.chan_event(now, x, "CHANNEL_UNBRIDGE", pre, vec![], true);
        self.peer_changed(now, x);
        self.peer_changed(now, y);
        // The survivor: a running bridge application completes; a socket-controlled or
        // park_after_bridge channel goes back to park; anything else hangs up. A socket
        // caller goes back into its extension (uuid_bridge_on_soft_execute sets CS_EXECUTE),
        // which parks it only if the extension has a `park` after `socket`; with
        // hangup_after_bridge it is hung up first (switch_ivr_multi_threaded_bridge).
        let Some(cy) = self.chans.get(&y) else { return };
        if cy.hangup_cause.is_some() || cy.resuming {
            return;
        }
        let in_bridge_app = cy.current.as_ref().is_some_and(|a| a.name == "bridge");
        let hab = cy.var("hangup_after_bridge").is_some_and(is_true);
        let extension_parks = self.cfg.switch.after_socket == AfterSocket::Park;
        let park_after = cy.var("park_after_bridge").is_some_and(is_true)
            || (cy.socket.is_some() && extension_parks && !hab);
        if in_bridge_app {
            if hab {
                self.hangup(now, y, "NORMAL_CLEARING");
            } else {
                if let Some(c) = self.chans.get_mut(&y) {
                    c.state = CState::Execute;
                }
                self.complete_app(now, y, "_none_");
            }
        } else if park_after {
            if let Some(c) = self.chans.get_mut(&y) {
                c.state = CState::Execute;
            }
            self.park(now, y, None);
        } else {
            self.hangup(now, y, "NORMAL_CLEARING");
        }
    }

    /// Hangs a channel up with the full event sequence FreeSWITCH emits, then forgets it.
    pub(crate) fn hangup(&mut self, now: Instant, ch: ChanId, cause: &str) {
        let us = self.us(now);
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.hangup_cause.is_some() {
            return;
        }
        c.hangup_cause = Some(cause.to_owned());
        c.hangup_us = us;
        c.set_var("hangup_cause", cause);
        c.set_var("hangup_cause_q850", q850(cause).to_string());
        if !c.answered {
            let disp = match cause {
                "ORIGINATOR_CANCEL" => "ORIGINATOR_CANCEL",
                _ => "NO ANSWER",
            };
            c.set_var("endpoint_disposition", disp);
        }
        // An originate still waiting (not answered, or answered inside its handover window)
        // answers `-ERR <cause>` once the leg is gone.
        let waiter = if c.answered && c.handover.is_none() {
            Waiter::None
        } else {
            c.handover = None;
            std::mem::replace(&mut c.waiter, Waiter::None)
        };
        let peer = c.peer;
        let socket = c.socket;
        // A bridge application still dialling loses its b-leg.
        if let Some(b) = self.dialing.remove(&ch) {
            self.hangup(now, b, "ORIGINATOR_CANCEL");
        }
        self.chan_event(now, ch, "CHANNEL_HANGUP", vec![], vec![], true);
        self.sip_leg_hung_up(ch, cause);
        self.oreka_stop(now, ch);
        // A digit collection in progress stops (its file, its read); so does a playback;
        // recordings are finalised.
        self.collect_hangup(now, ch);
        // A `record` running: its file holds what was said until now; RECORD_STOP here,
        // its EXECUTE_COMPLETE with the other applications' below.
        self.record_finish(now, ch, super::record::RecordEnd::Hangup);
        if let Some(app) = self.chans.get(&ch).and_then(|c| c.current.clone())
            && app.name.ends_with("playback")
        {
            let post = playback_post(&app.data, "done");
            self.chan_event(now, ch, "PLAYBACK_STOP", vec![], post, true);
            if let Some(c) = self.chans.get_mut(&ch) {
                c.set_var("sim_last_response", "PLAYBACK ERROR");
            }
        }
        let paths: Vec<String> = self
            .chans
            .get(&ch)
            .map(|c| c.recordings.iter().map(|r| r.path.clone()).collect())
            .unwrap_or_default();
        for p in paths {
            self.record_stop(now, ch, &p);
        }
        if let Some(p) = peer {
            self.unbridge(now, ch, p);
        }
        self.unpark(now, ch);
        if let Some(app) = self.chans.get_mut(&ch).and_then(|c| c.current.take()) {
            let resp = if app.name.ends_with("playback") {
                "PLAYBACK ERROR"
            } else {
                "_none_"
            };
            let post = app_post(&app, Some(resp));
            self.chan_event(now, ch, "CHANNEL_EXECUTE_COMPLETE", vec![], post, true);
        }
        // Eavesdroppers lose their target.
        if let Some(list) = self.eavesdroppers.remove(&ch) {
            for e in list {
                if self
                    .chans
                    .get(&e)
                    .is_some_and(|c| c.eavesdrop.is_some_and(|(t, _)| t == ch))
                {
                    if let Some(c) = self.chans.get_mut(&e) {
                        c.eavesdrop = None;
                    }
                    self.complete_app(now, e, "_none_");
                }
            }
        }
        if let Some((t, _)) = self.chans.get(&ch).and_then(|c| c.eavesdrop)
            && let Some(list) = self.eavesdroppers.get_mut(&t)
        {
            list.retain(|x| *x != ch);
        }
        self.set_state(now, ch, CState::Hangup);
        self.set_callstate(now, ch, "HANGUP");
        if let Some(c) = self.chans.get_mut(&ch) {
            c.queue.clear();
            c.state = CState::Reporting;
            cdr_vars(c, now, us);
        }
        self.chan_event(now, ch, "CHANNEL_STATE", vec![], vec![], false);
        let pre = vec![("Hangup-Cause".into(), cause.to_owned())];
        self.chan_event(now, ch, "CHANNEL_HANGUP_COMPLETE", pre, vec![], true);
        // The controlling socket learns the call is over.
        if let Some(conn) = socket {
            self.socket_hangup(now, conn, ch);
        }
        self.set_state(now, ch, CState::Destroy);
        self.chan_event(now, ch, "CHANNEL_DESTROY", vec![], vec![], true);
        if let Some(c) = self.chans.remove(&ch) {
            self.by_uuid.remove(&c.uuid);
        }
        self.forget_digits(ch);
        match waiter {
            Waiter::None => {}
            w => self.resolve(now, w, ch, Err(cause)),
        }
    }

    pub(super) fn socket_hangup(&mut self, now: Instant, conn: ConnId, ch: ChanId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.channel = None;
        let linger = c.linger;
        let (uuid, name) = match self.chans.get(&ch) {
            Some(x) => (x.uuid.clone(), x.name.clone()),
            None => return,
        };
        match linger {
            Some(t) => {
                let secs = t.map_or("-1".to_owned(), |d| d.as_secs().to_string());
                let notice = DisconnectNotice::new(
                    &[
                        ("Controlled-Session-UUID", uuid.as_str()),
                        ("Content-Disposition", "linger"),
                        ("Channel-Name", name.as_str()),
                        ("Linger-Time", secs.as_str()),
                    ],
                    b"",
                );
                self.send(conn, Message::DisconnectNotice(notice));
                if let Some(d) = t {
                    self.schedule(now + d, TimerKey::LingerEnd(conn));
                }
            }
            None => {
                let notice = DisconnectNotice::new(
                    &[
                        ("Controlled-Session-UUID", uuid.as_str()),
                        ("Content-Disposition", "disconnect"),
                    ],
                    GOODBYE,
                );
                self.send(conn, Message::DisconnectNotice(notice));
                self.close(conn);
            }
        }
        // Events of a gone session no longer reach its socket (CHANNEL_DESTROY included).
        if let Some(c) = self.conns.get_mut(&conn) {
            c.events_on = false;
        }
    }

    /// `uuid_record start` / `record_session`: RECORD_START then MEDIA_BUG_START, as
    /// captured (`uuid-record.md`).
    pub(super) fn record_start(
        &mut self,
        now: Instant,
        ch: ChanId,
        path: &str,
        limit: Option<Duration>,
    ) -> bool {
        if path.is_empty() {
            return false;
        }
        let said = self.tone_of(ch);
        let heard = self.heard_by(ch);
        let Some(c) = self.chans.get_mut(&ch) else {
            return false;
        };
        let stereo = c.var("RECORD_STEREO").is_some_and(is_true);
        c.recordings.push(Recording {
            path: path.to_owned(),
            started: now,
            masked: Vec::new(),
            paused: Vec::new(),
            heard: vec![(Duration::ZERO, heard)],
            said,
            stereo,
            limit,
        });
        let post = vec![("Record-File-Path".into(), path.to_owned())];
        self.chan_event(now, ch, "RECORD_START", vec![], post, true);
        self.chan_event(
            now,
            ch,
            "MEDIA_BUG_START",
            media_bug_pre(path),
            vec![],
            true,
        );
        true
    }

    /// `uuid_record stop` (or the channel's hangup): the file is written, then RECORD_STOP
    /// and MEDIA_BUG_STOP.
    pub(super) fn record_stop(&mut self, now: Instant, ch: ChanId, path: &str) -> bool {
        let Some(c) = self.chans.get_mut(&ch) else {
            return false;
        };
        let Some(i) = c
            .recordings
            .iter()
            .position(|r| r.path == path || path.eq_ignore_ascii_case("all"))
        else {
            return false;
        };
        let rec = c.recordings.remove(i);
        let done = rec.finish(now);
        c.set_var("record_seconds", done.duration.as_secs().to_string());
        c.set_var("record_ms", done.duration.as_millis().to_string());
        c.set_var("record_completion_cause", "success");
        self.recordings_written += 1;
        if self.known_lengths.len() < MAX_KNOWN_LENGTHS {
            self.known_lengths.insert(rec.path.clone(), done.duration);
        }
        self.out.push_back(Output::WriteRecording(RecordingJob {
            path: rec.path.clone(),
            duration: done.duration,
            stereo: rec.stereo,
            sample_rate: 8000,
            masked: done.masked,
            said_hz: rec.said,
            heard_hz: done.heard,
        }));
        let post = vec![
            ("Record-File-Path".into(), rec.path.clone()),
            ("Record-Completion-Cause".into(), "success".into()),
        ];
        self.chan_event(now, ch, "RECORD_STOP", vec![], post, true);
        self.chan_event(
            now,
            ch,
            "MEDIA_BUG_STOP",
            media_bug_pre(&rec.path),
            vec![],
            true,
        );
        if path.eq_ignore_ascii_case("all") {
            self.record_stop(now, ch, "all");
        }
        true
    }
}

/// MEDIA_BUG_START/STOP's own headers for a recording bug, ahead of the channel's data as
/// captured (switch_core_media_bug.c names the bug after the function and the file).
fn media_bug_pre(path: &str) -> Pairs {
    vec![
        ("Media-Bug-Function".into(), "session_record".into()),
        ("Media-Bug-Target".into(), path.to_owned()),
    ]
}
