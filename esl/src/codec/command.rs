//! What switchyard sends: commands, and (for the switch side) their parser.
//!
//! A command is one line, optional `Name: value` header lines, an empty line, and for some an
//! optional body sized by `Content-Length`. FreeSWITCH does not decode header values it reads
//! from clients, so a newline inside a value would split the command: every single-line field is
//! checked and a newline is an [`EslError::InvalidCommand`], never sent. A multi-line application
//! argument travels as a `text/plain` body instead, which FreeSWITCH supports for `sendmsg`.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use super::event::EventFormat;
use super::frame::{DecoderLimits, FrameDecoder, MAX_CONTENT_LENGTH, Mode};
use super::headers::Headers;
use crate::error::EslError;

/// Events to subscribe to: names, then CUSTOM subclasses. FreeSWITCH reads every word after
/// `CUSTOM` as a subclass, so the encoder always writes `CUSTOM` last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventSet {
    /// Event names (`CHANNEL_CREATE`, `ALL`, `BACKGROUND_JOB`...).
    pub names: Vec<String>,
    /// CUSTOM subclasses (`callcenter::info`).
    pub subclasses: Vec<String>,
}

impl EventSet {
    /// Parses FreeSWITCH's own spelling: `CHANNEL_CREATE CUSTOM callcenter::info`.
    pub fn parse(words: &str) -> Self {
        let mut set = EventSet::default();
        let mut custom = false;
        for w in words.split_ascii_whitespace() {
            if w.eq_ignore_ascii_case("CUSTOM") {
                custom = true;
            } else if custom {
                set.subclasses.push(w.to_owned());
            } else {
                set.names.push(w.to_owned());
            }
        }
        set
    }

    /// Adds names not already present.
    pub fn add_names<I: IntoIterator<Item = S>, S: Into<String>>(&mut self, names: I) {
        for n in names {
            let n = n.into();
            if !self.names.iter().any(|x| x.eq_ignore_ascii_case(&n)) {
                self.names.push(n);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.subclasses.is_empty()
    }

    fn write(&self, out: &mut String) {
        for n in &self.names {
            out.push(' ');
            out.push_str(n);
        }
        if !self.subclasses.is_empty() {
            out.push_str(" CUSTOM");
            for s in &self.subclasses {
                out.push(' ');
                out.push_str(s);
            }
        }
    }
}

/// A message for a channel (`sendmsg`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendMsg {
    /// Run a dialplan application on the channel.
    Execute {
        app: String,
        arg: Option<String>,
        /// Our id for this execution; FreeSWITCH echoes it as `Application-UUID` in
        /// CHANNEL_EXECUTE and CHANNEL_EXECUTE_COMPLETE.
        event_uuid: Option<String>,
        /// Run to completion before any later message is processed.
        event_lock: bool,
        /// Queue without waiting for the channel thread (outbound `async` sockets).
        async_: bool,
        /// Repeat count.
        loops: Option<u32>,
    },
    /// Hang the channel up.
    Hangup { cause: String },
    /// Stream the channel's media to/from a UDP or TCP address.
    Unicast {
        local_ip: String,
        local_port: u16,
        remote_ip: String,
        remote_port: u16,
        transport: String,
        flags: Option<String>,
    },
    /// Take the media path off FreeSWITCH.
    NoMedia { info: String },
}

impl SendMsg {
    /// `execute` with just an application and argument.
    pub fn execute(app: impl Into<String>, arg: impl Into<Option<String>>) -> Self {
        SendMsg::Execute {
            app: app.into(),
            arg: arg.into(),
            event_uuid: None,
            event_lock: false,
            async_: false,
            loops: None,
        }
    }
}

/// A `log` level as FreeSWITCH names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Console = 0,
    Alert = 1,
    Crit = 2,
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

/// A command to the switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `auth <password>`.
    Auth { password: String },
    /// `userauth <user>@<domain>:<password>`.
    UserAuth { user: String, password: String },
    /// `api <command>`: runs inline and blocks this connection until it returns.
    Api { command: String },
    /// `bgapi <command>`: runs in a thread; the result comes as a BACKGROUND_JOB event.
    BgApi {
        command: String,
        /// Our own Job-UUID, so the waiter can be registered before the command is sent.
        job_uuid: Option<String>,
    },
    /// `event <format> <names> [CUSTOM <subclasses>]`.
    Event {
        format: EventFormat,
        events: EventSet,
    },
    /// `nixevent <names> [CUSTOM <subclasses>]`.
    NixEvent { events: EventSet },
    /// `noevents`.
    NoEvents,
    /// `filter <header> <value>`.
    Filter { header: String, value: String },
    /// `filter delete <header> [<value>]`, or `filter delete all` with header `all`.
    FilterDelete {
        header: String,
        value: Option<String>,
    },
    /// `myevents [<format>] [<uuid>]`: events of one channel only.
    MyEvents {
        /// `None` writes plain `myevents` (FreeSWITCH then sends plain events).
        format: Option<EventFormat>,
        uuid: Option<String>,
    },
    /// `divert_events on|off`: deliver events of embedded-language inputs to this socket.
    DivertEvents(bool),
    /// `linger [<seconds>]`: keep the outbound socket open after hangup.
    Linger(Option<Duration>),
    /// `nolinger`.
    NoLinger,
    /// `resume`: let the dialplan go on when the socket closes.
    Resume,
    /// `log <level>`.
    Log(LogLevel),
    /// `nolog`.
    NoLog,
    /// `sendevent <name>` with headers and an optional body.
    SendEvent {
        name: String,
        headers: Vec<(String, String)>,
        body: Option<Bytes>,
    },
    /// `sendmsg [<uuid>]`.
    SendMsg { uuid: Option<String>, msg: SendMsg },
    /// `connect`: the first command on an outbound socket.
    Connect,
    /// `exit`.
    Exit,
}

