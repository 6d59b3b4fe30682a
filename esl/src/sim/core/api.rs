//! `api`/`bgapi` commands: originate, uuid_*, show, status, hupall...

use super::*;

impl Switch {
    // ---- api -----------------------------------------------------------------------------

    /// Runs an api command. `None`: the answer comes later, through `waiter`.
    pub(super) fn run_api(
        &mut self,
        now: Instant,
        name: &str,
        arg: &str,
        waiter: Waiter,
    ) -> Option<String> {
        let args: Vec<&str> = arg.split_ascii_whitespace().collect();
        let no_such = || "-ERR No such channel!\n".to_owned();
        let out = match name {
            "status" => self.status_text(now),
            "version" => format!(
                "FreeSWITCH Version {VERSION} (1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit)\n"
            ),
            "hostname" => self.cfg.hostname.clone(),
            "global_getvar" => match arg.trim() {
                "core_uuid" => self.core_uuid.clone(),
                "hostname" | "switchname" => self.cfg.hostname.clone(),
                "sound_prefix" => self.cfg.sounds.sound_prefix.clone(),
                "sounds_dir" => self.cfg.sounds.sounds_dir.clone(),
                "" => format!(
                    "core_uuid={}\nhostname={}\n",
                    self.core_uuid, self.cfg.hostname
                ),
                _ => String::new(),
            },
            "show" => self.show(arg),
            "sofia" => SOFIA_STATUS.to_owned(),
            "reloadxml" => "+OK [Success]\n".to_owned(),
            "echo" => arg.to_owned(),
            "eval" => self.expand(now, None, arg, 0),
            "originate" => return self.api_originate(now, arg, waiter),
            "uuid_kill" => match args.first().and_then(|u| self.by_uuid.get(*u).copied()) {
                Some(ch) => {
                    let cause = args
                        .get(1)
                        .and_then(|c| known_cause(c))
                        .unwrap_or("NORMAL_CLEARING");
                    self.hangup(now, ch, cause);
                    "+OK\n".into()
                }
                None if args.is_empty() => "-USAGE: <uuid> [cause]\n".into(),
                None => no_such(),
            },
            "uuid_answer" => match args.first().and_then(|u| self.by_uuid.get(*u).copied()) {
                Some(ch) => {
                    if self
                        .chans
                        .get(&ch)
                        .is_some_and(|c| c.outbound && !c.answered)
                    {
                        self.answer_originated(now, ch);
                    } else {
                        self.answer(now, ch);
                    }
                    "+OK\n".into()
                }
                None => no_such(),
            },
            // mod_commands' file_exists: a stat of the path, files and directories alike.
            "file_exists" => self.cfg.sounds.exists(arg.trim()).to_string(),
            "uuid_exists" => self.by_uuid.contains_key(arg.trim()).to_string(),
            "uuid_getvar" => match (args.first(), args.get(1)) {
                (Some(u), Some(v)) => {
                    match self.by_uuid.get(*u).and_then(|id| self.chans.get(id)) {
                        Some(c) => c.var(v).map_or_else(|| "_undef_".to_owned(), str::to_owned),
                        None => no_such(),
                    }
                }
                _ => "-USAGE: <uuid> <var>\n".into(),
            },
            "uuid_setvar" => {
                let mut it = arg.splitn(3, ' ');
                match (it.next(), it.next(), it.next()) {
                    (Some(u), Some(v), val) if !u.is_empty() && !v.is_empty() => {
                        match self.by_uuid.get(u).copied() {
                            Some(ch) => {
                                if let Some(c) = self.chans.get_mut(&ch) {
                                    match val {
                                        Some(val) => c.set_var(v, val),
                                        None => c.unset_var(v),
                                    }
                                }
                                "+OK\n".into()
                            }
                            None => no_such(),
                        }
                    }
                    _ => "-USAGE: <uuid> <var> [value]\n".into(),
                }
            }
            // `uuid_setvar_multi <uuid> a=1;b=2` (mod_commands): `a=` unsets `a`.
            "uuid_setvar_multi" => match arg.trim().split_once(' ') {
                Some((u, pairs)) => match self.by_uuid.get(u).copied() {
                    Some(ch) => {
                        let pairs: Vec<(&str, &str)> = pairs
                            .split(';')
                            .filter_map(|p| p.trim().split_once('='))
                            .filter(|(k, _)| !k.is_empty())
                            .collect();
                        if pairs.is_empty() {
                            "-ERR Invalid usage\n".into()
                        } else {
                            if let Some(c) = self.chans.get_mut(&ch) {
                                for (k, v) in pairs {
                                    if v.is_empty() {
                                        c.unset_var(k);
                                    } else {
                                        c.set_var(k, v);
                                    }
                                }
                            }
                            "+OK\n".into()
                        }
                    }
                    None => no_such(),
                },
                None => "-USAGE: <uuid> <var>=<value>;<var>=<value>\n".into(),
            },
            "uuid_bridge" => match (args.first(), args.get(1)) {
                (Some(a), Some(b)) => {
                    match (self.by_uuid.get(*a).copied(), self.by_uuid.get(*b).copied()) {
                        (Some(x), Some(y)) if x != y => {
                            for ch in [x, y] {
                                if self.chans.get(&ch).is_some_and(|c| !c.answered) {
                                    self.answer(now, ch);
                                }
                            }
                            // The reply comes at once; the bridge itself a few ticks later,
                            // or as the race with an unfinished originate decides. Both legs
                            // are claimed now (CF_TRANSFER).
                            for ch in [x, y] {
                                if let Some(c) = self.chans.get_mut(&ch) {
                                    c.transferring = true;
                                }
                            }
                            self.uuid_bridge(now, x, y);
                            format!("+OK {b}\n")
                        }
                        _ => "-ERR Invalid uuid\n".into(),
                    }
                }
                _ => "-USAGE: <uuid> <other_uuid>\n".into(),
            },
            // mod_commands' module_exists: "true" or "false" (no line end), nothing for no
            // argument. The modules are the configured list (a default build by default),
            // plus mod_oreka when configured.
            "module_exists" => match args.first().copied() {
                None => String::new(),
                Some("mod_oreka") => self.cfg.oreka.is_some().to_string(),
                Some(m) => self.cfg.modules.iter().any(|x| x == m).to_string(),
            },
            "uuid_broadcast" => {
                if args.len() < 2 {
                    "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n".into()
                } else {
                    match self.by_uuid.get(args[0]).copied() {
                        Some(ch) => {
                            let path = args[1];
                            let (app, data) = match path.split_once("::") {
                                Some((a, d)) => (a.to_owned(), d.to_owned()),
                                None => ("playback".to_owned(), path.to_owned()),
                            };
                            if !(app == "oreka_record" && self.oreka_in_bridge(now, ch, &data)) {
                                self.queue_app(now, ch, &app, &data, None);
                            }
                            "+OK Message sent\n".into()
                        }
                        None => "-ERR invalid uuid\n".into(),
                    }
                }
            }
            // mod_commands' break_function: `all` flushes the session's queued private events
            // (broadcasts waiting their turn) before stopping what plays; without it only
            // what plays stops and the next queued broadcast starts.
            "uuid_break" => match args.first().and_then(|u| self.by_uuid.get(*u).copied()) {
                Some(ch) => {
                    if args.get(1).is_some_and(|f| f.contains("all"))
                        && let Some(c) = self.chans.get_mut(&ch)
                    {
                        // Park's placeholder (seq 0) is not a queued event.
                        c.queue.retain(|a| a.seq == 0);
                    }
                    if let Some(app) = self.chans.get(&ch).and_then(|c| c.current.clone())
                        && app.name.ends_with("playback")
                    {
                        let post = playback_post(&app.data, "break");
                        self.chan_event(now, ch, "PLAYBACK_STOP", vec![], post, true);
                        self.complete_app(now, ch, "FILE PLAYED");
                    } else {
                        // A `record` sees CF_BREAK and stops (SWITCH_STATUS_BREAK).
                        self.record_break(now, ch);
                    }
                    "+OK\n".into()
                }
                None => no_such(),
            },
            "uuid_park" => match args.first().and_then(|u| self.by_uuid.get(*u).copied()) {
                Some(ch) => {
                    if let Some(p) = self.chans.get(&ch).and_then(|c| c.peer) {
                        if let Some(c) = self.chans.get_mut(&p) {
                            c.set_var("park_after_bridge", "true");
                        }
                        self.unbridge(now, ch, p);
                    }
                    self.park(now, ch, None);
                    "+OK\n".into()
                }
                None => no_such(),
            },
            "uuid_record" => self.api_record(now, &args),
            "uuid_transfer" => self.api_transfer(now, &args),
            "uuid_send_dtmf" => match (
                args.first().and_then(|u| self.by_uuid.get(*u).copied()),
                args.get(1),
            ) {
                (Some(ch), Some(digits)) => {
                    self.send_dtmf(now, ch, digits);
                    "+OK Success\n".into()
                }
                (None, Some(_)) => format!("-ERR no such session {}\n", args[0]),
                _ => "-USAGE: <uuid> <dtmf_data>\n".into(),
            },
            "hupall" => {
                let cause = args
                    .first()
                    .and_then(|c| known_cause(c))
                    .unwrap_or("MANAGER_REQUEST");
                let matching = match (args.get(1), args.get(2)) {
                    (Some(v), Some(val)) => Some(((*v).to_owned(), (*val).to_owned())),
                    _ => None,
                };
                let ids: Vec<ChanId> = self
                    .chans
                    .values()
                    .filter(|c| {
                        matching
                            .as_ref()
                            .is_none_or(|(v, val)| c.var(v) == Some(val.as_str()))
                    })
                    .map(|c| c.id)
                    .collect();
                for id in ids {
                    self.hangup(now, id, cause);
                }
                match matching {
                    None => format!("+OK hangup all channels with cause {cause}\n"),
                    Some((v, val)) => format!(
                        "+OK hangup all channels matching [{v}]=[{val}] with cause: {cause}\n"
                    ),
                }
            }
            _ => format!("-ERR {name} Command not found!\n"),
        };
        Some(out)
    }

