//! `switchyard freeswitch config`: what an engineer pastes into a vanilla FreeSWITCH 1.10 so
//! that it works with this switchyard, from the same settings `serve` reads (its `--config`
//! file, environment and flags, with its defaults).
//!
//! What the output rests on (FreeSWITCH's sources and `../shared/esl-captures`):
//! - `socket <host>:<port>[|<host>:<port>...] async full` (`mod_event_socket.c`,
//!   `socket_function`): each host is tried in turn; when none connects it logs "Socket Error"
//!   and returns, and the dialplan goes on with the next action. So the action after `socket`
//!   is where a caller goes when switchyard is unreachable: no `continue_on_fail` is needed.
//! - `socket_resume=true` sends the caller on into the dialplan when switchyard dies while it
//!   holds the caller (`esl-captures/socket-resume.md`), so the same hold loop covers a
//!   restart; switchyard turns it off just before it bridges a caller.
//! - `transfer <number> XML <context>` keeps the dialled number, which switchyard routes by
//!   (`Caller-Destination-Number`), across the loop's passes.
//! - `event_socket.conf` reads `listen-ip`, `listen-port`, `password` and any number of
//!   `apply-inbound-acl` (`mod_event_socket.c`, `config`); vanilla listens on `::` with
//!   ClueCon and no ACL.
//!
//! Output is deterministic: the same settings print the same bytes.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{bail, ensure};
use clap::{Args, Subcommand, ValueEnum};
use serde::Deserialize;
use switchyard_api::runtime::SwitchNode;

