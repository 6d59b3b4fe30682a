//! What the wire-level tests share: an append-only log filled by background tasks, waiting
//! (in short real time) for something to show up in it, and the race tests' queue.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_engine::config::Announcements;
use switchyard_engine::{QueueConfig, QueueId, Strategy};

/// Longest any single expectation may take.
pub const LIMIT: Duration = Duration::from_secs(15);

/// An append-only log filled by a background task; assertions read snapshots.
#[derive(Clone)]
pub struct Log<T>(Arc<Mutex<Vec<T>>>);

impl<T: Clone> Log<T> {
    pub fn new() -> Self {
        Log(Arc::new(Mutex::new(Vec::new())))
    }

    pub fn push(&self, v: T) {
        self.0.lock().unwrap().push(v);
    }

    pub fn snapshot(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }

    /// The first entry matching `f`, waiting for it.
    pub async fn wait_for(&self, what: &str, f: impl Fn(&T) -> bool) -> T {
        eventually(what, || self.snapshot().into_iter().find(|v| f(v))).await
    }
}

/// Polls `f` every 20 ms until it gives something; panics after [`LIMIT`].
pub async fn eventually<R>(what: &str, f: impl FnMut() -> Option<R>) -> R {
    eventually_within(LIMIT, what, f).await
}

pub async fn eventually_within<R>(
    limit: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<R>,
) -> R {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(r) = f() {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The queue of the race tests (over TCP and in virtual time): longest idle agent, 5 s to
/// answer, no wrap-up, music only.
pub fn race_queue(id: QueueId) -> QueueConfig {
    QueueConfig {
        id,
        name: "support".into(),
        strategy: Strategy::LongestIdleAgent,
        offer_timeout: Duration::from_secs(5),
        wrapup: Duration::ZERO,
        announcements: Announcements {
            first_after: None,
            every: None,
            ..Announcements::default()
        },
        ..QueueConfig::default()
    }
}
