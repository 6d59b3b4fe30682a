//! [`SwitchCommand`] -> Event Socket requests, in FreeSWITCH 1.10 syntax. Pure functions, so
//! the exact strings are unit-tested below.
//!
//! | command      | requests (in order, on one connection)                                   |
//! |--------------|---------------------------------------------------------------------------|
//! | Answer       | `api uuid_answer <leg>`                                                   |
//! | Music        | `api uuid_broadcast <leg> <source> aleg` (files loop: `endless_playback::`) |
//! | Announce     | `api uuid_break <leg> all`, `api uuid_broadcast <leg> file_string://..! aleg`, then the music again (the loop queues prompts first: see the module `prompts`) |
//! | Originate    | `bgapi originate {origination_uuid=..,originate_timeout=..,switchyard_leg=<kind>,origination_caller_id_*=..,vars}<dial> &park()` |
//! | Originate, `join: Some(c)` | the same, with `'&eval(${uuid_bridge <c> <leg>})'` instead of `&park()` (see below) |
//! | Bridge       | `api uuid_setvar_multi <a> hangup_after_bridge=true;socket_resume=false`, `api uuid_bridge <a> <b>` |
//! | Hangup       | `api uuid_kill <leg> <CAUSE>` (`-ERR No such channel!` is not an error)   |
//! | Transfer     | `api uuid_transfer <leg> <destination> XML <context>`                     |
//! | PlayThenHangup | `api uuid_transfer <leg> playback:<path>,hangup:NORMAL_CLEARING inline` |
//! | Eavesdrop    | `bgapi originate {origination_uuid=..,switchyard_leg=supervisor,eavesdrop_*}<dial> &eavesdrop(<target>)` |
//!
//! Eavesdrop modes (mod_dptools `eavesdrop`, flags from `switch_ivr_async.c`): the supervisor
//! always hears both sides; `eavesdrop_whisper_aleg=true` sets ED_MUX_READ (the supervisor is
//! mixed into the audio the *target* sends, so the target's peer hears them) and
//! `eavesdrop_whisper_bleg=true` sets ED_MUX_WRITE (mixed into what the *target* hears).
//! - Listen: neither.
//! - Whisper (only the agent hears): ED_MUX_WRITE when the target is the agent's leg,
//!   ED_MUX_READ when it is the caller's leg.
//! - Barge: both, the very flags of mod_dptools `three_way` (and of pressing 3 while
//!   eavesdropping); done through `eavesdrop` so one application covers all three modes.
//!
//! **Joining at the answer.** An originate with `join` runs `eval` as its application: when the
//! originate completes (it has let go of the leg, so nothing races the bridge), FreeSWITCH
//! expands `${uuid_bridge <c> <leg>}` on the leg's own thread, which calls the `uuid_bridge`
//! API there and then (`switch_channel_expand_variables_check`: `${name args}` runs API
//! `name`). No event travels to switchyard and back, and the leg never parks: the capture
//! `originate-bridge-race-eval-*` bridged 25 of 25 loopback and 25 of 25 SIP agents, CHANNEL_BRIDGE
//! about 40 ms after the agent's CHANNEL_ANSWER. The space form `${name args}` is used rather than
//! `${name(args)}` because `originate` cuts its `&app(...)` at the first `)` (mod_commands
//! `originate_function`), and the whole application is in single quotes because `originate`
//! splits its arguments at blanks outside quotes (`switch_separate_string`). If the caller is gone
//! by then, `uuid_bridge` fails, the leg runs out of dialplan and FreeSWITCH hangs it up
//! NORMAL_CLEARING. It needs FreeSWITCH's `api-expansion` (on by default; the driver checks each
//! node at connect and joins with `uuid_bridge` from switchyard on a node that has it off).
//!
//! `eavesdrop_enable_dtmf=false` always: the mode is the API's decision, a listener must not
//! upgrade to barge from the keypad.

use std::time::Duration;

use crate::io::{LegId, LegKind, MonitorMode, Prompt, SwitchCommand};

