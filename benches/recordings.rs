//! The recordings service's figures (issue 19), on loopback on the 2-core machine (the load
//! generator, switchyard and the S3 server share both cores):
//!
//! 1. Upload throughput to an S3-compatible server (moto's server mode, the Python process the
//!    tests use): five-minute stereo 8 kHz WAVs (9.6 MB each, what the recorder writes)
//!    stored through `Storage::put_file` (read in 1 MiB chunks, SHA-256, one write-once PUT)
//!    with 1, 4 and 8 uploads at a time; MB/s and recordings/s. Beside it, the same files
//!    uploaded by boto3's `upload_file` (the AWS SDK for Python, which an operator's own script
//!    would use) with as many threads, when `python3` has boto3: the same server's ceiling
//!    measured by another client.
//! 2. `GET /v1/recordings/{id}/presigned-url` at a fixed 500 requests/s for 20 s, open loop
//!    (each latency counts from the moment the request was due, so a stall is not hidden by
//!    the generator slowing down): p50, p99, max, for a recording on local storage (the API
//!    signs its own HMAC URL) and one on S3 (a SigV4 presigned GET, signed locally).
//!
//! ```sh
//! cargo bench --bench recordings               # both
//! cargo bench --bench recordings -- upload     # or -- presign
//! ```
//! Needs `moto_server` on PATH (or `SWITCHYARD_MOTO`), as the S3 tests do.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_api::app;
use switchyard_api::http::HttpConfig;
use switchyard_api::model::{Role, TenantId};
use switchyard_api::recording_objects::ObjectsConfig;
use switchyard_api::runtime::{Recording, Runtime, SwitchNode};
use switchyard_api::store::{AuditEntry, ObjectState, RecordingRow, Store};
use switchyard_engine::EngineConfig;
use switchyard_media::storage::{ObjectKey, RecordingStorage, S3Config, Storage, StorageConfig};
use uuid::Uuid;

/// Five minutes of stereo 8 kHz 16-bit audio, as the recorder writes a call.
const RECORDING_SECS: u32 = 300;
const RATE: u32 = 8000;
/// Files uploaded per concurrency level.
const FILES: usize = 24;
const PRESIGN_RATE: u32 = 500;
const PRESIGN_SECS: u64 = 20;

fn audit<'a>() -> AuditEntry<'a> {
    AuditEntry {
        tenant: None,
        key_id: None,
        action: "bench",
        object_kind: "bench",
        object_id: String::new(),
        detail: Value::Null,
    }
}