fn check_line(field: &'static str, v: &str) -> Result<(), EslError> {
    if v.contains(['\n', '\r']) {
        return Err(EslError::InvalidCommand {
            reason: format!("{field} contains a line break"),
        });
    }
    Ok(())
}

fn check_word(field: &'static str, v: &str) -> Result<(), EslError> {
    check_line(field, v)?;
    // Any ASCII whitespace would split the word when the switch reads it back.
    if v.is_empty() || v.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(EslError::InvalidCommand {
            reason: format!("{field} must be one non-empty word, got {v:?}"),
        });
    }
    Ok(())
}

/// A header name: one word with no colon (the colon would end the name early).
fn check_header_name(field: &'static str, v: &str) -> Result<(), EslError> {
    check_word(field, v)?;
    if v.contains(':') {
        return Err(EslError::InvalidCommand {
            reason: format!("{field} {v:?} contains a colon"),
        });
    }
    Ok(())
}

fn check_events(events: &EventSet) -> Result<(), EslError> {
    if events.is_empty() {
        return Err(EslError::InvalidCommand {
            reason: "no event names given".into(),
        });
    }
    for n in events.names.iter().chain(&events.subclasses) {
        check_word("event name", n)?;
    }
    if events
        .names
        .iter()
        .chain(&events.subclasses)
        .any(|n| n.eq_ignore_ascii_case("CUSTOM"))
    {
        return Err(EslError::InvalidCommand {
            reason: "CUSTOM is the subclass marker, not an event or subclass name".into(),
        });
    }
    Ok(())
}