#[derive(Debug, Subcommand)]
pub enum FreeSwitchCommand {
    /// Print the dialplan, event_socket.conf.xml, recorder notes and the channel variables
    /// switchyard reads and sets, for the settings `serve` would run with.
    Config(ConfigArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Which part to print.
    #[arg(long, value_enum, default_value = "all")]
    section: Section,
    /// The `serve` config file (its `[freeswitch]` table sets the dialplan's numbers, context,
    /// hold loop and fallback).
    #[arg(long)]
    config: Option<PathBuf>,
    /// As `serve --esl`.
    #[arg(long, env = "SWITCHYARD_ESL")]
    esl: Option<String>,
    /// As `serve --esl-password-file` (the password goes into event_socket.conf.xml).
    #[arg(long)]
    esl_password_file: Option<PathBuf>,
    /// As `serve --switch`.
    #[arg(long = "switch", env = "SWITCHYARD_SWITCHES", value_delimiter = ',')]
    switches: Vec<String>,
    /// As `serve --outbound-listen`: where the `socket` application connects.
    #[arg(long, env = "SWITCHYARD_OUTBOUND_LISTEN")]
    outbound_listen: Option<String>,
}

impl ConfigArgs {
    pub(super) fn config(&self) -> Option<&std::path::Path> {
        self.config.as_deref()
    }
    pub(super) fn esl(&self) -> Option<String> {
        self.esl.clone()
    }
    pub(super) fn esl_password_file(&self) -> Option<&std::path::Path> {
        self.esl_password_file.as_deref()
    }
    pub(super) fn switches(&self) -> Vec<String> {
        self.switches.clone()
    }
    pub(super) fn outbound_listen(&self) -> Option<String> {
        self.outbound_listen.clone()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Section {
    Dialplan,
    EventSocket,
    Recording,
    Variables,
    All,
}

/// The `[freeswitch]` table of the `serve` config file (`serve` itself does not use it).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileFreeSwitch {
    /// `destination_number` pattern of the calls sent to switchyard. Vanilla's default
    /// context already uses 5000 (the IVR demo) and takes it before files under
    /// `dialplan/default/` are read: the default is a number vanilla leaves free.
    pub numbers: String,
    /// The context the extensions go in (and the loop transfers within).
    pub context: String,
    /// Passes of the hold loop (each about 3 s of tone) before the fallback.
    pub hold_max: u32,
    /// What `socket` connects to, when not `outbound_listen` as given (a wildcard bind such
    /// as 0.0.0.0 is no address to dial): `host:port`, or several switchyard instances
    /// tried in turn, `10.0.0.5:8084|10.0.0.6:8084`.
    pub socket: String,
    pub fallback: FileFallback,
}

impl Default for FileFreeSwitch {
    fn default() -> Self {
        FileFreeSwitch {
            numbers: "^(7000)$".into(),
            context: "default".into(),
            hold_max: 20,
            socket: String::new(),
            fallback: FileFallback::default(),
        }
    }
}

/// Where callers go when switchyard stays unreachable for the whole hold loop: `playback`
/// (if any) first, then `transfer` (if any), else a hangup with `hangup`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileFallback {
    pub playback: String,
    /// `<destination> XML <context>`, e.g. vanilla's operator extension; "" for none.
    pub transfer: String,
    pub hangup: String,
}

impl Default for FileFallback {
    fn default() -> Self {
        FileFallback {
            playback: String::new(),
            // Vanilla default.xml: `^(operator|0)$` rings extension 1000 (a person, not a
            // dropped call).
            transfer: "operator XML default".into(),
            hangup: "NORMAL_TEMPORARY_FAILURE".into(),
        }
    }
}

/// The recorder endpoint as `[recording]` sets it.
#[derive(Clone, Debug)]
pub(super) struct Recorder {
    pub sip: SocketAddr,
    pub dial: String,
    pub oreka: bool,
}

/// Everything the output is made of, resolved as `serve` resolves it.
#[derive(Clone, Debug)]
pub(super) struct Setup {
    pub outbound_listen: String,
    pub nodes: Vec<SwitchNode>,
    pub recorder: Option<Recorder>,
    pub freeswitch: FileFreeSwitch,
}

pub fn run(cmd: FreeSwitchCommand) -> anyhow::Result<()> {
    match cmd {
        FreeSwitchCommand::Config(args) => {
            let setup = super::serve::freeswitch_setup(&args)?;
            print!("{}", render(&setup, args.section)?);
            Ok(())
        }
    }
}

/// One file (or note) of the output.
struct Part {
    title: String,
    body: String,
}

/// The text printed for `section`. With several parts each starts with a `==> title <==`
/// line (as `head` does for several files); a single part is printed bare, ready to redirect
/// into its file.
pub(super) fn render(s: &Setup, section: Section) -> anyhow::Result<String> {
    check(s)?;
    let mut parts = Vec::new();
    let all = section == Section::All;
    if all || section == Section::Dialplan {
        parts.push(Part {
            title: format!(
                "dialplan/{}/00_switchyard.xml (every node)",
                s.freeswitch.context
            ),
            body: dialplan(s),
        });
    }
    if all || section == Section::EventSocket {
        parts.extend(event_socket(s));
    }
    if all || section == Section::Recording {
        parts.extend(recording(s));
    }
    if all || section == Section::Variables {
        parts.push(Part {
            title: "channel variables switchyard reads and sets".into(),
            body: variables(),
        });
    }
    let mut out = String::new();
    if let [only] = &parts[..] {
        out.push_str(&only.body);
        return Ok(out);
    }
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "==> {} <==", p.title);
        out.push_str(&p.body);
    }
    Ok(out)
}

/// Refuses what FreeSWITCH would misread rather than print it.
fn check(s: &Setup) -> anyhow::Result<()> {
    let f = &s.freeswitch;
    ensure!(
        !f.numbers.trim().is_empty(),
        "[freeswitch] numbers: a destination_number pattern is needed"
    );
    ensure!(f.hold_max >= 1, "[freeswitch] hold_max must be at least 1");
    ensure!(
        is_word(&f.context),
        "[freeswitch] context: letters, digits, '_' and '-' only, not {:?}",
        f.context
    );
    let cause = &f.fallback.hangup;
    ensure!(
        !cause.is_empty() && cause.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
        "[freeswitch.fallback] hangup: a hangup cause such as NORMAL_TEMPORARY_FAILURE, not {cause:?}"
    );
    // `socket`'s data is split at blanks and its host list at `|` (mod_event_socket.c): an
    // address with a blank would be cut, and each host needs an address FreeSWITCH can dial.
    let target = socket_target(s);
    let from = if f.socket.trim().is_empty() {
        "outbound_listen"
    } else {
        "[freeswitch] socket"
    };
    for host in target.split('|') {
        if host.is_empty() || host.chars().any(char::is_whitespace) {
            bail!("{from}: host:port (several joined by |), not {target:?}");
        }
        let (h, _) = split_host_port(host);
        if h.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified()) {
            bail!(
                "{from}: {host} is a wildcard, not an address FreeSWITCH can connect to; \
                 give [freeswitch] socket = \"<switchyard's address>:<port>\""
            );
        }
    }
    Ok(())
}