/// A moto S3 server with bucket `calls`, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    async fn start() -> Moto {
        let bin = std::env::var("SWITCHYARD_MOTO").unwrap_or_else(|_| "moto_server".to_owned());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin} (install moto[server]): {e}"));
        let moto = Moto { child, port };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto never listened"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let resp = reqwest::Client::new()
            .put(format!("{}/calls", moto.endpoint()))
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "create bucket: {}",
            resp.status()
        );
        moto
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn s3(&self) -> S3Config {
        let mut s3 = S3Config::new("calls");
        s3.region = Some("us-east-1".into());
        s3.endpoint = Some(self.endpoint());
        s3.access_key_id = Some("test".into());
        s3.secret_access_key = Some("test".into());
        s3.allow_http = true;
        s3
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-bench-recordings-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A stereo WAV of `secs` seconds (a tone per channel, so it does not compress to nothing on
/// the way) at `path`.
fn write_wav(path: &Path, secs: u32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..secs * RATE {
        let t = f64::from(n) / f64::from(RATE);
        for hz in [440.0, 1000.0] {
            wav.write_sample(((t * hz * std::f64::consts::TAU).sin() * 8000.0) as i16)
                .unwrap();
        }
    }
    wav.finalize().unwrap();
}

async fn upload(moto: &Moto) {
    let dir = scratch("upload");
    let source = dir.join("call.wav");
    write_wav(&source, RECORDING_SECS);
    // One file per upload, as the spool holds them (the page cache serves them all alike).
    let files: Vec<PathBuf> = (0..FILES)
        .map(|i| {
            let p = dir.join(format!("{i}.wav"));
            std::fs::copy(&source, &p).unwrap();
            p
        })
        .collect();
    let bytes = std::fs::metadata(&source).unwrap().len();
    let mb = bytes as f64 * FILES as f64 / 1e6;
    println!(
        "upload: {FILES} recordings of {RECORDING_SECS} s stereo ({:.1} MB each) to moto at {}",
        bytes as f64 / 1e6,
        moto.endpoint()
    );
    let storage = Arc::new(Storage::open(&StorageConfig::S3(moto.s3())).unwrap());
    for (round, at_once) in [1usize, 4, 8].into_iter().enumerate() {
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..at_once {
            let (storage, files, next) = (storage.clone(), files.clone(), next.clone());
            workers.spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let key = ObjectKey::new(
                        "bench",
                        &format!("round{round}"),
                        &Uuid::new_v4().to_string(),
                    )
                    .unwrap();
                    storage.put_file(&key, path).await.unwrap();
                }
            });
        }
        while let Some(r) = workers.join_next().await {
            r.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  switchyard Storage::put_file, {at_once} at a time: {:.1} MB/s, {:.2} recordings/s ({secs:.1} s)",
            mb / secs,
            FILES as f64 / secs
        );
        boto3(moto, &files, at_once, mb);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same files through boto3's `upload_file` with `threads` threads, when python3 has it.
fn boto3(moto: &Moto, files: &[PathBuf], threads: usize, mb: f64) {
    const SCRIPT: &str = r#"
import sys, time, uuid, boto3
from concurrent.futures import ThreadPoolExecutor
endpoint, threads, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
start = time.monotonic()
with ThreadPoolExecutor(threads) as pool:
    list(pool.map(lambda f: s3.upload_file(f, "calls", "boto/" + str(uuid.uuid4())), files))
print(time.monotonic() - start)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(moto.endpoint())
        .arg(threads.to_string())
        .args(files)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let secs = out.ok().filter(|o| o.status.success()).and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<f64>()
            .ok()
    });
    match secs {
        Some(secs) => println!(
            "  boto3 upload_file, {threads} threads:           {:.1} MB/s, {:.2} recordings/s ({secs:.1} s)",
            mb / secs,
            files.len() as f64 / secs
        ),
        None => println!("  boto3: not available (python3 without boto3)"),
    }
}