use super::config::{LEG_VARIABLE, PromptTemplates};
use super::error::DriverError;

/// One request on the inbound connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EslRequest {
    Api(String),
    BgApi(String),
    /// `sendmsg <leg>` with `call-command: execute`: runs `app` on the channel, queued after
    /// what it runs now. `id` goes out as `Event-UUID`, which FreeSWITCH echoes as
    /// `Application-UUID` on the execution's events.
    Execute {
        leg: LegId,
        app: String,
        arg: String,
        id: Option<String>,
    },
}

/// What the loop must remember about a command while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tracking {
    /// A leg we originate: its answer and hangup are reported to the core.
    Originate(LegId),
    /// A kill: "no such channel" may need a retry if the leg is still being originated.
    Kill(LegId),
    /// `uuid_bridge`: a refusal is reported to the core.
    Bridge(LegId, LegId),
    /// The orphan sweep's kill: `+OK` means the leg was still up (an orphan).
    Sweep(LegId),
    /// A recorder leg's originate: a failure gives the live capture up for the switch's.
    Recorder(crate::recording::RecordingId),
    /// `uuid_record ... start`: a refusal ends the recording with an error.
    SwitchRecord(crate::recording::RecordingId),
    /// A recording's announcement: refused, the recording starts at once.
    Announcement(crate::recording::RecordingId),
    Other,
}

/// Settings the translation needs.
#[derive(Clone, Debug)]
pub(crate) struct Syntax {
    pub prompts: PromptTemplates,
    pub transfer_dialplan: String,
    pub transfer_context: String,
    pub monitor_ring_timeout: Duration,
}