    pub(super) fn send_dtmf(&mut self, now: Instant, ch: ChanId, digits: &str) {
        for d in digits.chars() {
            // Eavesdrop controls: 1 whisper to the eavesdropped leg, 2 to its peer,
            // 3 barge (three-way), 0 back to listening.
            let mode = match d {
                '1' => Some("whisper_a"),
                '2' => Some("whisper_b"),
                '3' => Some("barge"),
                '0' => Some("listen"),
                _ => None,
            };
            if let (Some(m), Some(c)) = (mode, self.chans.get_mut(&ch))
                && let Some((t, _)) = c.eavesdrop
            {
                c.eavesdrop = Some((t, m));
                c.set_var("eavesdrop_mode", m);
            }
            let post = vec![
                ("DTMF-Digit".into(), d.to_string()),
                ("DTMF-Duration".into(), "2000".into()),
                ("DTMF-Source".into(), "APP".into()),
            ];
            self.chan_event(now, ch, "DTMF", vec![], post, false);
        }
    }

    pub(super) fn api_record(&mut self, now: Instant, args: &[&str]) -> String {
        const USAGE: &str =
            "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n";
        if args.len() < 3 {
            return USAGE.into();
        }
        let Some(ch) = self.by_uuid.get(args[0]).copied() else {
            return "-ERR Cannot locate session!\n".into();
        };
        let path = args[2];
        match args[1].to_ascii_lowercase().as_str() {
            "start" => {
                let limit = args
                    .get(3)
                    .and_then(|l| l.parse::<u64>().ok())
                    .filter(|l| *l > 0)
                    .map(Duration::from_secs);
                if self.record_start(now, ch, path, limit) {
                    "+OK Success\n".into()
                } else {
                    "-ERR Cannot record session!\n".into()
                }
            }
            "stop" => {
                if self.record_stop(now, ch, path) {
                    "+OK Success\n".into()
                } else {
                    "-ERR Cannot stop record session!\n".into()
                }
            }
            // Pause and resume work although the usage line does not name them, and none of
            // the four sends an event (`uuid-record.md`).
            action @ ("mask" | "unmask" | "pause" | "resume") => {
                let Some(c) = self.chans.get_mut(&ch) else {
                    return "-ERR Cannot locate session!\n".into();
                };
                let Some(r) = c.recordings.iter_mut().find(|r| r.path == path) else {
                    return format!("-ERR Cannot {action} recording session!\n");
                };
                match action {
                    "mask" => r.mask(now, true),
                    "unmask" => r.mask(now, false),
                    "pause" => r.pause(now, true),
                    _ => r.pause(now, false),
                }
                "+OK Success\n".into()
            }
            _ => USAGE.into(),
        }
    }