/// A runtime storing recordings as `objects` says, its API on loopback, a tenant's admin key,
/// and one five-minute recording stored: (base URL, key, recording id).
async fn server_with_recording(objects: ObjectsConfig) -> (String, String, Uuid) {
    let store = Store::sqlite_memory().await.unwrap();
    store.migrate().await.unwrap();
    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let esl_addr = esl.local_addr().unwrap();
    // The switch and the runtime live as long as the process (the bench ends by exiting).
    std::mem::forget(switchyard_esl::sim::spawn(
        esl,
        switchyard_esl::sim::SimConfig::default(),
        1,
    ));
    let t = store
        .create_tenant_granted(
            "bench",
            &switchyard_api::grants::DialGrants::lab(),
            &audit(),
        )
        .await
        .unwrap();
    let (_, key) = store
        .create_api_key(Some(t.id), Role::Admin, None, "bench", None, &audit())
        .await
        .unwrap();
    let rt = Arc::new(
        Runtime::start_recording(
            store.clone(),
            vec![SwitchNode {
                name: "fs1".into(),
                esl: esl_addr.to_string(),
                password: "ClueCon".into(),
            }],
            "127.0.0.1:0",
            Recording {
                objects,
                ..Recording::default()
            },
            EngineConfig::default(),
            1,
        )
        .await
        .unwrap(),
    );
    let id = stored_recording(&store, &rt, t.id).await;
    let (router, _kit) = app::build(
        rt.clone(),
        HttpConfig {
            rate_per_sec: 0,
            ..HttpConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    std::mem::forget(rt);
    (format!("http://{addr}"), key, id)
}

/// A finished five-minute recording filed and handed to the recordings service as the runtime
/// does with one; its id once stored.
async fn stored_recording(store: &Store, rt: &Runtime, tenant: TenantId) -> Uuid {
    let id = Uuid::new_v4();
    let path = scratch("presign").join(format!("{id}.wav"));
    write_wav(&path, RECORDING_SECS);
    let bytes = std::fs::metadata(&path).unwrap().len() as i64;
    let started = switchyard_api::store::now_ms() - i64::from(RECORDING_SECS) * 1000;
    let row = RecordingRow {
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
        ended_at_ms: Some(started + i64::from(RECORDING_SECS) * 1000),
        status: "completed".into(),
        error: None,
        duration_ms: Some(i64::from(RECORDING_SECS) * 1000),
        sample_rate: Some(RATE as i32),
        channels: Some(2),
        bytes: Some(bytes),
        silence_ratio: Some(0.0),
        spans: json!([]),
        waveform: Value::Null,
        kind: "call".into(),
        mailbox_queue: None,
        mailbox_agent: None,
    };
    store
        .insert_recordings(std::slice::from_ref(&row))
        .await
        .unwrap();
    rt.objects.spool(&[row]).await;
    let started = Instant::now();
    loop {
        if let Some(r) = store.recording_object(tenant, id).await.unwrap()
            && r.state == ObjectState::Stored
        {
            return id;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)].as_secs_f64() * 1e3
}

async fn presign_load(what: &str, base: &str, key: &str, id: Uuid, want_kind: &str) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let url = format!("{base}/v1/recordings/{id}/presigned-url");
    let first: Value = http
        .get(&url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["kind"], want_kind, "{first}");
    let total = u64::from(PRESIGN_RATE) * PRESIGN_SECS;
    let interval = Duration::from_secs_f64(1.0 / f64::from(PRESIGN_RATE));
    let lat = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (http, url, key, lat, errors) = (
            http.clone(),
            url.clone(),
            key.to_owned(),
            lat.clone(),
            errors.clone(),
        );
        tasks.spawn(async move {
            match http.get(&url).bearer_auth(&key).send().await {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                    lat.lock().unwrap().push(due.elapsed());
                }
                _ => {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        while let Some(Some(_)) = tasks.try_join_next().map(Some) {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed().as_secs_f64();
    let mut v = std::mem::take(&mut *lat.lock().unwrap());
    let n = v.len();
    println!(
        "presigned-url ({what}) at {PRESIGN_RATE}/s for {PRESIGN_SECS} s: {n} ok, {} errors, achieved {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        errors.load(std::sync::atomic::Ordering::Relaxed),
        n as f64 / elapsed,
        pct(&mut v, 0.5),
        pct(&mut v, 0.99),
        pct(&mut v, 1.0)
    );
}

async fn presign(moto: &Moto) {
    let local = scratch("presign-store");
    let (base, key, id) = server_with_recording(ObjectsConfig {
        storage: StorageConfig::Local { dir: local },
        ..ObjectsConfig::default()
    })
    .await;
    presign_load("local storage, HMAC URL", &base, &key, id, "signed").await;
    let (base, key, id) = server_with_recording(ObjectsConfig {
        storage: StorageConfig::S3(moto.s3()),
        ..ObjectsConfig::default()
    })
    .await;
    presign_load("S3, SigV4 presigned GET", &base, &key, id, "s3").await;
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let moto = Moto::start().await;
        if wants("upload") {
            upload(&moto).await;
        }
        if wants("presign") {
            presign(&moto).await;
        }
    });
    // The runtimes and switches were leaked on purpose: exit without waiting on them.
    std::process::exit(0);
}