impl Command {
    /// Appends the wire form to `out`. Nothing is written when the command is invalid.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EslError> {
        let mut line = String::with_capacity(64);
        let mut headers: Vec<(&str, String)> = Vec::new();
        let mut body: Option<&[u8]> = None;
        let owned_body: Vec<u8>;
        match self {
            Command::Auth { password } => {
                check_line("password", password)?;
                line.push_str("auth ");
                line.push_str(password);
            }
            Command::UserAuth { user, password } => {
                check_word("user", user)?;
                check_line("password", password)?;
                line = format!("userauth {user}:{password}");
            }
            Command::Api { command } => {
                check_line("api command", command)?;
                line = format!("api {command}");
            }
            Command::BgApi { command, job_uuid } => {
                check_line("bgapi command", command)?;
                line = format!("bgapi {command}");
                if let Some(j) = job_uuid {
                    check_word("Job-UUID", j)?;
                    headers.push(("Job-UUID", j.clone()));
                }
            }
            Command::Event { format, events } => {
                check_events(events)?;
                line = format!("event {}", format.as_str());
                events.write(&mut line);
            }
            Command::NixEvent { events } => {
                check_events(events)?;
                line.push_str("nixevent");
                events.write(&mut line);
            }
            Command::NoEvents => line.push_str("noevents"),
            Command::Filter { header, value } => {
                check_word("filter header", header)?;
                // `filter delete ...` is the delete command; FreeSWITCH could not tell them apart.
                if header.eq_ignore_ascii_case("delete") {
                    return Err(EslError::InvalidCommand {
                        reason: "cannot filter on a header called \"delete\"".into(),
                    });
                }
                check_line("filter value", value)?;
                line = format!("filter {header} {value}");
            }
            Command::FilterDelete { header, value } => {
                check_word("filter header", header)?;
                line = format!("filter delete {header}");
                if let Some(v) = value {
                    check_line("filter value", v)?;
                    line.push(' ');
                    line.push_str(v);
                }
            }
            Command::MyEvents { format, uuid } => {
                line.push_str("myevents");
                if let Some(f) = format {
                    line.push(' ');
                    line.push_str(f.as_str());
                }
                if let Some(u) = uuid {
                    check_word("uuid", u)?;
                    line.push(' ');
                    line.push_str(u);
                }
            }
            Command::DivertEvents(on) => {
                line = format!("divert_events {}", if *on { "on" } else { "off" });
            }
            Command::Linger(None) => line.push_str("linger"),
            Command::Linger(Some(d)) => line = format!("linger {}", d.as_secs().max(1)),
            Command::NoLinger => line.push_str("nolinger"),
            Command::Resume => line.push_str("resume"),
            Command::Log(level) => line = format!("log {}", *level as u8),
            Command::NoLog => line.push_str("nolog"),
            Command::SendEvent {
                name,
                headers: h,
                body: b,
            } => {
                check_word("event name", name)?;
                line = format!("sendevent {name}");
                for (n, v) in h {
                    check_header_name("header name", n)?;
                    check_line("header value", v)?;
                    headers.push((n.as_str(), v.clone()));
                }
                body = b.as_deref();
            }
            Command::SendMsg { uuid, msg } => {
                line.push_str("sendmsg");
                if let Some(u) = uuid {
                    check_word("uuid", u)?;
                    line.push(' ');
                    line.push_str(u);
                }
                match msg {
                    SendMsg::Execute {
                        app,
                        arg,
                        event_uuid,
                        event_lock,
                        async_,
                        loops,
                    } => {
                        check_word("execute-app-name", app)?;
                        headers.push(("call-command", "execute".into()));
                        headers.push(("execute-app-name", app.clone()));
                        if let Some(a) = arg {
                            if a.contains(['\n', '\r']) {
                                headers.push(("content-type", "text/plain".into()));
                                owned_body = a.clone().into_bytes();
                                body = Some(&owned_body);
                            } else {
                                headers.push(("execute-app-arg", a.clone()));
                            }
                        }
                        if let Some(u) = event_uuid {
                            check_word("Event-UUID", u)?;
                            headers.push(("Event-UUID", u.clone()));
                        }
                        if *event_lock {
                            headers.push(("event-lock", "true".into()));
                        }
                        if *async_ {
                            headers.push(("async", "true".into()));
                        }
                        if let Some(l) = loops {
                            headers.push(("loops", l.to_string()));
                        }
                    }
                    SendMsg::Hangup { cause } => {
                        check_word("hangup-cause", cause)?;
                        headers.push(("call-command", "hangup".into()));
                        headers.push(("hangup-cause", cause.clone()));
                    }
                    SendMsg::Unicast {
                        local_ip,
                        local_port,
                        remote_ip,
                        remote_port,
                        transport,
                        flags,
                    } => {
                        check_word("local-ip", local_ip)?;
                        check_word("remote-ip", remote_ip)?;
                        check_word("transport", transport)?;
                        headers.push(("call-command", "unicast".into()));
                        headers.push(("local-ip", local_ip.clone()));
                        headers.push(("local-port", local_port.to_string()));
                        headers.push(("remote-ip", remote_ip.clone()));
                        headers.push(("remote-port", remote_port.to_string()));
                        headers.push(("transport", transport.clone()));
                        if let Some(f) = flags {
                            check_line("flags", f)?;
                            headers.push(("flags", f.clone()));
                        }
                    }
                    SendMsg::NoMedia { info } => {
                        check_line("nomedia-uuid", info)?;
                        headers.push(("call-command", "nomedia".into()));
                        headers.push(("nomedia-uuid", info.clone()));
                    }
                }
            }
            Command::Connect => line.push_str("connect"),
            Command::Exit => line.push_str("exit"),
        }
        if let Some(b) = body
            && b.len() > MAX_CONTENT_LENGTH
        {
            return Err(EslError::InvalidCommand {
                reason: format!("body of {} bytes exceeds 16 MiB", b.len()),
            });
        }
        out.reserve(line.len() + 64 + body.map_or(0, <[u8]>::len));
        out.put_slice(line.as_bytes());
        out.put_u8(b'\n');
        for (n, v) in &headers {
            out.put_slice(n.as_bytes());
            out.put_slice(b": ");
            out.put_slice(v.as_bytes());
            out.put_u8(b'\n');
        }
        if let Some(b) = body {
            out.put_slice(format!("content-length: {}\n\n", b.len()).as_bytes());
            out.put_slice(b);
        } else {
            out.put_u8(b'\n');
        }
        Ok(())
    }

    /// The command as bytes.
    pub fn to_bytes(&self) -> Result<Bytes, EslError> {
        let mut out = BytesMut::new();
        self.encode(&mut out)?;
        Ok(out.freeze())
    }

    /// A short description for logs that never includes a password.
    pub fn describe(&self) -> String {
        match self {
            Command::Auth { .. } => "auth ***".into(),
            Command::UserAuth { user, .. } => format!("userauth {user}:***"),
            other => {
                let bytes = other.to_bytes().unwrap_or_default();
                let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
                String::from_utf8_lossy(first).into_owned()
            }
        }
    }
}