    pub(super) fn api_transfer(&mut self, now: Instant, args: &[&str]) -> String {
        const USAGE: &str = "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n";
        if args.len() < 2 || args.len() > 5 {
            return USAGE.into();
        }
        let Some(mut ch) = self.by_uuid.get(args[0]).copied() else {
            return "-ERR No such channel!\n".into();
        };
        let (flag, dest, dialplan) = if args[1].starts_with('-') {
            match args.get(2) {
                Some(d) => (Some(args[1]), *d, args.get(3).copied()),
                None => return USAGE.into(),
            }
        } else {
            (None, args[1], args.get(2).copied())
        };
        // `inline`: the destination is the applications themselves, `app:arg,app:arg`.
        let inline = dialplan.is_some_and(|d| d.eq_ignore_ascii_case("inline"));
        let peer = self.chans.get(&ch).and_then(|c| c.peer);
        let mut targets = vec![ch];
        match (flag, peer) {
            (Some("-bleg"), Some(p)) => {
                ch = p;
                targets = vec![ch];
            }
            (Some("-both"), Some(p)) => targets.push(p),
            _ => {}
        }
        self.session_transfer(now, &targets, dest, inline);
        "+OK\n".into()
    }

    pub(super) fn api_originate(
        &mut self,
        now: Instant,
        arg: &str,
        waiter: Waiter,
    ) -> Option<String> {
        // originate <call url> <exten>|&<app>(<args>) [<dialplan>] [<context>] [<cid_name>]
        //           [<cid_num>] [<timeout_sec>]
        let (url, rest) = split_dial_url(arg.trim());
        let rest = separate_blank(rest);
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        if url.is_empty() || rest.is_empty() || rest.len() > 6 {
            return Some("-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n".into());
        }
        let exten = rest[0];
        let after = match exten.strip_prefix('&') {
            Some(app) => {
                // As mod_commands reads it: cut at the first `)`, then split at the `(`.
                let app = app.split(')').next().unwrap_or(app);
                let (name, data) = match app.split_once('(') {
                    Some((n, d)) => (n.to_owned(), d.to_owned()),
                    None => (app.to_owned(), String::new()),
                };
                Some((name, data))
            }
            None => None,
        };
        let timeout = rest
            .get(5)
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs);
        let cid = (
            rest.get(3)
                .filter(|s| **s != "undef")
                .map(|s| (*s).to_owned()),
            rest.get(4)
                .filter(|s| **s != "undef")
                .map(|s| (*s).to_owned()),
        );
        match self.originate_leg(now, &url, waiter, Some((after, timeout, cid))) {
            Ok(_) => None,
            Err(cause) => Some(format!("-ERR {cause}\n")),
        }
    }

    /// Creates an outbound leg from a dial string and lets the behaviour model decide its
    /// fate. `Err(cause)` when it fails at once (nothing was created).
    #[allow(clippy::type_complexity)]
    pub(super) fn originate_leg(
        &mut self,
        now: Instant,
        dial: &str,
        waiter: Waiter,
        opts: Option<(
            Option<(String, String)>,
            Option<Duration>,
            (Option<String>, Option<String>),
        )>,
    ) -> Result<ChanId, &'static str> {
        let (vars, target) = parse_dial_vars(dial);
        // Several destinations (`,` simultaneous, `|` sequential): the first one is dialled.
        let target = target.split([',', '|']).next().unwrap_or("").trim();
        let (target, leg_vars) = parse_leg_vars(target);
        let mut vars = vars;
        vars.extend(leg_vars);
        let parts: Vec<&str> = target.split('/').collect();
        // A SIP URL of our own (not a gateway): dialled for real by the shell.
        if let ["sofia", profile, dest] = parts.as_slice()
            && *profile != "gateway"
        {
            return self.originate_sip(now, profile, dest, vars, waiter, opts);
        }
        let agent = parts.first() == Some(&"user");
        let mut refer = None;
        let (name, dest, outcome, delay, talk, media, source) = match parts.as_slice() {
            ["user", ext] | ["user", ext, ..] => {
                let ext = ext.split('@').next().unwrap_or(ext);
                let Some(b) = self.cfg.scenario.agents.lookup(ext).cloned() else {
                    return Err("USER_NOT_REGISTERED");
                };
                let total = b.answer + b.reject + b.no_answer + b.busy;
                let x = self.rng.unit() * if total > 0.0 { total } else { 1.0 };
                let outcome = if x < b.answer || total <= 0.0 {
                    Some(Ring::Answer)
                } else if x < b.answer + b.reject {
                    Some(Ring::Fail("CALL_REJECTED"))
                } else if x < b.answer + b.reject + b.no_answer {
                    None
                } else {
                    Some(Ring::Fail("USER_BUSY"))
                };
                let delay = b.answer_delay.sample(&mut self.rng);
                let talk = b.talk_time.as_ref().map(|d| d.sample(&mut self.rng));
                // Drawn only when configured, so other scenarios keep their random streams.
                refer = b
                    .transfer
                    .as_ref()
                    .map(|t| (t.after.sample(&mut self.rng), t.to.clone()));
                let n = format!("sofia/internal/{ext}@192.0.2.50:5060");
                (n, ext.to_owned(), outcome, delay, talk, false, "mod_sofia")
            }
            ["sofia", "gateway", gw, number] => {
                let m = self.cfg.scenario.customers.clone();
                let fixed = m.numbers.get(*number).cloned();
                let kind = match fixed {
                    Some(k) => k,
                    None => {
                        let w = [m.human, m.machine, m.busy, m.no_answer, m.failed];
                        let total: f64 = w.iter().sum();
                        let mut x = self.rng.unit() * if total > 0.0 { total } else { 1.0 };
                        let mut pick = 0;
                        for (i, wi) in w.iter().enumerate() {
                            if x < *wi {
                                pick = i;
                                break;
                            }
                            x -= wi;
                            pick = i;
                        }
                        ["human", "machine", "busy", "no_answer", "failed"][pick].to_owned()
                    }
                };
                let delay = m.answer_delay.sample(&mut self.rng);
                let (outcome, talk) = match kind.as_str() {
                    "human" => (
                        Some(Ring::Answer),
                        m.talk_time.as_ref().map(|d| d.sample(&mut self.rng)),
                    ),
                    "machine" => (
                        Some(Ring::Answer),
                        Some(m.machine_greeting.sample(&mut self.rng)),
                    ),
                    "busy" => (Some(Ring::Fail("USER_BUSY")), None),
                    "no_answer" => (None, None),
                    "failed" => (
                        Some(Ring::Fail(
                            known_cause(&m.failed_cause).unwrap_or("NORMAL_TEMPORARY_FAILURE"),
                        )),
                        None,
                    ),
                    other => (
                        Some(Ring::Fail(
                            known_cause(other).unwrap_or("NORMAL_TEMPORARY_FAILURE"),
                        )),
                        None,
                    ),
                };
                // `sim_amd_result` is the truth AMD will find; `amd_result` is preset too for
                // tests that read it without running detection (the real variable only exists
                // once `amd` ran, and the `amd` application sets it again).
                if kind == "machine" {
                    vars.push(("sim_amd_result".into(), "MACHINE".into()));
                    vars.push(("amd_result".into(), "MACHINE".into()));
                } else if kind == "human" {
                    vars.push(("sim_amd_result".into(), "HUMAN".into()));
                    vars.push(("amd_result".into(), "HUMAN".into()));
                }
                let delay = if kind == "no_answer" {
                    m.no_answer_after.sample(&mut self.rng)
                } else {
                    delay
                };
                let n = format!("sofia/gateway/{gw}/{number}");
                (
                    n,
                    (*number).to_owned(),
                    outcome,
                    delay,
                    talk,
                    true,
                    "mod_sofia",
                )
            }
            ["loopback", ext] | ["loopback", ext, _] | ["loopback", ext, _, _] => {
                let n = format!("loopback/{ext}-a");
                (
                    n,
                    (*ext).to_owned(),
                    Some(Ring::Answer),
                    Duration::ZERO,
                    None,
                    false,
                    "mod_loopback",
                )
            }
            ["error", cause] => {
                return Err(known_cause(cause).unwrap_or("NORMAL_TEMPORARY_FAILURE"));
            }
            ["sofia", ..] | ["user", ..] => return Err("INVALID_GATEWAY"),
            _ => return Err("CHAN_NOT_IMPLEMENTED"),
        };
        let uuid = vars
            .iter()
            .rev()
            .find(|(k, _)| k == "origination_uuid")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| self.rng.uuid());
        if self.by_uuid.contains_key(&uuid) {
            return Err("DESTINATION_OUT_OF_ORDER");
        }
        let (after, timeout, (cid_name, cid_num)) = opts.unwrap_or((None, None, (None, None)));
        let var = |k: &str| {
            vars.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
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
        let ch = self.new_channel(now, uuid, name, true, &cid_name, &cid_num, &dest, source);
        self.give_voice(ch, if agent { Voice::Agent } else { Voice::Caller });
        if let Some(c) = self.chans.get_mut(&ch) {
            for (k, v) in &vars {
                c.set_var(k, v.clone());
            }
            c.set_var("originate_early_media", "true");
            c.set_var("originate_endpoint", parts.first().copied().unwrap_or(""));
            c.waiter = waiter;
            c.after_answer = after;
            c.talk_time = talk;
            c.refer = refer;
            c.ring_deadline = Some(now + timeout);
            if let Some(o) = &outcome {
                c.set_var(
                    "sim_ring_outcome",
                    match o {
                        Ring::Answer => "answer",
                        Ring::Fail(c) => c,
                    },
                );
            }
        }
        self.chan_event(now, ch, "CHANNEL_CREATE", vec![], vec![], true);
        self.chan_event(now, ch, "CHANNEL_OUTGOING", vec![], vec![], false);
        self.chan_event(now, ch, "CHANNEL_STATE", vec![], vec![], false);
        self.set_state(now, ch, CState::Routing);
        if source != "mod_loopback" {
            self.progress(now, ch, media);
        }
        match outcome {
            Some(_) if delay < timeout => self.schedule(now + delay, TimerKey::Ring(ch)),
            _ => {}
        }
        self.schedule(now + timeout, TimerKey::OriginateTimeout(ch));
        if source == "mod_loopback" {
            self.answer_originated(now, ch);
        }
        Ok(ch)
    }

    pub(super) fn status_text(&self, now: Instant) -> String {
        let up = now.saturating_duration_since(self.started);
        format!(
            "UP {}\nFreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit) is ready\n{} session(s) since startup\n{} session(s) - peak {}, last 5min {} \n0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n1000 session(s) max\nmin idle cpu 0.00/99.70\nCurrent Stack Size/Max 240K/8192K\n",
            uptime_text(up),
            self.sessions_since_start,
            self.chans.len(),
            self.peak,
            self.peak
        )
    }

    pub(super) fn show(&self, arg: &str) -> String {
        let words: Vec<String> = arg
            .split_ascii_whitespace()
            .map(str::to_ascii_lowercase)
            .collect();
        let json =
            words.len() >= 3 && words[words.len() - 2] == "as" && words[words.len() - 1] == "json";
        match words.first().map(String::as_str) {
            Some("channels") if words.get(1).is_some_and(|w| w == "count") => {
                format!("\n{} total.\n", self.chans.len())
            }
            Some("calls") if words.get(1).is_some_and(|w| w == "count") => {
                let n = self
                    .chans
                    .values()
                    .filter(|c| {
                        c.peer.is_some()
                            && c.outbound == c.other.as_ref().is_some_and(|o| o.0 == "originator")
                    })
                    .count();
                format!("\n{} total.\n", n)
            }
            Some("channels") if json => self.show_channels_json(),
            Some("calls") if json => self.show_calls_json(),
            Some("channels") | Some("calls") => {
                format!(
                    "uuid,direction,created,created_epoch,name,state\n\n{} total.\n",
                    self.chans.len()
                )
            }
            _ => "-USAGE: show [channels|calls] [count] [as json]\n".into(),
        }
    }

    pub(super) fn row_fields(&self, c: &Channel) -> Vec<(&'static str, String)> {
        let created_s = c.profile.created_us / 1_000_000;
        let (created, _) = date_strings(c.profile.created_us);
        let app = c
            .current
            .as_ref()
            .map(|a| (a.name.clone(), a.data.clone()))
            .or_else(|| c.parked.then(|| ("park".to_owned(), String::new())));
        let (app, app_data) = app.unwrap_or_default();
        vec![
            ("uuid", c.uuid.clone()),
            ("direction", c.direction().into()),
            ("created", created),
            ("created_epoch", created_s.to_string()),
            ("name", c.name.clone()),
            ("state", c.state.name().into()),
            ("cid_name", c.profile.cid_name.clone()),
            ("cid_num", c.profile.cid_num.clone()),
            ("ip_addr", String::new()),
            ("dest", c.profile.dest.clone()),
            ("application", app),
            ("application_data", app_data),
            ("dialplan", "xml".into()),
            ("context", c.profile.context.clone()),
            ("read_codec", c.codec.into()),
            ("read_rate", c.codec_rate.into()),
            ("read_bit_rate", c.codec_bits.into()),
            ("write_codec", c.codec.into()),
            ("write_rate", c.codec_rate.into()),
            ("write_bit_rate", c.codec_bits.into()),
            ("secure", String::new()),
            ("hostname", self.cfg.hostname.clone()),
            ("presence_id", String::new()),
            ("presence_data", String::new()),
            ("accountcode", String::new()),
            ("callstate", c.callstate.into()),
            ("callee_name", c.profile.callee_name.clone()),
            ("callee_num", c.profile.callee_num.clone()),
            (
                "callee_direction",
                if c.outbound {
                    "RECV".into()
                } else {
                    String::new()
                },
            ),
            (
                "call_uuid",
                c.var("call_uuid").unwrap_or(&c.uuid).to_owned(),
            ),
            ("sent_callee_name", String::new()),
            ("sent_callee_num", String::new()),
            ("initial_cid_name", c.profile.cid_name.clone()),
            ("initial_cid_num", c.profile.cid_num.clone()),
            ("initial_ip_addr", String::new()),
            ("initial_dest", c.profile.dest.clone()),
            ("initial_dialplan", "xml".into()),
            ("initial_context", c.profile.context.clone()),
        ]
    }

    pub(super) fn show_channels_json(&self) -> String {
        if self.chans.is_empty() {
            return "{\"row_count\": 0}\n".into();
        }
        let mut s = format!("{{\"row_count\":{},\"rows\":[", self.chans.len());
        for (i, c) in self.chans.values().enumerate() {
            if i > 0 {
                s.push(',');
            }
            json_object(
                &mut s,
                self.row_fields(c)
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(*k), v.as_str())),
            );
        }
        s.push_str("]}");
        s
    }

    pub(super) fn show_calls_json(&self) -> String {
        // One row per bridge, keyed by its a-leg (the side FreeSWITCH calls the originator).
        let pairs: Vec<(&Channel, &Channel)> = self
            .chans
            .values()
            .filter(|c| c.other.as_ref().is_some_and(|o| o.0 == "originatee"))
            .filter_map(|a| a.peer.and_then(|p| self.chans.get(&p)).map(|b| (a, b)))
            .collect();
        if pairs.is_empty() {
            return "{\"row_count\": 0}\n".into();
        }
        let mut s = format!("{{\"row_count\":{},\"rows\":[", pairs.len());
        for (i, (a, b)) in pairs.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let keep = |k: &str| {
                !k.starts_with("initial_")
                    && !matches!(
                        k,
                        "application"
                            | "application_data"
                            | "dialplan"
                            | "context"
                            | "read_codec"
                            | "read_rate"
                            | "read_bit_rate"
                            | "write_codec"
                            | "write_rate"
                            | "write_bit_rate"
                            | "secure"
                    )
            };
            let mut fields: Vec<(Cow<'static, str>, String)> = self
                .row_fields(a)
                .into_iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (Cow::Borrowed(k), v))
                .collect();
            for (k, v) in self
                .row_fields(b)
                .into_iter()
                .filter(|(k, _)| keep(k) && *k != "hostname" && *k != "call_uuid")
            {
                fields.push((Cow::Owned(format!("b_{k}")), v));
            }
            fields.push((
                "call_created_epoch".into(),
                (a.bridged_us / 1_000_000).to_string(),
            ));
            json_object(&mut s, fields.iter().map(|(k, v)| (k.clone(), v.as_str())));
        }
        s.push_str("]}");
        s
    }
}