/// Translates one command. `target_is_caller` tells an eavesdrop which side its target is.
pub(crate) fn plan(
    cmd: &SwitchCommand,
    syntax: &Syntax,
    target_is_caller: bool,
) -> Result<(Vec<EslRequest>, Tracking), DriverError> {
    use EslRequest::{Api, BgApi};
    Ok(match cmd {
        // Issued by the core's module `capture`, never planned here.
        SwitchCommand::Recording(_) => (Vec::new(), Tracking::Other),
        // Issued by the core's modules `voicemail` and `ivr`, never planned here.
        SwitchCommand::Voicemail { .. } | SwitchCommand::ResumeFlow { .. } => {
            (Vec::new(), Tracking::Other)
        }
        // `uuid_transfer` sets CF_TRANSFER before the state change, so the bridge ends without
        // its hangup_after_bridge, and the inline `park` holds the caller for its music.
        SwitchCommand::Park { leg } => (
            vec![Api(format!("uuid_transfer {leg} park inline"))],
            Tracking::Other,
        ),
        SwitchCommand::Answer { leg } => (vec![Api(format!("uuid_answer {leg}"))], Tracking::Other),
        SwitchCommand::Music { leg, source } => {
            (vec![Api(broadcast(*leg, &music(source)?))], Tracking::Other)
        }
        SwitchCommand::Announce {
            leg,
            prompts,
            then_music,
        } => {
            let mut files = Vec::new();
            for p in prompts {
                render(p, &syntax.prompts, &mut files);
            }
            let mut reqs = vec![Api(format!("uuid_break {leg} all"))];
            if let Some(path) = file_string(&files)? {
                reqs.push(Api(broadcast(*leg, &path)));
            }
            reqs.push(Api(broadcast(*leg, &music(then_music)?)));
            (reqs, Tracking::Other)
        }
        SwitchCommand::Originate {
            kind,
            leg,
            dial,
            caller_id_number,
            caller_id_name,
            timeout,
            vars,
            join,
        } => {
            let kind = match kind {
                LegKind::Agent => "agent",
                LegKind::Customer => "customer",
                LegKind::Campaign => "campaign",
            };
            let mut all = vec![
                ("origination_uuid".to_owned(), leg.to_string()),
                ("originate_timeout".to_owned(), whole_seconds(*timeout)),
                (LEG_VARIABLE.to_owned(), kind.to_owned()),
            ];
            if !caller_id_number.is_empty() {
                all.push((
                    "origination_caller_id_number".into(),
                    caller_id_number.clone(),
                ));
            }
            if !caller_id_name.is_empty() {
                all.push(("origination_caller_id_name".into(), caller_id_name.clone()));
            }
            all.extend(vars.iter().cloned());
            let app = match join {
                Some(caller) => format!("'&eval(${{uuid_bridge {caller} {leg}}})'"),
                None => "&park()".to_owned(),
            };
            let line = originate(&all, dial, &app)?;
            (vec![BgApi(line)], Tracking::Originate(*leg))
        }
        // Just before the bridge (esl-captures/socket-resume.md): socket_resume=false so
        // that our socket closing never tears the bridge down, hangup_after_bridge=true so a
        // caller whose agent leaves is hung up by the bridge itself rather than falling into
        // the dialplan's `park` after `socket`. Set then, not at arrival: a waiting caller
        // keeps socket_resume, so it re-enters the socket loop if switchyard dies.
        SwitchCommand::Bridge { a, b } => (
            vec![
                Api(after_bridge_vars(*a)),
                Api(format!("uuid_bridge {a} {b}")),
            ],
            Tracking::Bridge(*a, *b),
        ),
        SwitchCommand::Hangup { leg, cause } => {
            let cause = word("hangup cause", cause)?;
            (
                vec![Api(format!("uuid_kill {leg} {cause}"))],
                Tracking::Kill(*leg),
            )
        }
        SwitchCommand::Transfer { leg, destination } => {
            let dest = word("transfer destination", destination)?;
            let dialplan = word("transfer dialplan", &syntax.transfer_dialplan)?;
            let context = word("transfer context", &syntax.transfer_context)?;
            (
                vec![Api(format!(
                    "uuid_transfer {leg} {dest} {dialplan} {context}"
                ))],
                Tracking::Other,
            )
        }
        SwitchCommand::PlayThenHangup { leg, path } => {
            let path = word("recording path", path)?;
            if path.contains([',', '\'']) {
                return Err(unsafe_arg("recording path", path));
            }
            // An inline dialplan replaces whatever the leg was doing (park, music) with the
            // two applications, so the message is heard from its start.
            (
                vec![Api(format!(
                    "uuid_transfer {leg} playback:{path},hangup:NORMAL_CLEARING inline"
                ))],
                Tracking::Other,
            )
        }
        SwitchCommand::Eavesdrop {
            leg,
            dial,
            target,
            mode,
        } => {
            let mut all = vec![
                ("origination_uuid".to_owned(), leg.to_string()),
                (
                    "originate_timeout".to_owned(),
                    whole_seconds(syntax.monitor_ring_timeout),
                ),
                (LEG_VARIABLE.to_owned(), "supervisor".to_owned()),
                ("eavesdrop_enable_dtmf".to_owned(), "false".to_owned()),
            ];
            let t = "true".to_owned();
            match mode {
                MonitorMode::Listen => {}
                MonitorMode::Whisper if target_is_caller => {
                    all.push(("eavesdrop_whisper_aleg".into(), t));
                }
                MonitorMode::Whisper => all.push(("eavesdrop_whisper_bleg".into(), t)),
                MonitorMode::Barge => {
                    all.push(("eavesdrop_whisper_aleg".into(), t.clone()));
                    all.push(("eavesdrop_whisper_bleg".into(), t));
                }
            }
            let line = originate(&all, dial, &format!("&eavesdrop({target})"))?;
            (vec![BgApi(line)], Tracking::Originate(*leg))
        }
    })
}

/// What a caller `a` must carry once it is bridged (see `Bridge` in [`plan`]).
pub(crate) fn after_bridge_vars(a: LegId) -> String {
    format!("uuid_setvar_multi {a} hangup_after_bridge=true;socket_resume=false")
}