/// What the `socket` application is given: `[freeswitch] socket`, else `outbound_listen`.
fn socket_target(s: &Setup) -> String {
    let t = s.freeswitch.socket.trim();
    if t.is_empty() {
        s.outbound_listen.clone()
    } else {
        t.to_owned()
    }
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// An XML attribute value or text, escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Text inside an XML comment: `--` may not appear there.
fn comment(s: &str) -> String {
    s.replace("--", "- -")
}

/// The hold tone between passes: 3 s, as in the capture that proved the loop.
const HOLD_TONE: &str = "tone_stream://%(500,500,440);loops=3";

fn dialplan(s: &Setup) -> String {
    let f = &s.freeswitch;
    let numbers = esc(&f.numbers);
    let ctx = &f.context;
    let target_raw = socket_target(s);
    let target = esc(&target_raw);
    let mut x = String::new();
    let _ = writeln!(
        x,
        "<!-- switchyard: `switchyard freeswitch config`. Callers to {numbers_c} are sent to \
         switchyard's outbound socket {target_c}. When it is unreachable `socket` returns at once \
         (mod_event_socket.c) and the dialplan goes on: the caller hears the hold tone and tries \
         again, at most {max} times (about {secs} s), then the fallback. Put this file where \
         context \"{ctx}\" includes it (vanilla: dialplan/{ctx}/). -->",
        numbers_c = comment(&f.numbers),
        target_c = comment(&target_raw),
        max = f.hold_max,
        secs = u64::from(f.hold_max) * 3,
    );
    x.push_str("<include>\n");
    let _ = write!(
        x,
        "  <!-- First pass: mark the caller and enter the loop. `socket_resume=true` also sends \
         a caller switchyard holds back here when switchyard dies. -->\n\
         \x20 <extension name=\"switchyard-entry\">\n\
         \x20   <condition field=\"destination_number\" expression=\"{numbers}\"/>\n\
         \x20   <condition field=\"${{resume_max}}\" expression=\"^$\">\n\
         \x20     <action application=\"set\" data=\"socket_resume=true\"/>\n\
         \x20     <action application=\"set\" data=\"resume_tries=0\"/>\n\
         \x20     <action application=\"set\" data=\"resume_max={max}\"/>\n\
         \x20     <action application=\"answer\"/>\n\
         \x20     <action application=\"transfer\" data=\"${{destination_number}} XML {ctx}\"/>\n\
         \x20   </condition>\n\
         \x20 </extension>\n",
        max = f.hold_max,
    );
    let _ = write!(
        x,
        "  <!-- switchyard stayed unreachable: the fallback. -->\n\
         \x20 <extension name=\"switchyard-fallback\">\n\
         \x20   <condition field=\"destination_number\" expression=\"{numbers}\"/>\n\
         \x20   <condition field=\"${{cond(${{resume_tries}} &gt;= ${{resume_max}} ? yes : no)}}\" expression=\"^yes$\">\n\
         \x20     <action application=\"set\" data=\"socket_resume=false\"/>\n"
    );
    let fb = &f.fallback;
    if !fb.playback.trim().is_empty() {
        let _ = writeln!(
            x,
            "      <action application=\"playback\" data=\"{}\"/>",
            esc(fb.playback.trim())
        );
    }
    if fb.transfer.trim().is_empty() {
        let _ = writeln!(
            x,
            "      <action application=\"hangup\" data=\"{}\"/>",
            esc(&fb.hangup)
        );
    } else {
        let _ = writeln!(
            x,
            "      <action application=\"transfer\" data=\"{}\"/>",
            esc(fb.transfer.trim())
        );
    }
    x.push_str("    </condition>\n  </extension>\n");
    let _ = write!(
        x,
        "  <!-- Each pass: `socket` to switchyard; the playback after it is where the caller goes \
         when switchyard is unreachable or lets go of it (and keeps a bridge from hanging up a \
         caller whose `socket` returned first). -->\n\
         \x20 <extension name=\"switchyard\">\n\
         \x20   <condition field=\"destination_number\" expression=\"{numbers}\">\n\
         \x20     <action application=\"set\" data=\"resume_tries=${{expr(${{resume_tries}}+1)}}\"/>\n\
         \x20     <action application=\"socket\" data=\"{target} async full\"/>\n\
         \x20     <action application=\"playback\" data=\"{tone}\"/>\n\
         \x20     <action application=\"transfer\" data=\"${{destination_number}} XML {ctx}\"/>\n\
         \x20   </condition>\n\
         \x20 </extension>\n",
        tone = esc(HOLD_TONE),
    );
    x.push_str("</include>\n");
    x
}

/// The host part of `host:port` (`[v6]:port` too) and the port.
fn split_host_port(addr: &str) -> (String, String) {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return (sa.ip().to_string(), sa.port().to_string());
    }
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.trim_matches(['[', ']']).to_owned(), p.to_owned()),
        None => (addr.to_owned(), "8021".to_owned()),
    }
}

