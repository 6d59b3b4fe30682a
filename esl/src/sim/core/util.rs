//! Small parsers and formatters shared by the core's parts.

use super::*;

pub(super) fn json_object<'a>(
    s: &mut String,
    fields: impl Iterator<Item = (Cow<'a, str>, &'a str)>,
) {
    s.push('{');
    for (i, (k, v)) in fields.enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&serde_json::to_string(k.as_ref()).unwrap_or_default());
        s.push(':');
        s.push_str(&serde_json::to_string(v).unwrap_or_default());
    }
    s.push('}');
}

pub(super) fn percent_encode(v: &str) -> String {
    let mut out = Vec::with_capacity(v.len());
    percent::encode_into(v.as_bytes(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "on" | "enabled" | "active" | "allow" | "1"
    )
}

pub(super) fn split_cmd(command: &str) -> (String, String) {
    let command = command.trim();
    match command.split_once(' ') {
        Some((n, a)) => (n.to_owned(), a.trim().to_owned()),
        None => (command.to_owned(), String::new()),
    }
}

/// Splits the call URL off an originate argument, keeping `{a=b c}` groups whole.
pub(super) fn split_dial_url(arg: &str) -> (String, &str) {
    let mut depth = 0i32;
    for (i, ch) in arg.char_indices() {
        match ch {
            '{' | '[' | '<' => depth += 1,
            '}' | ']' | '>' => depth -= 1,
            ' ' if depth <= 0 => return (arg[..i].to_owned(), &arg[i + 1..]),
            _ => {}
        }
    }
    (arg.to_owned(), "")
}

/// An api's arguments split at blanks as `switch_separate_string(.., ' ', ..)` splits them:
/// single quotes group (and are removed), a backslash keeps the next character.
pub(super) fn separate_blank(arg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut started = false;
    let mut quoted = false;
    let mut chars = arg.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                started = true;
            }
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            c => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(cur);
    }
    out
}

/// `{a=1,b=2}rest` -> ([(a,1),(b,2)], rest). `<...>` is accepted like `{...}`.
pub(super) fn parse_dial_vars(dial: &str) -> (Vec<(String, String)>, &str) {
    let dial = dial.trim();
    for (open, close) in [('{', '}'), ('<', '>')] {
        if let Some(rest) = dial.strip_prefix(open)
            && let Some(end) = rest.find(close)
        {
            let vars = split_vars(&rest[..end]);
            let (more, target) = parse_dial_vars(&rest[end + 1..]);
            let mut vars = vars;
            vars.extend(more);
            return (vars, target);
        }
    }
    (Vec::new(), dial)
}

/// `[a=1]user/1000` -> per-leg variables.
pub(super) fn parse_leg_vars(target: &str) -> (&str, Vec<(String, String)>) {
    if let Some(rest) = target.strip_prefix('[')
        && let Some(end) = rest.find(']')
    {
        return (&rest[end + 1..], split_vars(&rest[..end]));
    }
    (target, Vec::new())
}

pub(super) fn split_vars(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('\'').to_owned()))
        .collect()
}

pub(super) fn app_post(app: &App, response: Option<&str>) -> Pairs {
    let mut p: Pairs = Vec::with_capacity(4);
    push(&mut p, "Application", app.name.clone());
    if !app.data.is_empty() {
        push(&mut p, "Application-Data", app.data.clone());
    }
    if let Some(r) = response {
        push(&mut p, "Application-Response", r.to_owned());
    }
    push(&mut p, "Application-UUID", app.uuid.clone());
    p
}

/// `execute_on_answer`'s value as an application and its argument: `amd`, `'amd a=1'`,
/// `avmd_start`, or `app::arg`. `None` when empty.
pub(super) fn on_answer_app(value: &str) -> Option<(String, String)> {
    let v = value.trim().trim_matches('\'').trim();
    if v.is_empty() {
        return None;
    }
    let (app, arg) = v
        .split_once("::")
        .or_else(|| v.split_once(' '))
        .unwrap_or((v, ""));
    Some((app.trim().to_owned(), arg.trim().to_owned()))
}

pub(super) fn playback_post(path: &str, status: &str) -> Pairs {
    let (kind, _) = playback_length(path, Duration::ZERO);
    vec![
        ("Playback-File-Type".into(), kind.to_owned()),
        ("Playback-File-Path".into(), path.to_owned()),
        ("Playback-Status".into(), status.to_owned()),
    ]
}

