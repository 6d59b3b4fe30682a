//! A moto S3 server on loopback for tests (media's storage tests and the API's recordings
//! tests include this file with `#[path]`). moto is found as `$SWITCHYARD_MOTO` or `moto_server`
//! on PATH (`.ci/run` installs it); without it a test is skipped, except under CI (`CI` set).
#![allow(dead_code)]

pub mod relay;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto server process, killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    /// The moto binary, or None (after printing why) when it is missing outside CI.
    pub fn binary() -> Option<String> {
        let bin = std::env::var("SWITCHYARD_MOTO").unwrap_or_else(|_| "moto_server".to_owned());
        match Command::new(&bin)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(status) if status.success() => Some(bin),
            outcome => {
                let why = format!(
                    "moto is not installed ({bin}: {outcome:?}); install it with \
                     `python3 -m pip install 'moto[server]>=5,<6'` (or set SWITCHYARD_MOTO to \
                     its moto_server)"
                );
                if std::env::var_os("CI").is_some() {
                    panic!("CI must run the S3 storage tests: {why}");
                }
                eprintln!("SKIPPED the S3 storage test: {why}");
                None
            }
        }
    }

    /// Starts moto on `port` and waits until it answers HTTP.
    pub async fn start(bin: &str, port: u16) -> Self {
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        let moto = Self { child, port };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto did not listen on {addr} within a minute"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// object_store cannot create buckets: a plain PUT does (moto takes unsigned requests).
    pub async fn create_bucket(&self, bucket: &str) {
        let resp = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint()))
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "create bucket: {}",
            resp.status()
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
