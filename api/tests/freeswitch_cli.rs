//! `switchyard freeswitch config` as an engineer runs it: from the `serve` config file, every
//! XML part parses, and the parts say what switchyard will do (the socket's address, the
//! fallback, each node's Event Socket password).

use std::process::Command;

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::reader::Reader;

const CONFIG: &str = r#"
outbound_listen = "10.0.0.5:8084"
esl_password = "Tr0ub4dor&3"

[[switch]]
name = "east"
esl = "10.1.0.1:8021"

[[switch]]
name = "west"
esl = "10.2.0.1:8021"
password = "w3st<pw>"

[recording]
sip = "10.0.0.5:5090"
oreka = true

[freeswitch]
numbers = '^(7\d{3})$'
context = "public"
hold_max = 10

[freeswitch.fallback]
playback = "ivr/ivr-please_hold.wav"
transfer = "0 XML default"
"#;

/// Runs `switchyard freeswitch config` with `args`, clear of the environment `serve` reads.
fn config(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["freeswitch", "config"])
        .args(args)
        .env_remove("SWITCHYARD_ESL")
        .env_remove("SWITCHYARD_ESL_PASSWORD")
        .env_remove("SWITCHYARD_SWITCHES")
        .env_remove("SWITCHYARD_OUTBOUND_LISTEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config_file() -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!(
        "switchyard-fsconfig-{}-{:?}.toml",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&p, CONFIG).unwrap();
    p
}

/// One element: its name and attributes, unescaped.
#[derive(Debug)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Element {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `xml` as one well-formed document (one root element, every tag closed in order)
/// and returns its elements in document order.
fn parse(xml: &str) -> Vec<Element> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        let ev = reader
            .read_event()
            .unwrap_or_else(|e| panic!("not XML: {e}\n{xml}"));
        let start = match &ev {
            Event::Start(e) | Event::Empty(e) => Some(e.clone()),
            _ => None,
        };
        if let Some(e) = start {
            if depth == 0 {
                roots += 1;
            }
            let attrs = e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    (
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        a.normalized_value(XmlVersion::Implicit1_0)
                            .unwrap()
                            .into_owned(),
                    )
                })
                .collect();
            out.push(Element {
                name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
                attrs,
            });
        }
        match ev {
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.checked_sub(1).expect("an end without a start"),
            Event::Text(t) => assert!(
                t.as_ref().iter().all(u8::is_ascii_whitespace) || depth > 0,
                "text outside the root: {xml}"
            ),
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unclosed elements:\n{xml}");
    assert_eq!(roots, 1, "one root element:\n{xml}");
    out
}

/// `==> title <==` parts of the full output.
fn parts(out: &str) -> Vec<(String, String)> {
    let mut parts: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        if let Some(title) = line
            .strip_prefix("==> ")
            .and_then(|l| l.strip_suffix(" <=="))
        {
            parts.push((title.to_owned(), String::new()));
        } else if let Some((_, body)) = parts.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    parts
}