/// `originate {vars}<dial> <app>`. A dial string that brings its own `{...}` gets ours merged
/// into it (FreeSWITCH reads one leading `{}` block).
fn originate(vars: &[(String, String)], dial: &str, app: &str) -> Result<String, DriverError> {
    let dial = dial.trim();
    if dial.is_empty()
        || dial
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(unsafe_arg("dial string", dial));
    }
    let mut line = String::with_capacity(160 + dial.len());
    line.push_str("originate {");
    let mut first = true;
    for (k, v) in vars {
        let key = word("channel variable name", k)?;
        if key.contains(['=', ',', '{', '}', '[', ']', '\'']) {
            return Err(unsafe_arg("channel variable name", key));
        }
        if !first {
            line.push(',');
        }
        first = false;
        line.push_str(key);
        line.push('=');
        push_value(&mut line, v);
    }
    match dial.strip_prefix('{') {
        Some(rest) => {
            if !rest.starts_with('}') && !first {
                line.push(',');
            }
            line.push_str(rest);
        }
        None => {
            line.push('}');
            line.push_str(dial);
        }
    }
    line.push(' ');
    line.push_str(app);
    Ok(line)
}

/// A channel-variable value inside `{...}`: characters that would end the block or the
/// command are dropped, commas (FreeSWITCH's separator) become spaces, and a value with
/// spaces is single-quoted, which FreeSWITCH's dial-string parser strips.
fn push_value(line: &mut String, value: &str) {
    let clean: String = value
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '\'' | '{' | '}' | '[' | ']' | '<' | '>'))
        .map(|c| if c == ',' { ' ' } else { c })
        .collect();
    let clean = clean.trim();
    if clean.contains(' ') {
        line.push('\'');
        line.push_str(clean);
        line.push('\'');
    } else {
        line.push_str(clean);
    }
}

// ---- recording (the core's module `capture`) ----------------------------------------------

/// A recorder leg: FreeSWITCH dials `user` through `dial` (`{user}` replaced) and, once it
/// answers, `eavesdrop`s the customer's leg. `eavesdrop_bridge_aleg` carries only what the
/// eavesdropped leg reads (the caller's voice), `_bleg` only what it is sent (the agent,
/// prompts, music) (`switch_ivr_async.c`, ED_BRIDGE_READ / ED_BRIDGE_WRITE; esl-captures
/// `eavesdrop-recorder-leg`: clean, unmixed directions). PCMU is all the endpoint needs and
/// spares FreeSWITCH a choice; DTMF never reaches the eavesdropped call.
pub(crate) fn recorder_originate(
    recorder: LegId,
    recording: crate::recording::RecordingId,
    target: LegId,
    caller_side: bool,
    dial: &str,
    user: &str,
    timeout: Duration,
) -> Result<String, DriverError> {
    let user = word("recorder user", user)?;
    let dial = dial.replace("{user}", user);
    let side = if caller_side {
        "eavesdrop_bridge_aleg"
    } else {
        "eavesdrop_bridge_bleg"
    };
    let vars = [
        ("origination_uuid".to_owned(), recorder.to_string()),
        ("originate_timeout".to_owned(), whole_seconds(timeout)),
        (
            LEG_VARIABLE.to_owned(),
            super::media::RECORDER_LEG.to_owned(),
        ),
        ("switchyard_recording".to_owned(), recording.to_string()),
        (side.to_owned(), "true".to_owned()),
        ("absolute_codec_string".to_owned(), "PCMU".to_owned()),
        ("eavesdrop_enable_dtmf".to_owned(), "false".to_owned()),
    ];
    originate(&vars, &dial, &format!("&eavesdrop({target})"))
}

/// The path `uuid_record` is given for a recording (`{file}` in the template replaced).
pub(crate) fn switch_record_path(template: &str, file: &str) -> Result<String, DriverError> {
    let path = template.replace("{file}", file);
    let path = word("recording path", &path)?;
    Ok(path.to_owned())
}

