//! A recording played in a real browser: headless Chromium (the Debian `chromium` binary,
//! driven by playwright-core from `tests/browser`) loads an `<audio>` element pointed at the
//! API's signed URL, plays it, and seeks to the middle, which a browser does by byte ranges.
//! The browser side is `tests/browser/recording_player.mjs`; this test starts the API, files a
//! ten-minute recording, runs the script and checks what it reports and the screenshot it
//! leaves.
//!
//! Needs `node`, `tests/browser/node_modules` (`npm ci --prefix tests/browser`) and chromium
//! (`/usr/bin/chromium` or `$SWITCHYARD_CHROMIUM`); without them the test is skipped, except
//! under CI (`CI` set), where it fails. `.ci/run` installs all three.

mod browser_common;
mod recording_common;
mod server_common;

use browser_common::{browser_check_ready, browser_dir};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_api::store::Store;
use uuid::Uuid;

use recording_common::*;
use server_common::*;

/// Ten minutes of stereo 8 kHz audio (19.2 MB): the middle is megabytes past what Chromium
/// reads ahead and past the distance it waits out on a forward seek (about 2 MB), so the
/// seek is a Range request from mid-file, which a short call's file (fetched whole in the
/// first request) would never show.
const LENGTH_S: u32 = 600;
const RATE: u32 = 8000;

/// A finished recording of [`LENGTH_S`] seconds (a 440 Hz tone on the caller's channel, 660
/// Hz on the agent's), filed and spooled as the recorder files one: its id. The audio comes
/// from here, not from a call, because the fake switch records in real time; what is under
/// test is the path from the stored object to the browser.
async fn long_recording(s: &Server, tenant: switchyard_api::model::TenantId, dir: &Path) -> Uuid {
    let id = Uuid::new_v4();
    let path = dir.join(format!("{id}.wav"));
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(&path, spec).unwrap();
    for n in 0..LENGTH_S * RATE {
        let t = f64::from(n) / f64::from(RATE);
        for hz in [440.0, 660.0] {
            let v = (t * hz * std::f64::consts::TAU).sin() * 8000.0;
            wav.write_sample(v as i16).unwrap();
        }
    }
    wav.finalize().unwrap();
    let bytes = std::fs::metadata(&path).unwrap().len() as i64;
    let started = switchyard_api::store::now_ms() - i64::from(LENGTH_S) * 1000;
    let row = switchyard_api::store::RecordingRow {
        id,
        tenant,
        call_id: Uuid::new_v4(),
        leg: Uuid::new_v4(),
        queue_id: 1,
        campaign_id: None,
        agents: vec![],
        caller_number: "+15550001".into(),
        mode: "always".into(),
        capture: "live".into(),
        fell_back: false,
        stereo: true,
        path: path.display().to_string(),
        started_at_ms: started,
        ended_at_ms: Some(started + i64::from(LENGTH_S) * 1000),
        status: "completed".into(),
        error: None,
        duration_ms: Some(i64::from(LENGTH_S) * 1000),
        sample_rate: Some(RATE as i32),
        channels: Some(2),
        bytes: Some(bytes),
        silence_ratio: Some(0.0),
        spans: serde_json::json!([]),
        waveform: Value::Null,
        kind: "call".into(),
        mailbox_queue: None,
        mailbox_agent: None,
    };
    s.store
        .insert_recordings(std::slice::from_ref(&row))
        .await
        .unwrap();
    // Spooled and handed to the uploader as the runtime does with a finished recording.
    s.rt.objects.spool(&[row]).await;
    id
}

/// The script has its own 90 s deadline; this one is for a node that hangs before it.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(120);