/// Whether `ip` is an address only a private network reaches.
fn private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
        }
    }
}

fn event_socket(s: &Setup) -> Vec<Part> {
    // switchyard connects from the host its outbound socket listens on: the hosts `socket`
    // dials are switchyard's addresses. All on loopback: FreeSWITCH's own loopback.auto.
    let target = socket_target(s);
    let ips: Vec<IpAddr> = target
        .split('|')
        .filter_map(|h| split_host_port(h).0.parse::<IpAddr>().ok())
        .collect();
    let named = ips.len() == target.split('|').count();
    let (acl, acl_part) = if named && ips.iter().all(IpAddr::is_loopback) {
        ("loopback.auto".to_owned(), None)
    } else if named {
        let mut body = String::from(
            "<!-- Inside <network-lists> of autoload_configs/acl.conf.xml on every node: only \
             switchyard's hosts may open the Event Socket. -->\n\
             <list name=\"switchyard\" default=\"deny\">\n",
        );
        let mut seen = Vec::new();
        for ip in ips {
            if seen.contains(&ip) {
                continue;
            }
            seen.push(ip);
            let cidr = match ip {
                IpAddr::V4(_) => format!("{ip}/32"),
                IpAddr::V6(_) => format!("{ip}/128"),
            };
            let _ = writeln!(body, "  <node type=\"allow\" cidr=\"{}\"/>", esc(&cidr));
        }
        body.push_str("</list>\n");
        (
            "switchyard".to_owned(),
            Some(Part {
                title: "autoload_configs/acl.conf.xml, in <network-lists> (every node)".into(),
                body,
            }),
        )
    } else {
        ("switchyard".to_owned(), None)
    };
    let mut parts = Vec::new();
    for n in &s.nodes {
        let (host, port) = split_host_port(&n.esl);
        let mut notes = Vec::new();
        match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => notes.push(
                "listen-ip is every address: give the node's private address instead".to_owned(),
            ),
            Ok(ip) if !private(ip) => notes.push(format!(
                "{ip} is not a private address: the Event Socket runs any command, keep it off \
                 public networks"
            )),
            Ok(_) => {}
            Err(_) => notes.push(format!(
                "listen-ip takes an address, not the name {host}: give the node's private address"
            )),
        }
        if n.password == "ClueCon" {
            notes.push(
                "ClueCon is FreeSWITCH's well-known default: set another password here and in \
                 switchyard (SWITCHYARD_ESL_PASSWORD, a password file, or esl_password)"
                    .to_owned(),
            );
        }
        if acl_part.is_none() && acl != "loopback.auto" {
            notes.push(format!(
                "define the ACL \"switchyard\" in acl.conf.xml allowing only switchyard's \
                 address ({target} names a host, not an address)"
            ));
        }
        let mut body = String::new();
        let _ = writeln!(
            body,
            "<!-- Node {}: autoload_configs/event_socket.conf.xml; switchyard connects to {}. -->",
            comment(&n.name),
            comment(&n.esl)
        );
        for note in &notes {
            let _ = writeln!(body, "<!-- {} -->", comment(note));
        }
        let _ = write!(
            body,
            "<configuration name=\"event_socket.conf\" description=\"Socket Client\">\n\
             \x20 <settings>\n\
             \x20   <param name=\"nat-map\" value=\"false\"/>\n\
             \x20   <param name=\"listen-ip\" value=\"{}\"/>\n\
             \x20   <param name=\"listen-port\" value=\"{}\"/>\n\
             \x20   <param name=\"password\" value=\"{}\"/>\n\
             \x20   <param name=\"apply-inbound-acl\" value=\"{}\"/>\n\
             \x20 </settings>\n\
             </configuration>\n",
            esc(&host),
            esc(&port),
            esc(&n.password),
            esc(&acl)
        );
        parts.push(Part {
            title: format!("autoload_configs/event_socket.conf.xml (node {})", n.name),
            body,
        });
    }
    parts.extend(acl_part);
    parts
}