fn actions(elements: &[Element]) -> Vec<(String, String)> {
    elements
        .iter()
        .filter(|e| e.name == "action")
        .map(|e| {
            (
                e.attr("application").unwrap_or_default().to_owned(),
                e.attr("data").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_xml_part_parses_and_carries_the_socket_address_the_fallback_and_each_nodes_password() {
    let file = config_file();
    let (ok, out, err) = config(&["--config", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    let parts = parts(&out);
    let titles: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        titles,
        [
            "dialplan/public/00_switchyard.xml (every node)",
            "autoload_configs/event_socket.conf.xml (node east)",
            "autoload_configs/event_socket.conf.xml (node west)",
            "autoload_configs/acl.conf.xml, in <network-lists> (every node)",
            "recording: sofia profile \"internal\" (every node)",
            "autoload_configs/oreka.conf.xml (every node)",
            "channel variables switchyard reads and sets",
        ]
    );
    let mut xml_parts = 0;
    for (title, body) in &parts {
        if title.contains(".xml") {
            parse(body);
            xml_parts += 1;
        }
    }
    assert_eq!(xml_parts, 5);

    let dialplan = parse(&parts[0].1);
    let conditions: Vec<_> = dialplan
        .iter()
        .filter(|e| e.name == "condition" && e.attr("field") == Some("destination_number"))
        .map(|e| e.attr("expression").unwrap())
        .collect();
    assert_eq!(
        conditions, [r"^(7\d{3})$"; 3],
        "every extension takes the numbers"
    );
    let acts = actions(&dialplan);
    let socket: Vec<_> = acts.iter().filter(|(a, _)| a == "socket").collect();
    assert_eq!(socket.len(), 1);
    assert_eq!(socket[0].1, "10.0.0.5:8084 async full");
    // After `socket`, where a caller goes when switchyard is unreachable: the hold tone, the
    // loop again with the dialled number kept.
    let at = acts.iter().position(|(a, _)| a == "socket").unwrap();
    assert_eq!(acts[at + 1].0, "playback");
    assert_eq!(
        acts[at + 2],
        (
            "transfer".to_owned(),
            "${destination_number} XML public".to_owned()
        )
    );
    assert!(acts.contains(&("set".to_owned(), "resume_max=10".to_owned())));
    // The fallback: its own extension, reached when the loop is spent.
    let fallback = dialplan
        .iter()
        .position(|e| e.attr("name") == Some("switchyard-fallback"))
        .expect("a fallback extension");
    let fallback_acts = actions(&dialplan[fallback..]);
    assert_eq!(
        &fallback_acts[..3],
        [
            ("set".to_owned(), "socket_resume=false".to_owned()),
            ("playback".to_owned(), "ivr/ivr-please_hold.wav".to_owned()),
            ("transfer".to_owned(), "0 XML default".to_owned()),
        ]
    );
    assert!(
        dialplan.iter().any(
            |e| e.attr("field") == Some("${cond(${resume_tries} >= ${resume_max} ? yes : no)}")
        )
    );

    let param = |els: &[Element], name: &str| {
        els.iter()
            .find(|e| e.name == "param" && e.attr("name") == Some(name))
            .and_then(|e| e.attr("value"))
            .unwrap()
            .to_owned()
    };
    let east = parse(&parts[1].1);
    assert_eq!(param(&east, "password"), "Tr0ub4dor&3");
    assert_eq!(param(&east, "listen-ip"), "10.1.0.1");
    assert_eq!(param(&east, "listen-port"), "8021");
    assert_eq!(param(&east, "apply-inbound-acl"), "switchyard");
    let west = parse(&parts[2].1);
    assert_eq!(param(&west, "password"), "w3st<pw>");
    let acl = parse(&parts[3].1);
    assert_eq!(acl[1].attr("cidr"), Some("10.0.0.5/32"));
    let oreka = parse(&parts[5].1);
    assert_eq!(param(&oreka, "sip-server-addr"), "10.0.0.5");
    assert_eq!(param(&oreka, "sip-server-port"), "5090");
    for var in [
        "switchyard_queue",
        "switchyard_skills",
        "switchyard_arrived",
        "socket_resume",
    ] {
        assert!(parts[6].1.contains(var), "{var} listed");
    }

    // The same settings print the same bytes.
    assert_eq!(config(&["--config", file.to_str().unwrap()]).1, out);
    let _ = std::fs::remove_file(file);
}

#[test]
fn a_single_section_is_bare_xml_and_the_defaults_need_no_config_file() {
    let (ok, out, err) = config(&["--section", "dialplan"]);
    assert!(ok, "{err}");
    assert!(!out.contains("==>"), "{out}");
    let acts = actions(&parse(&out));
    assert!(acts.contains(&("socket".to_owned(), "127.0.0.1:8084 async full".to_owned())));
    // Default fallback: vanilla's operator extension, a person rather than a dropped call.
    assert!(acts.contains(&("transfer".to_owned(), "operator XML default".to_owned())));

    let (ok, out, _) = config(&["--section", "event-socket"]);
    assert!(ok);
    let es = parse(&out);
    let value = |name: &str| {
        es.iter()
            .find(|e| e.attr("name") == Some(name))
            .and_then(|e| e.attr("value"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(value("listen-ip"), "127.0.0.1");
    assert_eq!(value("password"), "ClueCon");
    // switchyard on loopback: FreeSWITCH's own list for it.
    assert_eq!(value("apply-inbound-acl"), "loopback.auto");
    assert!(
        out.contains("well-known default"),
        "the default password is called out"
    );
}

#[test]
fn a_fallback_hangup_cause_freeswitch_would_not_know_is_refused() {
    let p = std::env::temp_dir().join(format!(
        "switchyard-fsconfig-bad-{}.toml",
        std::process::id()
    ));
    std::fs::write(
        &p,
        "[freeswitch.fallback]\ntransfer = \"\"\nhangup = \"normal clearing\"\n",
    )
    .unwrap();
    let (ok, _, err) = config(&["--config", p.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("[freeswitch.fallback] hangup"), "{err}");
    let _ = std::fs::remove_file(p);
}