/// `uuid_record` on the customer's leg. `RECORD_STEREO` puts what the leg reads (the caller)
/// left and what it is sent (the agent) right (esl-captures `uuid-record*`).
pub(crate) fn switch_record_start(leg: LegId, stereo: bool, path: &str) -> Vec<EslRequest> {
    vec![
        EslRequest::Api(format!("uuid_setvar {leg} RECORD_STEREO {stereo}")),
        EslRequest::Api(format!("uuid_record {leg} start {path}")),
    ]
}

/// `uuid_record <leg> mask|unmask|stop <path>`. A pause is sent as `mask`: FreeSWITCH's own
/// `pause` leaves the paused stretch out of the file (esl-captures `uuid-record*`: 6.0 s of
/// file for 7.5 s of call), and a recording's timeline must stay the call's.
pub(crate) fn switch_record_verb(leg: LegId, verb: &str, path: &str) -> EslRequest {
    EslRequest::Api(format!("uuid_record {leg} {verb} {path}"))
}

/// `uuid_broadcast <leg> oreka_record:: aleg` (or `oreka_record::stop`): mod_oreka forks the
/// leg's two directions to the recorder named in its `oreka.conf`, or stops. The application
/// runs on the leg's own thread between two frames of its bridge; it only adds (or removes) a
/// media bug, so the bridge carries on.
pub(crate) fn oreka_record(leg: LegId, stop: bool) -> String {
    let arg = if stop { "stop" } else { "" };
    format!("uuid_broadcast {leg} oreka_record::{arg} aleg")
}

/// `uuid_broadcast <leg> <path> both`: the recording announcement, heard by both parties.
pub(crate) fn announce_both(leg: LegId, path: &str) -> Result<EslRequest, DriverError> {
    let path = word("recording announcement", path)?;
    Ok(EslRequest::Api(format!("uuid_broadcast {leg} {path} both")))
}

/// `uuid_broadcast <leg> <path> aleg`: plays to the leg itself, not its bridge peer.
pub(crate) fn broadcast(leg: LegId, path: &str) -> String {
    format!("uuid_broadcast {leg} {path} aleg")
}

/// Music on hold must loop: streams (`local_stream://`, `tone_stream://...;loops=-1`) and
/// explicit `app::args` are taken as given; a plain file is looped with `endless_playback`.
pub(crate) fn music(source: &str) -> Result<String, DriverError> {
    let source = word("music source", source)?;
    let looped = source.contains("::")
        || source.starts_with("local_stream://")
        || source.starts_with("tone_stream://")
        || source.starts_with("silence_stream://");
    Ok(if looped {
        source.to_owned()
    } else {
        format!("endless_playback::{source}")
    })
}

/// Several files as one playback (`file_string://a!b`), one file as itself, none as nothing.
pub(crate) fn file_string(files: &[String]) -> Result<Option<String>, DriverError> {
    for f in files {
        word("prompt file", f)?;
        if f.contains('!') {
            return Err(unsafe_arg("prompt file", f));
        }
    }
    Ok(match files {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(format!("file_string://{}", many.join("!"))),
    })
}

/// Appends the files that say `prompt`.
pub(crate) fn render(prompt: &Prompt, t: &PromptTemplates, out: &mut Vec<String>) {
    match prompt {
        Prompt::Position { position } => {
            out.extend(t.position_before.iter().cloned());
            number_files(*position, &t.number, out);
            out.extend(t.position_after.iter().cloned());
        }
        Prompt::ExpectedWait { minutes, .. } => {
            if *minutes == 0 {
                out.extend(t.wait_under_a_minute.iter().cloned());
            } else {
                out.extend(t.wait_before.iter().cloned());
                number_files(*minutes, &t.number, out);
                out.extend(t.wait_after.iter().cloned());
            }
        }
        Prompt::File { path } => out.push(path.clone()),
    }
}

