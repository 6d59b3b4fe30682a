//! `switchyard sim inbound` and `sim campaign` as a user runs them: one JSON object on stdout,
//! typed errors naming the flag or field on stderr.

use std::process::Command;

use serde_json::Value;

fn sim(args: &[&str]) -> (bool, String, String) {
    run("inbound", args)
}

fn campaign(args: &[&str]) -> (bool, String, String) {
    run("campaign", args)
}

/// `switchyard sim <kind> <args>`: (success, stdout, stderr).
fn run(kind: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["sim", kind])
        .args(args)
        .output()
        .expect("run switchyard");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn single_queue_run_prints_one_json_object_with_every_figure() {
    let (ok, stdout, stderr) = sim(&[
        "--agents",
        "12",
        "--erlangs",
        "10",
        "--aht",
        "180",
        "--patience",
        "120",
        "--hours",
        "4",
        "--seed",
        "3",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    let v: Value = serde_json::from_str(&stdout).expect("JSON");
    for key in [
        "offered",
        "answered",
        "abandoned",
        "service_level",
        "asa_s",
        "aht_s",
        "occupancy",
        "longest_wait_s",
        "queues",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    let offered = v["offered"].as_u64().unwrap();
    let answered = v["answered"].as_u64().unwrap();
    let abandoned = v["abandoned"].as_u64().unwrap();
    assert!(
        offered > 700,
        "about 800 calls in 4 h at 10 erlangs: {offered}"
    );
    assert_eq!(offered, answered + abandoned + v["other"].as_u64().unwrap());
    assert!(abandoned > 0, "patient but not infinitely");
    let sl = v["service_level"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&sl));
    assert_eq!(v["queues"].as_array().unwrap().len(), 1);
    // The same seed prints the same figures.
    let (_, again, _) = sim(&[
        "--agents",
        "12",
        "--erlangs",
        "10",
        "--aht",
        "180",
        "--patience",
        "120",
        "--hours",
        "4",
        "--seed",
        "3",
    ]);
    assert_eq!(stdout, again);
}

#[test]
fn config_file_runs_several_queues_with_skills() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../engine/scenarios/three-queues.toml"
    );
    let (ok, stdout, stderr) = sim(&["--config", path, "--hours", "2", "--strategy", "top-down"]);
    assert!(ok, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).expect("JSON");
    let queues = v["queues"].as_array().unwrap();
    assert_eq!(
        queues
            .iter()
            .map(|q| q["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["sales", "support", "general"]
    );
    for q in queues {
        assert!(q["answered"].as_u64().unwrap() > 0, "{q}");
    }
    assert_eq!(v["hours"].as_f64(), Some(2.0), "--hours overrides the file");
}

#[test]
fn bad_input_is_refused_with_the_flag_or_field_named() {
    let (ok, _, stderr) = sim(&["--erlangs", "5", "--strategy", "fastest"]);
    assert!(!ok);
    assert!(stderr.contains("--strategy"), "{stderr}");
    let (ok, _, stderr) = sim(&["--agents", "3"]);
    assert!(!ok);
    assert!(stderr.contains("--erlangs"), "{stderr}");
    let (ok, _, stderr) = sim(&["--erlangs", "5", "--hours=-1"]);
    assert!(!ok);
    assert!(stderr.contains("hours"), "{stderr}");
    let dir = std::env::temp_dir().join(format!("switchyard-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[queues]]\nid = 1\narrivals_per_hour = 10.0\naht_s = -5.0\n[[agents]]\ncount = 1\nqueues = [1]\n").unwrap();
    let (ok, _, stderr) = sim(&["--config", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("aht_s"), "{stderr}");
    std::fs::write(&bad, "[[queues]]\nid = 1\nbogus = 1\n").unwrap();
    let (ok, _, stderr) = sim(&["--config", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("bogus") || stderr.contains("unknown field"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn huge_or_infinite_times_in_a_config_are_refused_not_a_crash() {
    let dir = std::env::temp_dir().join(format!("switchyard-sim-times-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("times.toml");
    for (body, field) in [
        ("patience_s = 1e300", "patience_s"),
        ("escalation = [[1e300, 2, 0]]", "escalation"),
        ("max_wait_s = 1e12", "max_wait_s"),
    ] {
        std::fs::write(
            &file,
            format!("[[queues]]\nid = 1\narrivals_per_hour = 10.0\naht_s = 60.0\n{body}\n[[agents]]\ncount = 1\nqueues = [1]\n"),
        )
        .unwrap();
        let (ok, _, stderr) = sim(&["--config", file.to_str().unwrap()]);
        assert!(!ok, "{body}");
        assert!(
            stderr.contains(field) && !stderr.contains("panicked"),
            "{body}: {stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn campaign_run_prints_the_issue_figures() {
    let (ok, stdout, stderr) = campaign(&[
        "--agents",
        "5",
        "--days",
        "1",
        "--hours-per-day",
        "2",
        "--answer-delay",
        "5,20",
        "--no-answer-time",
        "15,30",
        "--mode",
        "predictive",
        "--seed",
        "4",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    let v: Value = serde_json::from_str(&stdout).expect("JSON");
    for key in [
        "dialed",
        "connected",
        "abandoned",
        "abandon_rate",
        "abandon_rate_max_day",
        "talk_occupancy",
        "busy_occupancy",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert!(v["connected"].as_u64().unwrap() > 50, "{v}");
    let talk = v["talk_occupancy"].as_f64().unwrap();
    let busy = v["busy_occupancy"].as_f64().unwrap();
    assert!(talk > 0.3 && talk < busy && busy <= 1.0, "{v}");
}

#[test]
fn campaign_flags_are_checked_by_name() {
    let (ok, _, stderr) = campaign(&["--answer-delay", "20,5"]);
    assert!(!ok);
    assert!(stderr.contains("--answer-delay"), "{stderr}");
    let (ok, _, stderr) = campaign(&["--mode", "turbo"]);
    assert!(!ok);
    assert!(stderr.contains("--mode"), "{stderr}");
    let (ok, _, stderr) = campaign(&["--ring-timeout", "5", "--days", "1"]);
    assert!(!ok);
    assert!(stderr.contains("ring_timeout"), "{stderr}");
    let (ok, _, stderr) = campaign(&["--agent-line", "nailed"]);
    assert!(!ok);
    assert!(stderr.contains("--agent-line"), "{stderr}");
    let (ok, _, stderr) = campaign(&["--release-after", "soon"]);
    assert!(!ok);
    assert!(stderr.contains("--release-after"), "{stderr}");
    let (ok, _, stderr) = campaign(&["--release-after", "10", "--days", "1"]);
    assert!(!ok);
    assert!(stderr.contains("release_after"), "{stderr}");
}

#[test]
fn release_after_off_keeps_every_line_ringing_to_its_end() {
    let short = ["--agents", "10", "--days", "1", "--hours-per-day", "1"];
    let released = |extra: &[&str]| {
        let (ok, out, stderr) = campaign(&[&short[..], extra].concat());
        assert!(ok, "{stderr}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(v["connected"].as_u64().unwrap() > 50, "{v}");
        v["released"].as_u64().unwrap()
    };
    assert!(released(&[]) > 0, "early release is on by default");
    assert_eq!(released(&["--release-after", "off"]), 0);
}