// ---- the switch side ---------------------------------------------------------------------

/// A command as a switch reads it: the command line, header lines, and an optional body.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandFrame {
    /// The first line, e.g. `api show channels as json`.
    pub line: String,
    /// The header lines that followed (values as sent: FreeSWITCH does not decode them).
    pub headers: Headers,
    pub body: Option<Bytes>,
}

/// Frames commands from a client (the switch side; resumable and bounded like the client's
/// decoder).
#[derive(Debug)]
pub struct CommandDecoder {
    inner: FrameDecoder,
}

impl Default for CommandDecoder {
    fn default() -> Self {
        CommandDecoder::new(DecoderLimits::default())
    }
}

impl CommandDecoder {
    pub fn new(limits: DecoderLimits) -> Self {
        CommandDecoder {
            inner: FrameDecoder::with_mode(limits, Mode::Command),
        }
    }

    /// Takes the next whole command off `buf`, or `Ok(None)` when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<CommandFrame>, EslError> {
        Ok(self
            .inner
            .decode_raw(buf)?
            .map(|(line, frame)| CommandFrame {
                line: String::from_utf8_lossy(line.as_deref().unwrap_or_default().trim_ascii_end())
                    .into_owned(),
                headers: frame.headers,
                body: frame.body,
            }))
    }
}