/// Every file the templates can say (the number words 0-19, the tens, hundred, thousand), for
/// the sound check at connect.
pub(crate) fn template_files(t: &PromptTemplates) -> Vec<String> {
    let mut out = Vec::new();
    for list in [
        &t.position_before,
        &t.position_after,
        &t.wait_before,
        &t.wait_after,
        &t.wait_under_a_minute,
    ] {
        out.extend(list.iter().cloned());
    }
    let words = (0..20)
        .map(|n: u32| n.to_string())
        .chain((2..10).map(|n: u32| (n * 10).to_string()))
        .chain(["hundred".to_owned(), "thousand".to_owned()]);
    out.extend(words.map(|w| t.number.replace("{n}", &w)));
    out.sort();
    out.dedup();
    out
}

/// English number words as the standard sound set names them (`digits/1.wav` ...
/// `digits/19.wav`, `digits/20.wav` ... `digits/90.wav`, `digits/hundred.wav`,
/// `digits/thousand.wav`). Numbers of a million and up are said as "999999": nobody waits
/// behind a million callers.
pub(crate) fn number_files(n: u32, template: &str, out: &mut Vec<String>) {
    let mut push = |w: &str| out.push(template.replace("{n}", w));
    let n = n.min(999_999);
    if n == 0 {
        push("0");
        return;
    }
    let below_thousand = |n: u32, push: &mut dyn FnMut(&str)| {
        if n >= 100 {
            push(&(n / 100).to_string());
            push("hundred");
        }
        let rest = n % 100;
        if rest >= 20 {
            push(&(rest / 10 * 10).to_string());
            if !rest.is_multiple_of(10) {
                push(&(rest % 10).to_string());
            }
        } else if rest > 0 {
            push(&rest.to_string());
        }
    };
    if n >= 1000 {
        below_thousand(n / 1000, &mut push);
        push("thousand");
    }
    below_thousand(n % 1000, &mut push);
}

/// FreeSWITCH's timeouts are whole seconds; round up so a leg never rings shorter than asked.
fn whole_seconds(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1).to_string()
}

/// A single command word: no whitespace or control characters (the api line is split on
/// spaces, and a newline would end the command).
fn word<'a>(field: &'static str, s: &'a str) -> Result<&'a str, DriverError> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(unsafe_arg(field, s));
    }
    Ok(s)
}

