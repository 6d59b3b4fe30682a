//! `switchyard fakeswitch` as a process, with `switchyard esl api` and `switchyard esl events`
//! against it: the standalone stand-in works with the tools exactly as FreeSWITCH would.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn switchyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

/// The fake switch on a free loopback port; killed on drop.
struct FakeSwitch {
    child: Child,
    port: u16,
}

impl FakeSwitch {
    fn start() -> FakeSwitch {
        // Ask the OS for a free port, then hand it to the child.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = switchyard()
            .args([
                "fakeswitch",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--seed",
                "7",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the fake switch");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the fake switch never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        FakeSwitch { child, port }
    }

    fn api(&self, cmd: &str) -> (bool, String, String) {
        let out = switchyard()
            .args(["esl", "api", "--port", &self.port.to_string(), cmd])
            .output()
            .expect("run esl api");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for FakeSwitch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn esl_api_talks_to_the_standalone_fake_switch() {
    let fs = FakeSwitch::start();
    let (ok, status, _) = fs.api("status");
    assert!(ok);
    assert!(status.starts_with("UP "), "{status}");
    assert!(status.contains("is ready"), "{status}");

    let (ok, uuid, _) = fs.api("originate {origination_uuid=cli-test-1}user/1000 &park()");
    assert!(ok);
    assert_eq!(uuid.trim(), "+OK cli-test-1");
    let (_, channels, _) = fs.api("show channels as json");
    let v: serde_json::Value = serde_json::from_str(&channels).expect("json");
    assert_eq!(v["row_count"], 1, "{channels}");
    assert_eq!(v["rows"][0]["uuid"], "cli-test-1");

    let (_, unknown, _) = fs.api("nosuchcommand");
    assert_eq!(unknown, "-ERR nosuchcommand Command not found!\n");
}

#[test]
fn esl_events_prints_the_fake_switchs_events_as_json_lines() {
    let fs = FakeSwitch::start();
    let mut events = switchyard()
        .args([
            "esl",
            "events",
            "--port",
            &fs.port.to_string(),
            "--format",
            "json",
        ])
        .args(["--events", "CHANNEL_CREATE CHANNEL_ANSWER"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run esl events");
    // Wait for the tool's "connected" notice (stderr), then a moment for its `event` command.
    let stderr = events.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("connected") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("esl events connected");
    std::thread::sleep(Duration::from_millis(300));
    let (ok, _, _) = fs.api("originate {origination_uuid=cli-test-2}user/1001 &park()");
    assert!(ok);
    std::thread::sleep(Duration::from_millis(500));
    // Ending the switch ends the socket; without --once the tool would reconnect, so stop it.
    drop(fs);
    std::thread::sleep(Duration::from_millis(200));
    let _ = events.kill();
    let out = events.wait_with_output().expect("events output");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect();
    let names: Vec<&str> = lines
        .iter()
        .filter_map(|e| e["Event-Name"].as_str())
        .collect();
    assert!(names.contains(&"CHANNEL_CREATE"), "{names:?}");
    assert!(names.contains(&"CHANNEL_ANSWER"), "{names:?}");
    assert!(
        lines.iter().all(|e| e["Unique-ID"] == "cli-test-2"),
        "{lines:?}"
    );
}

#[test]
fn two_runs_of_one_seed_share_no_channel_uuid() {
    // Records are keyed by channel uuids: a second run against the same database must not
    // hand out the first run's, whatever the seed replays.
    let mut made = Vec::new();
    for _ in 0..2 {
        let fs = FakeSwitch::start();
        let (ok, reply, err) = fs.api("originate user/1000 &park()");
        assert!(ok, "{err}");
        let uuid = reply
            .trim()
            .strip_prefix("+OK ")
            .unwrap_or_else(|| panic!("{reply:?}"))
            .to_owned();
        assert!(uuid::Uuid::parse_str(&uuid).is_ok(), "{uuid}");
        made.push(uuid);
    }
    assert_ne!(made[0], made[1]);
}