/// The file type FreeSWITCH reports and how long playing it takes (`None`: forever).
pub(super) fn playback_length(path: &str, default: Duration) -> (&'static str, Option<Duration>) {
    if let Some(ms) = path.strip_prefix("silence_stream://") {
        let ms = ms
            .split(',')
            .next()
            .and_then(|m| m.trim().parse::<i64>().ok())
            .unwrap_or(0);
        return (
            "silence_stream",
            (ms >= 0).then(|| Duration::from_millis(ms as u64)),
        );
    }
    if let Some(spec) = path.strip_prefix("tone_stream://") {
        // %(on,off,freq...);loops=N
        let cycle_ms: u64 = spec
            .split_once("%(")
            .and_then(|(_, r)| r.split_once(')'))
            .map(|(inner, _)| {
                inner
                    .split(',')
                    .take(2)
                    .filter_map(|x| x.trim().parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(1000);
        let loops = spec
            .split_once("loops=")
            .and_then(|(_, l)| l.trim().parse::<i64>().ok())
            .unwrap_or(1);
        return (
            "tone_stream",
            (loops >= 0).then(|| Duration::from_millis(cycle_ms * loops.max(1) as u64)),
        );
    }
    if path.starts_with("local_stream://") {
        return ("local_stream", None);
    }
    // Several files played as one: each takes its time.
    if let Some(list) = path.strip_prefix("file_string://") {
        let parts = list.split('!').filter(|p| !p.trim().is_empty());
        let total = parts
            .map(|p| playback_length(p, default).1.unwrap_or(default))
            .sum();
        return ("file_string", Some(total));
    }
    ("file", Some(default))
}

pub(super) fn calling_site(name: &str) -> (&'static str, &'static str, u32) {
    match name {
        "CHANNEL_CREATE" => (
            "switch_core_state_machine.c",
            "switch_core_session_run",
            626,
        ),
        "CHANNEL_STATE" => (
            "switch_channel.c",
            "switch_channel_perform_set_running_state",
            2198,
        ),
        "CHANNEL_CALLSTATE" => (
            "switch_channel.c",
            "switch_channel_perform_set_callstate",
            336,
        ),
        "CHANNEL_ANSWER" => (
            "switch_channel.c",
            "switch_channel_perform_mark_answered",
            3996,
        ),
        "CHANNEL_PROGRESS" => (
            "switch_channel.c",
            "switch_channel_perform_mark_ring_ready_value",
            3567,
        ),
        "CHANNEL_PROGRESS_MEDIA" => (
            "switch_channel.c",
            "switch_channel_perform_mark_pre_answered",
            3700,
        ),
        "CHANNEL_OUTGOING" => (
            "switch_core_session.c",
            "switch_core_session_outgoing_channel",
            742,
        ),
        "CHANNEL_EXECUTE" => ("switch_core_session.c", "switch_core_session_exec", 2943),
        "CHANNEL_EXECUTE_COMPLETE" => ("switch_core_session.c", "switch_core_session_exec", 2973),
        "CHANNEL_PARK" => ("switch_ivr.c", "switch_ivr_park", 1002),
        "CHANNEL_UNPARK" => ("switch_ivr.c", "switch_ivr_park", 1295),
        "CHANNEL_BRIDGE" => (
            "switch_ivr_bridge.c",
            "switch_ivr_multi_threaded_bridge",
            1690,
        ),
        "CHANNEL_UNBRIDGE" => (
            "switch_ivr_bridge.c",
            "switch_ivr_multi_threaded_bridge",
            1880,
        ),
        "CHANNEL_HANGUP" => ("switch_channel.c", "switch_channel_perform_hangup", 3442),
        "CHANNEL_HANGUP_COMPLETE" => (
            "switch_core_state_machine.c",
            "switch_core_session_reporting_state",
            948,
        ),
        "CHANNEL_DESTROY" => (
            "switch_core_session.c",
            "switch_core_session_perform_destroy",
            1745,
        ),
        "PLAYBACK_START" | "PLAYBACK_STOP" => {
            ("switch_ivr_play_say.c", "switch_ivr_play_file", 1538)
        }
        "RECORD_START" | "RECORD_STOP" => ("switch_ivr_async.c", "record_callback", 1375),
        // The capture: the event fires as a reader takes the digit off the channel's queue.
        "DTMF" => ("switch_channel.c", "switch_channel_dequeue_dtmf", 677),
        // The recorder-leg and uuid_record captures.
        "CHANNEL_ORIGINATE" => (
            "switch_core_state_machine.c",
            "switch_core_session_run",
            632,
        ),
        "CODEC" => (
            "switch_core_codec.c",
            "switch_core_session_set_read_codec",
            279,
        ),
        "CALL_UPDATE" => ("switch_channel.c", "switch_channel_flip_cid", 3277),
        "MEDIA_BUG_START" => ("switch_core_media_bug.c", "switch_core_media_bug_add", 1014),
        "MEDIA_BUG_STOP" => (
            "switch_core_media_bug.c",
            "switch_core_media_bug_destroy",
            84,
        ),
        _ => ("switch_channel.c", "switch_channel_event_set_data", 0),
    }
}

pub(super) fn callstate_number(cs: &str) -> u32 {
    match cs {
        "DOWN" => 0,
        "DIALING" => 1,
        "RINGING" => 2,
        "EARLY" => 3,
        "ACTIVE" => 4,
        "HELD" => 5,
        "RING_WAIT" => 6,
        "HANGUP" => 7,
        _ => 8,
    }
}

pub(super) fn uptime_text(up: Duration) -> String {
    let total = up.as_secs();
    format!(
        "0 years, {} days, {} hours, {} minutes, {} seconds, {} milliseconds, {} microseconds",
        total / 86_400,
        (total % 86_400) / 3600,
        (total % 3600) / 60,
        total % 60,
        up.subsec_millis(),
        up.subsec_micros() % 1000
    )
}

/// The CDR variables of CHANNEL_HANGUP_COMPLETE (`billsec`, `duration`, ...).
pub(super) fn cdr_vars(c: &mut Channel, now: Instant, end_us: u64) {
    let start_us = c.profile.created_us;
    let stamp = |us: u64| {
        if us == 0 {
            String::new()
        } else {
            date_strings(us).0
        }
    };
    let dur = now.saturating_duration_since(c.created_at);
    let bill = c
        .answered_at
        .map_or(Duration::ZERO, |a| now.saturating_duration_since(a));
    let progress = c.progress_at.map_or(Duration::ZERO, |p| {
        p.saturating_duration_since(c.created_at)
    });
    let answer = c.answered_at.map_or(Duration::ZERO, |a| {
        a.saturating_duration_since(c.created_at)
    });
    let pmedia = c.progress_media_at.map_or(Duration::ZERO, |p| {
        p.saturating_duration_since(c.created_at)
    });
    let (answered_us, bridged_us, progress_us, pmedia_us) = (
        c.answered_us,
        c.bridged_us,
        c.progress_us,
        c.progress_media_us,
    );
    let mut set = |k: &str, v: String| c.set_var(k, v);
    set("start_stamp", stamp(start_us));
    set("profile_start_stamp", stamp(start_us));
    if answered_us > 0 {
        set("answer_stamp", stamp(answered_us));
    }
    if bridged_us > 0 {
        set("bridge_stamp", stamp(bridged_us));
    }
    set("end_stamp", stamp(end_us));
    for (k, us) in [
        ("start", start_us),
        ("profile_start", start_us),
        ("answer", answered_us),
        ("bridge", bridged_us),
        ("last_hold", 0),
        ("resurrect", 0),
        ("progress", progress_us),
        ("progress_media", pmedia_us),
        ("end", end_us),
    ] {
        set(&format!("{k}_epoch"), (us / 1_000_000).to_string());
        set(&format!("{k}_uepoch"), us.to_string());
    }
    set("hold_accum_seconds", "0".into());
    set("hold_accum_usec", "0".into());
    set("hold_accum_ms", "0".into());
    let cid = if c.profile.cid_name.is_empty() {
        c.profile.cid_num.clone()
    } else {
        format!("\"{}\" <{}>", c.profile.cid_name, c.profile.cid_num)
    };
    c.set_var("caller_id", cid);
    let mut set = |k: &str, v: u128| c.set_var(k, v.to_string());
    set("duration", dur.as_secs() as u128);
    set("billsec", bill.as_secs() as u128);
    set("progresssec", progress.as_secs() as u128);
    set("answersec", answer.as_secs() as u128);
    set("waitsec", answer.as_secs() as u128);
    set("progress_mediasec", pmedia.as_secs() as u128);
    set("flow_billsec", bill.as_secs() as u128);
    set("mduration", dur.as_millis());
    set("billmsec", bill.as_millis());
    set("progressmsec", progress.as_millis());
    set("answermsec", answer.as_millis());
    set("waitmsec", answer.as_millis());
    set("progress_mediamsec", pmedia.as_millis());
    set("flow_billmsec", bill.as_millis());
    set("uduration", dur.as_micros());
    set("billusec", bill.as_micros());
    set("progressusec", progress.as_micros());
    set("answerusec", answer.as_micros());
    set("waitusec", answer.as_micros());
    set("progress_mediausec", pmedia.as_micros());
    set("flow_billusec", bill.as_micros());
}

pub(super) const SOFIA_STATUS: &str = "                     Name\t   Type\t                                      Data\tState\n=================================================================================================\n                127.0.0.1\t  alias\t                                  internal\tALIASED\n                 internal\tprofile\t              sip:mod_sofia@127.0.0.1:5060\tRUNNING (0)\n=================================================================================================\n1 profile 1 alias\n";

/// FreeSWITCH's event names (`switch_event_types_t`), for `event`/`nixevent`.
pub(super) const EVENT_NAMES: &[&str] = &[
    "CUSTOM",
    "CLONE",
    "CHANNEL_CREATE",
    "CHANNEL_DESTROY",
    "CHANNEL_STATE",
    "CHANNEL_CALLSTATE",
    "CHANNEL_ANSWER",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
    "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_OUTGOING",
    "CHANNEL_PARK",
    "CHANNEL_UNPARK",
    "CHANNEL_APPLICATION",
    "CHANNEL_ORIGINATE",
    "CHANNEL_UUID",
    "API",
    "LOG",
    "INBOUND_CHAN",
    "OUTBOUND_CHAN",
    "STARTUP",
    "SHUTDOWN",
    "PUBLISH",
    "UNPUBLISH",
    "TALK",
    "NOTALK",
    "SESSION_CRASH",
    "MODULE_LOAD",
    "MODULE_UNLOAD",
    "DTMF",
    "MESSAGE",
    "PRESENCE_IN",
    "NOTIFY_IN",
    "PRESENCE_OUT",
    "PRESENCE_PROBE",
    "MESSAGE_WAITING",
    "MESSAGE_QUERY",
    "ROSTER",
    "CODEC",
    "BACKGROUND_JOB",
    "DETECTED_SPEECH",
    "DETECTED_TONE",
    "PRIVATE_COMMAND",
    "HEARTBEAT",
    "TRAP",
    "ADD_SCHEDULE",
    "DEL_SCHEDULE",
    "EXE_SCHEDULE",
    "RE_SCHEDULE",
    "RELOADXML",
    "NOTIFY",
    "PHONE_FEATURE",
    "PHONE_FEATURE_SUBSCRIBE",
    "SEND_MESSAGE",
    "RECV_MESSAGE",
    "REQUEST_PARAMS",
    "CHANNEL_DATA",
    "GENERAL",
    "COMMAND",
    "SESSION_HEARTBEAT",
    "CLIENT_DISCONNECTED",
    "SERVER_DISCONNECTED",
    "SEND_INFO",
    "RECV_INFO",
    "RECV_RTCP_MESSAGE",
    "SEND_RTCP_MESSAGE",
    "CALL_SECURE",
    "NAT",
    "RECORD_START",
    "RECORD_STOP",
    "PLAYBACK_START",
    "PLAYBACK_STOP",
    "CALL_UPDATE",
    "FAILURE",
    "SOCKET_DATA",
    "MEDIA_BUG_START",
    "MEDIA_BUG_STOP",
    "CONFERENCE_DATA_QUERY",
    "CONFERENCE_DATA",
    "CALL_SETUP_REQ",
    "CALL_SETUP_RESULT",
    "CALL_DETAIL",
    "DEVICE_STATE",
    "TEXT",
    "SHUTDOWN_REQUESTED",
];

pub(super) fn is_event_name(n: &str) -> bool {
    EVENT_NAMES.contains(&n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_strings_parse() {
        let (url, rest) = split_dial_url("{origination_uuid=abc,a=b c}user/1000 &park()");
        assert_eq!(url, "{origination_uuid=abc,a=b c}user/1000");
        assert_eq!(rest, "&park()");
        let (vars, target) = parse_dial_vars(&url);
        assert_eq!(vars[0], ("origination_uuid".into(), "abc".into()));
        assert_eq!(vars[1], ("a".into(), "b c".into()));
        assert_eq!(target, "user/1000");
    }

    #[test]
    fn playback_lengths() {
        assert_eq!(
            playback_length("tone_stream://%(250,250,440);loops=4", Duration::ZERO).1,
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            playback_length("silence_stream://1500", Duration::ZERO).1,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            playback_length("local_stream://moh", Duration::ZERO).1,
            None
        );
        assert_eq!(
            playback_length("file_string://a.wav!b.wav!c.wav", Duration::from_secs(2)).1,
            Some(Duration::from_secs(6))
        );
    }

    #[test]
    fn filters_follow_mod_event_socket() {
        let mut c = Conn::new(ConnKind::Inbound);
        let h = Headers::from_pairs([("Unique-ID", "u1"), ("Event-Name", "CHANNEL_ANSWER")]);
        assert!(c.passes_filters(&h));
        c.filters.push(("Unique-ID".into(), "u2".into()));
        assert!(!c.passes_filters(&h));
        c.filters.push(("Unique-ID".into(), "u1".into()));
        assert!(c.passes_filters(&h));
        c.filters
            .push(("Event-Name".into(), "-CHANNEL_ANSWER".into()));
        assert!(!c.passes_filters(&h));
    }
}
