//! Building events with the captures' header layout and delivering them to listeners.

use super::*;

impl Switch {
    // ---- events --------------------------------------------------------------------------

    /// The common part of every event; counts the sequence even when nobody listens.
    pub(super) fn common(&mut self, now: Instant, name: &str, calling: (&str, &str, u32)) -> Pairs {
        self.common_at(now, name, calling)
    }

    pub(super) fn common_at(
        &mut self,
        now: Instant,
        name: &str,
        calling: (&str, &str, u32),
    ) -> Pairs {
        self.seq += 1;
        let us = self.us(now);
        let (local, gmt) = date_strings(us);
        let mut p: Pairs = Vec::with_capacity(96);
        push(&mut p, "Event-Name", name.to_owned());
        push(&mut p, "Core-UUID", self.core_uuid.clone());
        push(&mut p, "FreeSWITCH-Hostname", self.cfg.hostname.clone());
        push(&mut p, "FreeSWITCH-Switchname", self.cfg.hostname.clone());
        push(&mut p, "FreeSWITCH-IPv4", "127.0.0.1");
        push(&mut p, "FreeSWITCH-IPv6", "::1");
        push(&mut p, "Event-Date-Local", local);
        push(&mut p, "Event-Date-GMT", gmt);
        push(&mut p, "Event-Date-Timestamp", us.to_string());
        push(&mut p, "Event-Calling-File", calling.0.to_owned());
        push(&mut p, "Event-Calling-Function", calling.1.to_owned());
        push(&mut p, "Event-Calling-Line-Number", calling.2.to_string());
        push(&mut p, "Event-Sequence", self.seq.to_string());
        p
    }

    pub(super) fn anyone_wants(&self, name: &str, uuid: Option<&str>) -> bool {
        self.conns.values().any(|c| {
            c.subscribed(name, None)
                && !c.gone
                && c.myevents.as_deref().is_none_or(|m| Some(m) == uuid)
        })
    }

    /// Sends an event to every listener whose subscription, filters and myevents admit it;
    /// kills a listener whose backlog passes the bound, as mod_event_socket does.
    pub(super) fn deliver(
        &mut self,
        name: &str,
        subclass: Option<&str>,
        uuid: Option<&str>,
        pairs: Pairs,
        body: Option<Bytes>,
    ) {
        let targets: Vec<(ConnId, EventFormat)> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                !c.gone
                    && c.subscribed(name, subclass)
                    && c.myevents.as_deref().is_none_or(|m| Some(m) == uuid)
            })
            .map(|(id, c)| (*id, c.format))
            .collect();
        if targets.is_empty() {
            return;
        }
        let headers = Headers::from_pairs(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        for (id, format) in targets {
            let Some(c) = self.conns.get_mut(&id) else {
                continue;
            };
            if !c.passes_filters(&headers) {
                continue;
            }
            if c.backlog >= self.cfg.max_event_queue {
                c.lost += 1;
                if c.lost > self.cfg.max_missed {
                    tracing::error!(
                        conn = id.0,
                        lost = c.lost,
                        "fake switch: killing listener because of too many lost events"
                    );
                    c.gone = true;
                    let notice = Message::DisconnectNotice(DisconnectNotice::new(
                        &[],
                        b"killed listener because of lost events\n",
                    ));
                    self.out.push_back(Output::Kill(id, notice));
                    self.conns.remove(&id);
                }
                continue;
            }
            c.backlog += 1;
            let ev = Event::from_parts(format, headers.clone(), body.clone());
            self.send(id, Message::Event(ev));
        }
    }

    /// A channel event: common, `pre`, channel data (+ variables), `post`.
    pub(super) fn chan_event(
        &mut self,
        now: Instant,
        ch: ChanId,
        name: &'static str,
        pre: Pairs,
        post: Pairs,
        vars: bool,
    ) {
        self.chan_event_at(now, ch, name, calling_site(name), pre, post, vars);
    }

    /// [`Switch::chan_event`] fired from a given place (`Event-Calling-*`), for events more
    /// than one source function fires (RECORD_START from `record` vs `uuid_record`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn chan_event_at(
        &mut self,
        now: Instant,
        ch: ChanId,
        name: &'static str,
        calling: (&'static str, &'static str, u32),
        pre: Pairs,
        post: Pairs,
        vars: bool,
    ) {
        let Some(uuid) = self.chans.get(&ch).map(|c| c.uuid.clone()) else {
            return;
        };
        if !self.anyone_wants(name, Some(&uuid)) {
            self.seq += 1;
            return;
        }
        let mut p = self.common(now, name, calling);
        p.extend(pre);
        let Some(c) = self.chans.get(&ch) else { return };
        channel_data(&mut p, c, c.profile.created_us, vars);
        p.extend(post);
        self.deliver(name, None, Some(&uuid), p, None);
    }

    pub(super) fn api_event(&mut self, now: Instant, name: &str, arg: &str) {
        if !self.anyone_wants("API", None) {
            self.seq += 1;
            return;
        }
        let mut p = self.common(
            now,
            "API",
            ("switch_loadable_module.c", "switch_api_execute", 2954),
        );
        push(&mut p, "API-Command", name.to_owned());
        push(&mut p, "API-Command-Argument", arg.to_owned());
        self.deliver("API", None, None, p, None);
    }

    pub(super) fn background_job(
        &mut self,
        now: Instant,
        job: &str,
        cmd: &str,
        arg: &str,
        out: String,
    ) {
        let mut p = self.common(
            now,
            "BACKGROUND_JOB",
            ("mod_event_socket.c", "api_exec", 1572),
        );
        push(&mut p, "Job-UUID", job.to_owned());
        push(&mut p, "Job-Command", cmd.to_owned());
        if !arg.is_empty() {
            push(&mut p, "Job-Command-Arg", arg.to_owned());
        }
        push(&mut p, "Content-Length", out.len().to_string());
        self.deliver("BACKGROUND_JOB", None, None, p, Some(Bytes::from(out)));
    }

    pub(super) fn set_state(&mut self, now: Instant, ch: ChanId, state: CState) {
        if let Some(c) = self.chans.get_mut(&ch) {
            c.state = state;
        }
        self.chan_event(now, ch, "CHANNEL_STATE", vec![], vec![], false);
    }

    pub(super) fn set_callstate(&mut self, now: Instant, ch: ChanId, cs: &'static str) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        let old = std::mem::replace(&mut c.callstate, cs);
        if old == cs {
            return;
        }
        let pre = vec![
            ("Original-Channel-Call-State".into(), old.to_owned()),
            (
                "Channel-Call-State-Number".into(),
                callstate_number(cs).to_string(),
            ),
        ];
        self.chan_event(now, ch, "CHANNEL_CALLSTATE", pre, vec![], false);
    }
}