fn recording(s: &Setup) -> Vec<Part> {
    let Some(r) = &s.recorder else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    let dial = r.dial.replace("{addr}", &r.sip.to_string());
    let profile = r
        .dial
        .strip_prefix("sofia/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("internal");
    let mut body = String::new();
    let _ = write!(
        body,
        "Recorder legs: for each recorded call FreeSWITCH originates two legs to switchyard's \
         endpoint {sip}\n\
         (dial string {dial}, user rec-<id>-a / rec-<id>-b), each running eavesdrop on the \
         customer's leg.\n\
         - The sofia profile \"{profile}\" must reach {ip} over UDP (SIP {sip}, RTP on the \
         [recording] rtp address).\n\
         - No authentication challenge toward it: it is a call FreeSWITCH places, to a user \
         switchyard was told to expect.\n\
         - Codec: PCMU (the legs set absolute_codec_string=PCMU); the endpoint also takes PCMA \
         and L16.\n\
         - Needs mod_sofia and mod_dptools (eavesdrop); switchyard checks both at connect.\n",
        sip = r.sip,
        ip = r.sip.ip(),
    );
    parts.push(Part {
        title: format!("recording: sofia profile \"{profile}\" (every node)"),
        body,
    });
    if r.oreka {
        let body = format!(
            "<!-- mod_oreka forks the customer's leg to switchyard's endpoint; load mod_oreka \
             (modules.conf.xml). A node without it records with recorder legs. -->\n\
             <configuration name=\"oreka.conf\" description=\"Oreka Recorder configuration\">\n\
             \x20 <settings>\n\
             \x20   <param name=\"sip-server-addr\" value=\"{}\"/>\n\
             \x20   <param name=\"sip-server-port\" value=\"{}\"/>\n\
             \x20 </settings>\n\
             </configuration>\n",
            esc(&r.sip.ip().to_string()),
            r.sip.port()
        );
        parts.push(Part {
            title: "autoload_configs/oreka.conf.xml (every node)".into(),
            body,
        });
    }
    parts
}

/// The channel variables switchyard reads and sets, each with what it means. Kept beside the
/// code that uses them (`engine/src/driver/session.rs`, `config.rs`, `core/adopt.rs`,
/// `commands.rs`; `engine/src/engine/offers.rs`, `lines.rs`, `campaigns.rs`).
pub(super) const VARIABLES: &[(&str, &str, &str)] = &[
    (
        "switchyard_queue",
        "reads, sets",
        "the caller's queue (`<tenant>/<queue>` or any routed number); set by the dialplan, rewritten by a move",
    ),
    (
        "switchyard_priority",
        "reads, sets",
        "the caller's priority (an integer, higher first); rewritten by a priority change",
    ),
    (
        "switchyard_skills",
        "reads",
        "skills the caller needs: `3:5,7` is skill 3 at level 5 or more and skill 7",
    ),
    (
        "switchyard_node",
        "reads",
        "the node's name, when the caller's Core-UUID does not tell it (several nodes)",
    ),
    (
        "switchyard_arrived",
        "reads, sets",
        "the caller's first arrival (Unix ms): a caller back through the hold loop keeps its place",
    ),
    (
        "socket_resume",
        "reads, sets",
        "true while the caller waits (the hold loop takes it back if switchyard dies); false just before a bridge",
    ),
    (
        "hangup_after_bridge",
        "sets",
        "true before a bridge: the caller hangs up with the agent instead of re-entering the loop",
    ),
    (
        "resume_tries / resume_max",
        "dialplan only",
        "the hold loop's passes so far and at most",
    ),
    (
        "switchyard_leg",
        "sets, reads",
        "on every leg switchyard originates (agent, customer, campaign, supervisor, recorder): a stray one is swept",
    ),
    (
        "switchyard_agent",
        "sets, reads",
        "the agent an agent leg or persistent line belongs to (read back after a restart)",
    ),
    (
        "switchyard_agent_line",
        "sets, reads",
        "true on an agent's persistent line",
    ),
    (
        "switchyard_call",
        "sets",
        "the call an originated leg was dialled for",
    ),
    (
        "switchyard_offer",
        "sets",
        "the offer an agent leg rings for",
    ),
    (
        "switchyard_campaign",
        "sets",
        "the campaign a campaign dial belongs to",
    ),
    ("switchyard_contact", "sets", "the contact it dials"),
    (
        "switchyard_attempt",
        "sets",
        "which attempt at that contact it is",
    ),
    (
        "switchyard_recording",
        "sets",
        "the recording a recorder leg captures",
    ),
    (
        "execute_on_answer",
        "sets",
        "`amd` on campaign dials with machine detection (mod_amd)",
    ),
    (
        "amd_result",
        "reads",
        "mod_amd's verdict: HUMAN, MACHINE or NOTSURE",
    ),
    ("amd_cause", "reads", "why mod_amd decided so"),
    (
        "origination_uuid",
        "sets",
        "the uuid switchyard gives each leg it originates",
    ),
];

fn variables() -> String {
    let mut out = String::new();
    let w = VARIABLES.iter().map(|v| v.0.len()).max().unwrap_or(0);
    for (name, how, what) in VARIABLES {
        let _ = writeln!(out, "{name:<w$}  {how:<13}  {what}");
    }
    out.push_str(
        "Also read from each caller's CHANNEL_DATA: Caller-Destination-Number (routing), \
         Caller-Caller-ID-Number / -Name, Core-UUID (its node).\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Setup {
        Setup {
            outbound_listen: "10.0.0.5:8084".into(),
            nodes: vec![SwitchNode {
                name: "fs1".into(),
                esl: "10.0.0.2:8021".into(),
                password: "s3cret&".into(),
            }],
            recorder: None,
            freeswitch: FileFreeSwitch::default(),
        }
    }

    #[test]
    fn a_single_section_prints_bare_and_all_prints_titled_parts() {
        let s = setup();
        let d = render(&s, Section::Dialplan).unwrap();
        assert!(d.starts_with("<!-- switchyard"), "{d}");
        assert!(d.contains("data=\"10.0.0.5:8084 async full\""), "{d}");
        let all = render(&s, Section::All).unwrap();
        assert!(
            all.starts_with("==> dialplan/default/00_switchyard.xml"),
            "{all}"
        );
        assert!(all.contains("value=\"s3cret&amp;\""), "{all}");
        assert!(
            all.contains("<list name=\"switchyard\" default=\"deny\">"),
            "{all}"
        );
        assert_eq!(all, render(&s, Section::All).unwrap(), "deterministic");
    }

    #[test]
    fn a_wildcard_outbound_listen_needs_the_socket_address_and_a_host_list_is_allowed_in_the_acl() {
        let mut s = setup();
        s.outbound_listen = "0.0.0.0:8084".into();
        let err = render(&s, Section::Dialplan).unwrap_err().to_string();
        assert!(err.contains("wildcard"), "{err}");
        s.freeswitch.socket = "10.0.0.5:8084|10.0.0.6:8084".into();
        let d = render(&s, Section::Dialplan).unwrap();
        assert!(
            d.contains("data=\"10.0.0.5:8084|10.0.0.6:8084 async full\""),
            "{d}"
        );
        let es = render(&s, Section::EventSocket).unwrap();
        assert!(es.contains("cidr=\"10.0.0.5/32\""), "{es}");
        assert!(es.contains("cidr=\"10.0.0.6/32\""), "{es}");
    }

    #[test]
    fn without_a_transfer_the_fallback_hangs_up_with_its_cause() {
        let mut s = setup();
        s.freeswitch.fallback.transfer = String::new();
        s.freeswitch.fallback.playback = "ivr/ivr-not_available.wav".into();
        let d = render(&s, Section::Dialplan).unwrap();
        assert!(d.contains("data=\"ivr/ivr-not_available.wav\""), "{d}");
        assert!(
            d.contains("application=\"hangup\" data=\"NORMAL_TEMPORARY_FAILURE\""),
            "{d}"
        );
        s.freeswitch.fallback.hangup = "normal; rm".into();
        assert!(render(&s, Section::Dialplan).is_err());
    }
}