impl Command {
    /// Interprets a command the way mod_event_socket does. An unknown command is
    /// `Err(InvalidCommand)`; the switch answers it with `-ERR command not found`.
    pub fn parse(frame: &CommandFrame) -> Result<Command, EslError> {
        // ASCII whitespace only, the same set `split_ascii_whitespace` uses below: Unicode
        // trimming would also eat bytes like \x0b that a word may hold.
        let line = frame.line.trim_ascii();
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim_ascii_start();
        let header = |n: &str| frame.headers.get_str(n).map(|v| v.into_owned());
        let bad = |reason: &str| EslError::InvalidCommand {
            reason: reason.to_owned(),
        };
        Ok(match word.to_ascii_lowercase().as_str() {
            "auth" => Command::Auth {
                password: rest.to_owned(),
            },
            "userauth" => {
                let (user, password) = rest
                    .split_once(':')
                    .ok_or_else(|| bad("userauth needs user:password"))?;
                Command::UserAuth {
                    user: user.to_owned(),
                    password: password.to_owned(),
                }
            }
            "api" => Command::Api {
                command: rest.to_owned(),
            },
            "bgapi" => Command::BgApi {
                command: rest.to_owned(),
                job_uuid: header("Job-UUID"),
            },
            "event" => {
                let (fmt, names) = match rest.split_once(' ') {
                    Some((f, n)) => (f, n),
                    None => (rest, ""),
                };
                match fmt.parse::<EventFormat>() {
                    Ok(format) => Command::Event {
                        format,
                        events: EventSet::parse(names),
                    },
                    // `event CHANNEL_CREATE` without a format means plain.
                    Err(_) => Command::Event {
                        format: EventFormat::Plain,
                        events: EventSet::parse(rest),
                    },
                }
            }
            "nixevent" => Command::NixEvent {
                events: EventSet::parse(rest),
            },
            "noevents" => Command::NoEvents,
            "filter" => {
                let (h, v) = rest.split_once(' ').unwrap_or((rest, ""));
                if h.eq_ignore_ascii_case("delete") {
                    let (h2, v2) = v.split_once(' ').unwrap_or((v, ""));
                    Command::FilterDelete {
                        header: h2.to_owned(),
                        value: (!v2.is_empty()).then(|| v2.to_owned()),
                    }
                } else {
                    Command::Filter {
                        header: h.to_owned(),
                        value: v.to_owned(),
                    }
                }
            }
            "myevents" => {
                let mut format = None;
                let mut uuid = None;
                for w in rest.split_ascii_whitespace() {
                    match w.parse::<EventFormat>() {
                        Ok(f) => format = Some(f),
                        Err(_) => uuid = Some(w.to_owned()),
                    }
                }
                Command::MyEvents { format, uuid }
            }
            "divert_events" => Command::DivertEvents(rest.eq_ignore_ascii_case("on")),
            "linger" => Command::Linger(rest.parse::<u64>().ok().map(Duration::from_secs)),
            "nolinger" => Command::NoLinger,
            "resume" => Command::Resume,
            "log" => {
                let level = match rest.to_ascii_lowercase().as_str() {
                    "" | "debug" | "7" => LogLevel::Debug,
                    "console" | "0" => LogLevel::Console,
                    "alert" | "1" => LogLevel::Alert,
                    "crit" | "2" => LogLevel::Crit,
                    "err" | "3" => LogLevel::Err,
                    "warning" | "4" => LogLevel::Warning,
                    "notice" | "5" => LogLevel::Notice,
                    "info" | "6" => LogLevel::Info,
                    _ => return Err(bad("invalid log level")),
                };
                Command::Log(level)
            }
            "nolog" => Command::NoLog,
            "sendevent" => Command::SendEvent {
                name: rest.to_owned(),
                headers: frame
                    .headers
                    .iter()
                    .filter(|h| !h.name_bytes().eq_ignore_ascii_case(b"content-length"))
                    .map(|h| {
                        (
                            h.name().into_owned(),
                            String::from_utf8_lossy(h.raw_value()).into_owned(),
                        )
                    })
                    .collect(),
                body: frame.body.clone(),
            },
            "sendmsg" => {
                let uuid = (!rest.is_empty()).then(|| rest.to_owned());
                let cmd = header("call-command")
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let msg = match cmd.as_str() {
                    "execute" => SendMsg::Execute {
                        app: header("execute-app-name")
                            .ok_or_else(|| bad("execute without execute-app-name"))?,
                        arg: header("execute-app-arg").or_else(|| {
                            frame
                                .body
                                .as_ref()
                                .map(|b| String::from_utf8_lossy(b).into_owned())
                        }),
                        event_uuid: header("Event-UUID"),
                        event_lock: header("event-lock").is_some_and(|v| is_true(&v)),
                        async_: header("async").is_some_and(|v| is_true(&v)),
                        loops: header("loops").and_then(|v| v.trim().parse().ok()),
                    },
                    "hangup" => SendMsg::Hangup {
                        cause: header("hangup-cause").unwrap_or_else(|| "NORMAL_CLEARING".into()),
                    },
                    "unicast" => SendMsg::Unicast {
                        local_ip: header("local-ip").unwrap_or_else(|| "127.0.0.1".into()),
                        local_port: header("local-port")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(8025),
                        remote_ip: header("remote-ip").unwrap_or_else(|| "127.0.0.1".into()),
                        remote_port: header("remote-port")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(8026),
                        transport: header("transport").unwrap_or_else(|| "udp".into()),
                        flags: header("flags"),
                    },
                    "nomedia" => SendMsg::NoMedia {
                        info: header("nomedia-uuid").unwrap_or_default(),
                    },
                    _ => return Err(bad("unknown call-command")),
                };
                Command::SendMsg { uuid, msg }
            }
            "connect" => Command::Connect,
            "exit" => Command::Exit,
            _ => return Err(bad("command not found")),
        })
    }
}