fn unsafe_arg(field: &'static str, value: &str) -> DriverError {
    DriverError::UnsafeArgument {
        field,
        value: value.chars().take(80).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syntax() -> Syntax {
        Syntax {
            prompts: PromptTemplates::default(),
            transfer_dialplan: "XML".into(),
            transfer_context: "default".into(),
            monitor_ring_timeout: Duration::from_secs(30),
        }
    }

    const A: &str = "0b4e4b9c-8a5e-4c8f-9d3c-2a4f5e6d7c8b";
    const B: &str = "11112222-3333-4444-5555-666677778888";

    fn leg(s: &str) -> LegId {
        LegId::parse(s).unwrap()
    }

    fn lines(cmd: SwitchCommand) -> Vec<EslRequest> {
        plan(&cmd, &syntax(), false).unwrap().0
    }

    #[test]
    fn play_then_hangup_transfers_to_an_inline_playback() {
        let reqs = lines(SwitchCommand::PlayThenHangup {
            leg: leg(A),
            path: "/sounds/sorry.wav".into(),
        });
        assert_eq!(
            reqs,
            [EslRequest::Api(format!(
                "uuid_transfer {A} playback:/sounds/sorry.wav,hangup:NORMAL_CLEARING inline"
            ))]
        );
        let bad = plan(
            &SwitchCommand::PlayThenHangup {
                leg: leg(A),
                path: "a,b".into(),
            },
            &syntax(),
            false,
        );
        assert!(bad.is_err());
    }

    #[test]
    fn originate_parks_with_our_uuid_timeout_and_quoted_caller_name() {
        let reqs = lines(SwitchCommand::Originate {
            kind: crate::io::LegKind::Agent,
            leg: leg(A),
            dial: "user/1000".into(),
            caller_id_number: "+15551230000".into(),
            caller_id_name: "Doe, John".into(),
            timeout: Duration::from_millis(2500),
            vars: vec![("switchyard_call".into(), "7".into())],
            join: None,
        });
        assert_eq!(
            reqs,
            [EslRequest::BgApi(format!(
                "originate {{origination_uuid={A},originate_timeout=3,switchyard_leg=agent,\
                 origination_caller_id_number=+15551230000,\
                 origination_caller_id_name='Doe  John',switchyard_call=7}}user/1000 &park()"
            ))]
        );
    }

    #[test]
    fn a_dial_string_with_its_own_variables_gets_ours_merged() {
        let reqs = lines(SwitchCommand::Originate {
            kind: crate::io::LegKind::Agent,
            leg: leg(A),
            dial: "{sip_auto_answer=true}user/1001".into(),
            caller_id_number: String::new(),
            caller_id_name: String::new(),
            timeout: Duration::from_secs(20),
            vars: vec![],
            join: None,
        });
        assert_eq!(
            reqs,
            [EslRequest::BgApi(format!(
                "originate {{origination_uuid={A},originate_timeout=20,switchyard_leg=agent,sip_auto_answer=true}}user/1001 &park()"
            ))]
        );
    }

    #[test]
    fn an_originate_that_joins_its_caller_runs_uuid_bridge_on_its_own_thread() {
        let reqs = lines(SwitchCommand::Originate {
            kind: crate::io::LegKind::Agent,
            leg: leg(A),
            dial: "user/1001".into(),
            caller_id_number: String::new(),
            caller_id_name: String::new(),
            timeout: Duration::from_secs(20),
            vars: vec![],
            join: Some(leg(B)),
        });
        // One quoted argument with no `)` before its end: originate keeps it whole.
        assert_eq!(
            reqs,
            [EslRequest::BgApi(format!(
                "originate {{origination_uuid={A},originate_timeout=20,switchyard_leg=agent}}user/1001 \
                 '&eval(${{uuid_bridge {B} {A}}})'"
            ))]
        );
    }

    #[test]
    fn a_dial_string_with_spaces_or_newlines_is_refused() {
        for dial in ["user/1000 &hangup()", "user/1000\napi hupall", ""] {
            let cmd = SwitchCommand::Originate {
                kind: crate::io::LegKind::Agent,
                leg: leg(A),
                dial: dial.into(),
                caller_id_number: String::new(),
                caller_id_name: String::new(),
                timeout: Duration::from_secs(20),
                vars: vec![],
                join: None,
            };
            assert!(matches!(
                plan(&cmd, &syntax(), false),
                Err(DriverError::UnsafeArgument { .. })
            ));
        }
    }

    #[test]
    fn announce_breaks_plays_the_prompts_as_one_file_string_then_resumes_music() {
        let reqs = lines(SwitchCommand::Announce {
            leg: leg(A),
            prompts: vec![
                Prompt::Position { position: 23 },
                Prompt::ExpectedWait {
                    minutes: 0,
                    p50_s: 20,
                    p90_s: 50,
                },
            ],
            then_music: "local_stream://moh".into(),
        });
        assert_eq!(
            reqs,
            [
                EslRequest::Api(format!("uuid_break {A} all")),
                EslRequest::Api(format!(
                    "uuid_broadcast {A} file_string://ivr/ivr-you_are_number.wav!digits/20.wav!\
                     digits/3.wav!ivr/ivr-less_than_one_minute.wav aleg"
                )),
                EslRequest::Api(format!("uuid_broadcast {A} local_stream://moh aleg")),
            ]
        );
    }

    #[test]
    fn music_from_a_file_loops() {
        assert_eq!(
            lines(SwitchCommand::Music {
                leg: leg(A),
                source: "/sounds/hold.wav".into()
            }),
            [EslRequest::Api(format!(
                "uuid_broadcast {A} endless_playback::/sounds/hold.wav aleg"
            ))]
        );
    }

    #[test]
    fn bridge_kill_transfer_and_answer_use_the_uuid_commands() {
        assert_eq!(
            lines(SwitchCommand::Bridge {
                a: leg(A),
                b: leg(B)
            }),
            [
                EslRequest::Api(format!(
                    "uuid_setvar_multi {A} hangup_after_bridge=true;socket_resume=false"
                )),
                EslRequest::Api(format!("uuid_bridge {A} {B}"))
            ]
        );
        let (reqs, tracking) = plan(
            &SwitchCommand::Hangup {
                leg: leg(B),
                cause: "LOSE_RACE",
            },
            &syntax(),
            false,
        )
        .unwrap();
        assert_eq!(reqs, [EslRequest::Api(format!("uuid_kill {B} LOSE_RACE"))]);
        assert_eq!(tracking, Tracking::Kill(leg(B)));
        assert_eq!(
            lines(SwitchCommand::Transfer {
                leg: leg(A),
                destination: "*98".into()
            }),
            [EslRequest::Api(format!(
                "uuid_transfer {A} *98 XML default"
            ))]
        );
        assert_eq!(
            lines(SwitchCommand::Answer { leg: leg(A) }),
            [EslRequest::Api(format!("uuid_answer {A}"))]
        );
    }

    #[test]
    fn eavesdrop_modes_pick_the_mux_flags_by_which_side_the_target_is() {
        let cmd = |mode| SwitchCommand::Eavesdrop {
            leg: leg(B),
            dial: "user/1050".into(),
            target: leg(A),
            mode,
        };
        let line = |mode, caller| match plan(&cmd(mode), &syntax(), caller).unwrap().0.remove(0) {
            EslRequest::BgApi(l) => l,
            other => panic!("{other:?}"),
        };
        let head = format!(
            "originate {{origination_uuid={B},originate_timeout=30,switchyard_leg=supervisor,eavesdrop_enable_dtmf=false"
        );
        let tail = format!("}}user/1050 &eavesdrop({A})");
        assert_eq!(line(MonitorMode::Listen, false), format!("{head}{tail}"));
        assert_eq!(
            line(MonitorMode::Whisper, false),
            format!("{head},eavesdrop_whisper_bleg=true{tail}")
        );
        assert_eq!(
            line(MonitorMode::Whisper, true),
            format!("{head},eavesdrop_whisper_aleg=true{tail}")
        );
        assert_eq!(
            line(MonitorMode::Barge, false),
            format!("{head},eavesdrop_whisper_aleg=true,eavesdrop_whisper_bleg=true{tail}")
        );
    }

    #[test]
    fn the_sound_check_covers_every_file_a_prompt_can_say() {
        let t = PromptTemplates::default();
        let all = template_files(&t);
        for n in [0, 7, 19, 40, 99, 305, 12_020, u32::MAX] {
            let mut said = Vec::new();
            render(&Prompt::Position { position: n }, &t, &mut said);
            render(
                &Prompt::ExpectedWait {
                    minutes: n,
                    p50_s: 0,
                    p90_s: 0,
                },
                &t,
                &mut said,
            );
            for f in said {
                assert!(all.contains(&f), "{f} is not checked");
            }
        }
        assert!(all.contains(&"ivr/ivr-less_than_one_minute.wav".to_owned()));
    }

    #[test]
    fn numbers_are_said_word_by_word() {
        let say = |n| {
            let mut v = Vec::new();
            number_files(n, "{n}", &mut v);
            v.join(" ")
        };
        assert_eq!(say(0), "0");
        assert_eq!(say(7), "7");
        assert_eq!(say(19), "19");
        assert_eq!(say(40), "40");
        assert_eq!(say(99), "90 9");
        assert_eq!(say(305), "3 hundred 5");
        assert_eq!(say(12_020), "12 thousand 20");
        assert_eq!(say(u32::MAX), "9 hundred 90 9 thousand 9 hundred 90 9");
    }
}
