//! Event-socket commands: auth, event subscriptions, filters, myevents, connect, sendmsg, and fault injection.

use super::*;

impl Switch {
    // ---- commands ------------------------------------------------------------------------

    /// A command from a client.
    pub fn handle_command(&mut self, now: Instant, conn: ConnId, frame: CommandFrame) {
        let delay = self.reply_delay;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.gone {
            return;
        }
        if c.pending.len() >= MAX_PENDING_COMMANDS {
            tracing::warn!(
                ?conn,
                "fake switch: too many unanswered commands, disconnecting"
            );
            self.close(conn);
            return;
        }
        c.pending.push_back((now + delay, frame));
        self.pump(now, conn);
    }

    pub(super) fn pump(&mut self, now: Instant, conn: ConnId) {
        loop {
            if let Some(until) = self.stall_until
                && now < until
            {
                self.schedule(until, TimerKey::Pump(conn));
                return;
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.blocked || c.gone {
                return;
            }
            let Some((due, _)) = c.pending.front() else {
                return;
            };
            if *due > now {
                let due = *due;
                self.schedule(due, TimerKey::Pump(conn));
                return;
            }
            let Some((_, frame)) = c.pending.pop_front() else {
                return;
            };
            self.execute(now, conn, frame);
        }
    }

    pub(super) fn execute(&mut self, now: Instant, conn: ConnId, frame: CommandFrame) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let parsed = Command::parse(&frame);
        if !c.authed {
            match parsed {
                Ok(Command::Auth { password }) => {
                    if password == self.cfg.password {
                        if let Some(c) = self.conns.get_mut(&conn) {
                            c.authed = true;
                        }
                        self.reply(conn, "+OK accepted");
                    } else {
                        self.reply(conn, "-ERR invalid");
                        let n = self.goodbye_notice(conn, GOODBYE);
                        self.send(conn, n);
                        self.close(conn);
                    }
                }
                _ => self.reply(conn, "-ERR command not found"),
            }
            return;
        }
        let is_outbound = c.kind == ConnKind::Outbound;
        let Ok(cmd) = parsed else {
            self.reply(conn, "-ERR command not found");
            return;
        };
        match cmd {
            Command::Auth { .. } | Command::UserAuth { .. } => {
                self.reply(conn, "-ERR command not found")
            }
            Command::Api { command } => {
                // The listener runs the api inline: events raised meanwhile wait behind the
                // response (the capture's uuid_kill reply precedes its CHANNEL_HANGUP).
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.blocked = true;
                }
                let (name, arg) = split_cmd(&command);
                self.api_event(now, &name, &arg);
                if let Some(out) = self.run_api(now, &name, &arg, Waiter::Api(conn)) {
                    self.api_done(conn, out);
                }
            }
            Command::BgApi { command, job_uuid } => {
                let job = job_uuid.unwrap_or_else(|| self.rng.uuid());
                let text = format!("+OK Job-UUID: {job}");
                self.send(
                    conn,
                    Message::CommandReply(Reply::with_headers(&text, &[("Job-UUID", &job)])),
                );
                let (name, arg) = split_cmd(&command);
                // The job's thread runs the command a little later (see `bgapi_start`).
                let start = self.cfg.switch.bgapi_start.sample(&mut self.rng);
                if start.is_zero() || self.bg_jobs.len() >= MAX_BG_JOBS {
                    self.run_bg_job(now, job, name, arg);
                } else {
                    self.next_bg_job += 1;
                    self.bg_jobs.insert(self.next_bg_job, (job, name, arg));
                    self.schedule(now + start, TimerKey::BgApi(self.next_bg_job));
                }
            }
            Command::Event { format, events } => {
                let custom_word = frame
                    .line
                    .split_ascii_whitespace()
                    .any(|w| w.eq_ignore_ascii_case("CUSTOM"));
                let mut keys = 0;
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                for n in &events.names {
                    let up = n.to_ascii_uppercase();
                    if up == "ALL" {
                        c.all = true;
                        c.all_custom = true;
                        keys += 1;
                    } else if is_event_name(&up) {
                        c.names.insert(up);
                        keys += 1;
                    }
                }
                if custom_word {
                    c.names.insert("CUSTOM".into());
                    keys += 1;
                }
                for s in &events.subclasses {
                    c.subclasses.insert(s.clone());
                }
                if keys == 0 {
                    self.reply(conn, "-ERR no keywords supplied");
                    return;
                }
                c.events_on = true;
                c.format = format;
                let text = format!("+OK event listener enabled {}", format.as_str());
                self.reply(conn, &text);
            }
            Command::NixEvent { events } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                let mut keys = 0;
                for n in &events.names {
                    let up = n.to_ascii_uppercase();
                    if up == "ALL" {
                        c.all = false;
                        c.names.clear();
                        keys += 1;
                    } else if is_event_name(&up) {
                        if c.all {
                            c.all = false;
                            c.names.extend(EVENT_NAMES.iter().map(|s| (*s).to_owned()));
                        }
                        c.names.remove(&up);
                        keys += 1;
                    }
                }
                for s in &events.subclasses {
                    c.subclasses.remove(s);
                }
                if keys == 0 && events.subclasses.is_empty() {
                    self.reply(conn, "-ERR no keywords supplied");
                    return;
                }
                c.events_on = true;
                self.reply(conn, "+OK events nixed");
            }
            Command::NoEvents => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                if c.events_on {
                    c.events_on = false;
                    c.all = false;
                    c.names.clear();
                    c.subclasses.clear();
                    c.all_custom = false;
                    self.reply(conn, "+OK no longer listening for events");
                } else {
                    self.reply(conn, "-ERR not listening for events");
                }
            }
            Command::Filter { header, value } => {
                if value.is_empty() {
                    self.reply(conn, "-ERR invalid syntax");
                    return;
                }
                let (header, value) = if header.eq_ignore_ascii_case("add") {
                    let (h, v) = value.split_once(' ').unwrap_or((&value, ""));
                    (h.to_owned(), v.to_owned())
                } else {
                    (header, value)
                };
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.filters.push((header.clone(), value.clone()));
                }
                self.reply(conn, &format!("+OK filter added. [{header}]=[{value}]"));
            }
            Command::FilterDelete { header, value } => {
                if header.is_empty() {
                    self.reply(conn, "-ERR invalid syntax");
                    return;
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    if header.eq_ignore_ascii_case("all") {
                        c.filters.clear();
                    } else {
                        c.filters.retain(|(h, v)| {
                            !(h.eq_ignore_ascii_case(&header)
                                && value.as_deref().is_none_or(|x| x == v))
                        });
                    }
                }
                let text = format!(
                    "+OK filter deleted. [{header}][{}]",
                    value.as_deref().unwrap_or("(null)")
                );
                self.reply(conn, &text);
            }
            Command::MyEvents { format, uuid } => self.myevents(conn, format, uuid),
            Command::Linger(t) => {
                if !is_outbound {
                    self.reply(conn, "-ERR not controlling a session");
                    return;
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.linger = Some(t);
                }
                match t {
                    Some(d) => {
                        self.reply(conn, &format!("+OK will linger {} seconds", d.as_secs()))
                    }
                    None => self.reply(conn, "+OK will linger"),
                }
            }
            Command::NoLinger => {
                if !is_outbound {
                    self.reply(conn, "-ERR not controlling a session");
                    return;
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.linger = None;
                }
                self.reply(conn, "+OK will not linger");
            }
            Command::Resume => self.reply(conn, "+OK"),
            Command::DivertEvents(_) => {
                if is_outbound {
                    self.reply(conn, "+OK events diverted")
                } else {
                    self.reply(conn, "-ERR not controlling a session.")
                }
            }
            Command::Log(level) => {
                let l = level as u8;
                self.reply(conn, &format!("+OK log level {l} [{l}]"))
            }
            Command::NoLog => self.reply(conn, "-ERR not loging"),
            Command::SendEvent { name, .. } => {
                let u = self.rng.uuid();
                let ev = name.to_ascii_uppercase();
                let pairs = self.common(now, &ev, ("mod_event_socket.c", "parse_command", 1906));
                self.deliver(&ev, None, None, pairs, None);
                self.reply(conn, &format!("+OK {u}"));
            }
            Command::SendMsg { uuid, msg } => self.sendmsg(now, conn, uuid, msg),
            Command::Connect => self.connect(now, conn),
            Command::Exit => {
                self.reply(conn, "+OK bye");
                let n = self.goodbye_notice(conn, GOODBYE);
                self.send(conn, n);
                self.close(conn);
                // An outbound socket leaving ends the call (no `resume`).
                if let Some(ch) = self.conns.get_mut(&conn).and_then(|c| c.channel.take()) {
                    self.hangup(now, ch, "NORMAL_CLEARING");
                }
            }
        }
    }

    pub(super) fn myevents(
        &mut self,
        conn: ConnId,
        format: Option<EventFormat>,
        uuid: Option<String>,
    ) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.myevents.is_some() {
            self.reply(conn, "-ERR aready enabled.");
            return;
        }
        let uuid = match (c.channel, uuid) {
            (Some(ch), _) => self.chans.get(&ch).map(|c| c.uuid.clone()),
            (None, Some(u)) if self.by_uuid.contains_key(&u) => Some(u),
            (None, _) => {
                self.reply(conn, "-ERR invalid uuid");
                return;
            }
        };
        let Some(uuid) = uuid else {
            self.reply(conn, "-ERR invalid uuid");
            return;
        };
        {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            c.myevents = Some(uuid);
            c.events_on = true;
            for n in [
                "CHANNEL_ANSWER",
                "CHANNEL_APPLICATION",
                "CHANNEL_BRIDGE",
                "CHANNEL_CREATE",
                "CHANNEL_DATA",
                "CHANNEL_DESTROY",
                "CHANNEL_EXECUTE",
                "CHANNEL_EXECUTE_COMPLETE",
                "CHANNEL_HANGUP",
                "CHANNEL_HANGUP_COMPLETE",
                "CHANNEL_ORIGINATE",
                "CHANNEL_UUID",
                "CHANNEL_OUTGOING",
                "CHANNEL_PARK",
                "CHANNEL_PROGRESS",
                "CHANNEL_PROGRESS_MEDIA",
                "CHANNEL_STATE",
                "CHANNEL_UNBRIDGE",
                "CHANNEL_UNPARK",
                "DETECTED_SPEECH",
                "DTMF",
                "NOTALK",
                "TALK",
            ] {
                c.names.insert(n.to_owned());
            }
            c.format = format.unwrap_or(EventFormat::Plain);
        }
        self.reply(conn, "+OK Events Enabled");
    }

    pub(super) fn connect(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(ch) = c.channel else {
            self.reply(conn, "-ERR command not found");
            return;
        };
        c.connected = true;
        if !self.chans.contains_key(&ch) {
            return;
        }
        // The CHANNEL_DATA reply: the whole channel as one URL-encoded header block.
        let mut pairs = self.common_at(
            now,
            "CHANNEL_DATA",
            ("mod_event_socket.c", "parse_command", 2021),
        );
        let Some(chan) = self.chans.get(&ch) else {
            return;
        };
        let created = chan.profile.created_us;
        crate::sim::channel::profile(&mut pairs, "Channel-", &chan.profile, Some(chan), created);
        channel_data(&mut pairs, chan, created, true);
        let mut encoded: Vec<(Cow<'static, str>, String)> = pairs
            .into_iter()
            .map(|(n, v)| (n, percent_encode(&v)))
            .collect();
        encoded.push(("Content-Type".into(), "command/reply".into()));
        encoded.push(("Reply-Text".into(), "%2BOK%0A".into()));
        encoded.push(("Socket-Mode".into(), "async".into()));
        encoded.push(("Control".into(), "full".into()));
        let headers =
            Headers::from_pairs(encoded.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        self.send(conn, Message::CommandReply(Reply::from_headers(headers)));
    }

    pub(super) fn sendmsg(
        &mut self,
        now: Instant,
        conn: ConnId,
        uuid: Option<String>,
        msg: crate::codec::SendMsg,
    ) {
        let target = match uuid {
            Some(u) => self.by_uuid.get(&u).copied().ok_or(u),
            None => self
                .conns
                .get(&conn)
                .and_then(|c| c.channel)
                .ok_or_else(String::new),
        };
        let ch = match target {
            Ok(ch) if self.chans.contains_key(&ch) => ch,
            Ok(_) => {
                self.reply(conn, "-ERR invalid session id []");
                return;
            }
            Err(u) => {
                self.reply(conn, &format!("-ERR invalid session id [{u}]"));
                return;
            }
        };
        self.reply(conn, "+OK");
        // The socket application parks its channel in async mode; the capture shows that
        // CHANNEL_PARK right after the first sendmsg's reply.
        if let Some(c) = self.conns.get_mut(&conn)
            && c.channel == Some(ch)
            && !c.park_announced
        {
            c.park_announced = true;
            if self.chans.get(&ch).is_some_and(|c| c.parked) {
                self.chan_event(now, ch, "CHANNEL_PARK", vec![], vec![], true);
            }
        }
        match msg {
            crate::codec::SendMsg::Execute {
                app,
                arg,
                event_uuid,
                loops,
                ..
            } => {
                let uuid = event_uuid.unwrap_or_else(|| self.rng.uuid());
                for _ in 0..loops.unwrap_or(1).max(1) {
                    self.queue_app(
                        now,
                        ch,
                        &app,
                        arg.as_deref().unwrap_or(""),
                        Some(uuid.clone()),
                    );
                }
            }
            crate::codec::SendMsg::Hangup { cause } => {
                let cause = known_cause(&cause).unwrap_or("NORMAL_CLEARING");
                self.hangup(now, ch, cause);
            }
            _ => {}
        }
    }

    // ---- faults --------------------------------------------------------------------------

    pub fn inject(&mut self, now: Instant, fault: Fault) {
        match fault {
            Fault::DropConnections => {
                let ids: Vec<ConnId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.kind == ConnKind::Inbound)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.conns.remove(&id);
                    self.out.push_back(Output::Close(id));
                }
            }
            Fault::Restart => {
                // The restarted switch's SIP stack forgets its dialogs: the shell stops them.
                let sip_legs: Vec<ChanId> = self
                    .chans
                    .values()
                    .filter(|c| c.sip_leg)
                    .map(|c| c.id)
                    .collect();
                for ch in sip_legs {
                    self.sip_leg_hung_up(ch, "NORMAL_UNSPECIFIED");
                }
                for id in self.conns.keys().copied().collect::<Vec<_>>() {
                    self.out.push_back(Output::Close(id));
                }
                self.conns.clear();
                self.chans.clear();
                self.by_uuid.clear();
                self.eavesdroppers.clear();
                self.dialing.clear();
                self.timers.clear();
                self.bg_jobs.clear();
                self.collectors.clear();
                self.records.clear();
                self.caller_messages.clear();
                self.dtmf_scripts.clear();
                self.caller_digits.clear();
                self.core_uuid = self.rng.uuid();
                self.seq = 0;
                self.started = now;
                self.stall_until = None;
                self.reply_delay = Duration::ZERO;
                self.sessions_since_start = 0;
                self.peak = 0;
                self.start_timers(now);
            }
            Fault::Stall(d) => self.stall_until = Some(now + d),
            Fault::SlowReplies(d) => self.reply_delay = d,
            Fault::Garble(target) => {
                for (id, c) in self.conns.iter_mut() {
                    if target.is_none_or(|t| t == *id)
                        && (target.is_some() || c.kind == ConnKind::Inbound)
                    {
                        c.garble_next = true;
                    }
                }
            }
        }
    }
}

impl Switch {
    /// A bgapi job's thread: the API event, the command, then its BACKGROUND_JOB.
    pub(super) fn run_bg_job(&mut self, now: Instant, job: String, name: String, arg: String) {
        self.api_event(now, &name, &arg);
        let waiter = Waiter::Bg {
            job: job.clone(),
            command: name.clone(),
            arg: arg.clone(),
        };
        if let Some(out) = self.run_api(now, &name, &arg, waiter) {
            self.background_job(now, &job, &name, &arg, out);
        }
    }
}