/// Runs the player script and returns its JSON result line and whether it exited 0. Killed
/// if it overruns [`SCRIPT_DEADLINE`].
fn run_player(url: &str, screenshot: &Path, expected_s: f64) -> (bool, Value, String) {
    let mut child = Command::new("node")
        .arg("recording_player.mjs")
        .arg(url)
        .arg(screenshot)
        .arg(format!("{expected_s:.3}"))
        .current_dir(browser_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // Chromium's and node's own complaints go straight to the test's output.
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting node");
    // Read stdout on a thread so a chatty child can never block on a full pipe while we wait.
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).map(|_| out)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            break status;
        }
        if started.elapsed() > SCRIPT_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser check did not finish within {SCRIPT_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = reader.join().unwrap().expect("reading node's stdout");
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON result from the browser check: {out:?}"));
    let result: Value = serde_json::from_str(line).expect("the result line is JSON");
    (status.success(), result, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_audio_element_plays_a_signed_recording_and_seeks_to_the_middle_by_range() {
    if browser_check_ready().is_none() {
        return;
    }
    // SQLite alone: the storage path is the same on both backends (recording_media.rs covers
    // both), and this test is about what a browser does with the URL.
    let store = Store::sqlite_memory().await.expect("in-memory sqlite");
    store.migrate().await.expect("sqlite migrations");
    let dir = temp_dir("browser");
    let s = Server::start_recording(store, switch_recording(&dir, None)).await;
    let (tenant, key) = s.tenant("acme").await;
    let k = key.as_str();

    let id = long_recording(&s, tenant, &dir).await;
    let row = stored(&s, tenant, id).await;

    // What the browser should find: the stored file's own length, from its header.
    let object = dir.join("store").join(&row.object_key);
    let file_len = std::fs::metadata(&object).unwrap().len();
    let wav = hound::WavReader::open(&object).unwrap();
    let expected_s = f64::from(wav.duration()) / f64::from(wav.spec().sample_rate);
    assert_eq!(expected_s, f64::from(LENGTH_S));

    let (st, signed) = s
        .call(
            "GET",
            &format!("/v1/recordings/{id}/presigned-url"),
            Some(k),
            None,
        )
        .await;
    assert_eq!(st, 200, "{signed}");
    assert_eq!(signed["kind"], "signed");
    let url = format!("{}{}", s.base, signed["url"].as_str().unwrap());

    let screenshot = std::env::temp_dir().join(format!(
        "switchyard-recording-browser-{}.png",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&screenshot);
    let (url_for_node, shot) = (url.clone(), screenshot.clone());
    let (success, result, out) =
        tokio::task::spawn_blocking(move || run_player(&url_for_node, &shot, expected_s))
            .await
            .unwrap();
    println!("browser check: {}", out.trim());
    println!("browser check screenshot: {}", screenshot.display());
    assert!(success, "the browser check failed: {result}");

    // The script's verdict, and the same facts checked again here against the file.
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["failures"], serde_json::json!([]), "{result}");
    let duration = result["duration"].as_f64().unwrap();
    assert!(
        (duration - expected_s).abs() <= 0.25,
        "browser says {duration} s, the file {expected_s} s"
    );
    assert!(
        result["played_to"].as_f64().unwrap() > 0.0,
        "playback never advanced: {result}"
    );
    let landed = result["seek_landed"].as_f64().unwrap();
    assert!(
        (landed - expected_s / 2.0).abs() <= 0.5,
        "the seek to the middle ({} s) landed at {landed} s",
        expected_s / 2.0
    );
    let exchanges = result["exchanges"].as_array().unwrap();
    let ranged: Vec<&Value> = exchanges
        .iter()
        .filter(|x| x["range"].is_string() && x["status"] == 206)
        .collect();
    assert!(
        !ranged.is_empty(),
        "no Range request answered 206: {exchanges:?}"
    );
    // The seek's own request: from the middle of the file, not its start.
    let start_of = |x: &Value| -> Option<u64> {
        x["range"]
            .as_str()?
            .strip_prefix("bytes=")?
            .split('-')
            .next()?
            .parse()
            .ok()
    };
    assert!(
        ranged
            .iter()
            .any(|x| start_of(x).is_some_and(|b| b > file_len / 4 && b < file_len * 3 / 4)),
        "no Range request from the middle of the {file_len}-byte file: {exchanges:?}"
    );
    for x in &ranged {
        // Every partial answer is a slice of exactly this file.
        let content_range = x["contentRange"].as_str().unwrap();
        assert!(
            content_range.starts_with("bytes ") && content_range.ends_with(&format!("/{file_len}")),
            "Content-Range {content_range} is not a slice of the {file_len}-byte file"
        );
    }
    // The streams Chromium abandons as it seeks show as aborted by the browser itself.
    assert!(
        exchanges.iter().all(|x| x["status"] == 200
            || x["status"] == 206
            || x["failure"] == "net::ERR_ABORTED"),
        "a request for the audio failed: {exchanges:?}"
    );

    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is not a PNG"
    );
    // A blank page compresses to well under this; the player and its label do not.
    assert!(
        png.len() > 4_000,
        "the screenshot is only {} bytes",
        png.len()
    );

    s.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