/// FreeSWITCH's `switch_true`.
fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "on" | "enabled" | "active" | "allow" | "1"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(c: &Command) -> String {
        String::from_utf8(c.to_bytes().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn custom_subclasses_always_come_last() {
        let c = Command::Event {
            format: EventFormat::Plain,
            events: EventSet {
                names: vec!["CHANNEL_CREATE".into(), "BACKGROUND_JOB".into()],
                subclasses: vec!["callcenter::info".into()],
            },
        };
        assert_eq!(
            wire(&c),
            "event plain CHANNEL_CREATE BACKGROUND_JOB CUSTOM callcenter::info\n\n"
        );
        assert_eq!(
            EventSet::parse("CHANNEL_CREATE CUSTOM a::b c::d").subclasses,
            ["a::b", "c::d"]
        );
    }

    #[test]
    fn bgapi_carries_our_job_uuid() {
        let c = Command::BgApi {
            command: "originate loopback/7001/default &park()".into(),
            job_uuid: Some("j-1".into()),
        };
        assert_eq!(
            wire(&c),
            "bgapi originate loopback/7001/default &park()\nJob-UUID: j-1\n\n"
        );
    }

    #[test]
    fn newline_injection_is_refused() {
        for c in [
            Command::Api {
                command: "status\n\nexit".into(),
            },
            Command::Auth {
                password: "a\nb".into(),
            },
            Command::Filter {
                header: "Unique-ID".into(),
                value: "x\ny".into(),
            },
        ] {
            assert!(
                matches!(c.to_bytes(), Err(EslError::InvalidCommand { .. })),
                "{c:?}"
            );
        }
    }

    #[test]
    fn sendmsg_execute_matches_the_capture() {
        let c = Command::SendMsg {
            uuid: None,
            msg: SendMsg::execute(
                "playback",
                Some("tone_stream://%(250,250,440);loops=4".to_owned()),
            ),
        };
        assert_eq!(
            wire(&c),
            "sendmsg\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: tone_stream://%(250,250,440);loops=4\n\n"
        );
    }

    #[test]
    fn multiline_app_arg_travels_as_a_body_and_parses_back() {
        let c = Command::SendMsg {
            uuid: Some("u1".into()),
            msg: SendMsg::Execute {
                app: "set".into(),
                arg: Some("a=1\nb=2".into()),
                event_uuid: Some("e1".into()),
                event_lock: true,
                async_: false,
                loops: Some(2),
            },
        };
        let mut buf = BytesMut::from(wire(&c).as_bytes());
        let frame = CommandDecoder::default().decode(&mut buf).unwrap().unwrap();
        assert_eq!(Command::parse(&frame).unwrap(), c);
        assert!(buf.is_empty());
    }

    #[test]
    fn commands_round_trip_through_the_switch_parser() {
        let cmds = [
            Command::Auth {
                password: "ClueCon".into(),
            },
            Command::UserAuth {
                user: "u@d".into(),
                password: "p".into(),
            },
            Command::Api {
                command: "status".into(),
            },
            Command::NixEvent {
                events: EventSet::parse("HEARTBEAT"),
            },
            Command::NoEvents,
            Command::Filter {
                header: "Unique-ID".into(),
                value: "abc".into(),
            },
            Command::FilterDelete {
                header: "Unique-ID".into(),
                value: Some("abc".into()),
            },
            Command::FilterDelete {
                header: "all".into(),
                value: None,
            },
            Command::MyEvents {
                format: Some(EventFormat::Json),
                uuid: Some("u".into()),
            },
            Command::MyEvents {
                format: None,
                uuid: None,
            },
            Command::DivertEvents(true),
            Command::Linger(Some(Duration::from_secs(10))),
            Command::Linger(None),
            Command::NoLinger,
            Command::Resume,
            Command::Log(LogLevel::Info),
            Command::NoLog,
            Command::SendEvent {
                name: "CUSTOM".into(),
                headers: vec![("Event-Subclass".into(), "x::y".into())],
                body: Some(Bytes::from_static(b"hello")),
            },
            Command::SendMsg {
                uuid: None,
                msg: SendMsg::Hangup {
                    cause: "USER_BUSY".into(),
                },
            },
            Command::Connect,
            Command::Exit,
        ];
        for c in cmds {
            let mut buf = BytesMut::from(wire(&c).as_bytes());
            let frame = CommandDecoder::default().decode(&mut buf).unwrap().unwrap();
            assert_eq!(Command::parse(&frame).unwrap(), c);
        }
    }

    #[test]
    fn unknown_command_is_an_error() {
        let mut buf = BytesMut::from(&b"foobar\n\n"[..]);
        let frame = CommandDecoder::default().decode(&mut buf).unwrap().unwrap();
        assert!(Command::parse(&frame).is_err());
    }

    #[test]
    fn describe_hides_passwords() {
        assert_eq!(
            Command::Auth {
                password: "secret".into()
            }
            .describe(),
            "auth ***"
        );
    }
}
