//! The upload spool: finished recordings wait in a local directory until the store has them.
//! [`Backoff`] is the policy (pure: the jitter is an input); [`Uploader`] is the tokio shell
//! that takes jobs, puts them, and retries failures until they succeed.
//!
//! ```text
//!  submit(key, path) --bounded jobs--> task: pending (at most `capacity` jobs, each with a due time)
//!                                        | due: put_file
//!                                        |   ok     -> Uploaded { key, path, stored }   (dropped from pending)
//!                                        |   failed -> Failed { key, attempt, error, retry_in },
//!                                        |             due again after Backoff::delay(attempt)
//!                                        v
//!                                  bounded reports
//! ```
//!
//! A job is never dropped: a store that is down only delays it. At the bounds, work waits
//! instead of being lost: with `capacity` jobs pending the task takes no new job, so
//! [`Uploader::submit`] waits for room in the channel; with the report channel full the task
//! waits for the caller to read. Jobs are retried independently (a file that keeps failing does
//! not hold back those behind it) but put one at a time: recordings are small and the store is
//! not the bottleneck. The local file is never deleted here: the caller deletes it once it has
//! recorded the [`StoredObject`] on the recording's row. Writes are idempotent (see
//! [`super`]), so a job submitted twice, or again after a restart, does no harm.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{ObjectKey, RecordingStorage, StoredObject};
use crate::MediaError;

/// Exponential backoff with "equal jitter": the delay after the `attempt`-th failure is
/// `base * 2^(attempt - 1)`, capped at `max`, of which the first half is fixed and the second
/// half scaled by the jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(5 * 60),
        }
    }
}

impl Backoff {
    /// The wait after the `attempt`-th failed attempt (1 for the first failure; 0 is treated
    /// as 1). `jitter` is a fraction in `0.0..=1.0` from the caller's random source (outside
    /// the range, or NaN, is clamped), so the policy itself is deterministic.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        // 2^31 times any base is past any sensible max; saturate instead of overflowing.
        let doublings = attempt.saturating_sub(1).min(31);
        let full = self.base.saturating_mul(1 << doublings).min(self.max);
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        let half = full / 2;
        let upper = full - half;
        // Through f64, which can round past `upper` (and past Duration::MAX for huge values):
        // clamp instead of panicking like `mul_f64` would.
        let scaled = Duration::try_from_secs_f64(upper.as_secs_f64() * jitter)
            .unwrap_or(upper)
            .min(upper);
        half.saturating_add(scaled)
    }
}

/// A file to upload under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadJob {
    pub key: ObjectKey,
    pub path: PathBuf,
}

/// What the uploader tells its caller.
#[derive(Debug)]
pub enum UploadReport {
    /// The store has the file: record `stored` on the recording, then delete `path`.
    Uploaded {
        key: ObjectKey,
        path: PathBuf,
        stored: StoredObject,
    },
    /// Attempt number `attempt` (1-based) failed; the next one is in `retry_in`.
    Failed {
        key: ObjectKey,
        attempt: u32,
        error: MediaError,
        retry_in: Duration,
    },
}

/// The handle that submits jobs to the upload task; clone it freely. The task ends when every
/// handle is gone and every job it took has been uploaded.
#[derive(Debug, Clone)]
pub struct Uploader {
    jobs: mpsc::Sender<UploadJob>,
}

impl Uploader {
    /// Starts the upload task on the current tokio runtime. `capacity` (at least 1) bounds the
    /// job channel, the jobs the task holds for retry, and the report channel. Read the reports
    /// from a task other than the one that submits: when their channel is full uploading
    /// waits, and a submitter that waits for room while nobody reads would wait for ever.
    /// Aborting the returned handle stops the task; jobs it held are still in the spool
    /// directory, to be submitted again on the next start.
    pub fn spawn(
        storage: Arc<dyn RecordingStorage>,
        backoff: Backoff,
        capacity: usize,
    ) -> (Self, mpsc::Receiver<UploadReport>, JoinHandle<()>) {
        let capacity = capacity.max(1);
        let (jobs, job_rx) = mpsc::channel(capacity);
        let (report_tx, reports) = mpsc::channel(capacity);
        let task = tokio::spawn(run(storage, backoff, capacity, job_rx, report_tx));
        (Self { jobs }, reports, task)
    }

    /// Queues a file for upload, waiting while the queue is full.
    pub async fn submit(&self, key: ObjectKey, path: PathBuf) -> Result<(), MediaError> {
        self.jobs
            .send(UploadJob { key, path })
            .await
            .map_err(|_| MediaError::UploaderGone)
    }
}

/// A job waiting for its next attempt.
#[derive(Debug)]
struct Pending {
    job: UploadJob,
    failures: u32,
    due: Instant,
}

async fn run(
    storage: Arc<dyn RecordingStorage>,
    backoff: Backoff,
    capacity: usize,
    mut jobs: mpsc::Receiver<UploadJob>,
    reports: mpsc::Sender<UploadReport>,
) {
    // Jitter from std's per-process random hash keys: no RNG crate for one number per retry.
    let random = RandomState::new();
    let mut pending: Vec<Pending> = Vec::with_capacity(capacity);
    let mut open = true;
    loop {
        // The earliest due job; among equals the oldest (a Vec in arrival order, `min_by_key`
        // keeps the first).
        let next = pending
            .iter()
            .enumerate()
            .min_by_key(|(_, p)| p.due)
            .map(|(i, p)| (i, p.due));
        if next.is_none() && !open {
            return;
        }
        let far = Instant::now() + Duration::from_secs(24 * 3600);
        tokio::select! {
            job = jobs.recv(), if open && pending.len() < capacity => match job {
                Some(job) => pending.push(Pending { job, failures: 0, due: Instant::now() }),
                None => open = false,
            },
            () = tokio::time::sleep_until(next.map_or(far, |(_, due)| due)), if next.is_some() => {
                let Some((index, _)) = next else { continue };
                let mut job = pending.remove(index);
                let report = match storage.put_file(&job.job.key, &job.job.path).await {
                    Ok(stored) => UploadReport::Uploaded {
                        key: job.job.key,
                        path: job.job.path,
                        stored,
                    },
                    Err(error) => {
                        job.failures = job.failures.saturating_add(1);
                        let jitter = (random.hash_one((&job.job.key, job.failures)) as f64)
                            / (u64::MAX as f64);
                        let retry_in = backoff.delay(job.failures, jitter);
                        tracing::warn!(key = %job.job.key, attempt = job.failures,
                            retry_in = ?retry_in, %error, "recording upload failed");
                        let key = job.job.key.clone();
                        let attempt = job.failures;
                        job.due = Instant::now() + retry_in;
                        pending.push(job);
                        UploadReport::Failed { key, attempt, error, retry_in }
                    }
                };
                // Nobody listening is no reason to stop uploading: the objects are there for
                // whoever looks next (a restart re-submits the spool, and puts are idempotent).
                let _ = reports.send(report).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_from_base_up_to_max() {
        let backoff = Backoff {
            base: 100 * MS,
            max: 1000 * MS,
        };
        // Full jitter keeps the whole delay.
        let delays: Vec<_> = (1..=6).map(|n| backoff.delay(n, 1.0)).collect();
        assert_eq!(
            delays,
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
    }

    #[test]
    fn jitter_scales_the_upper_half_only() {
        let backoff = Backoff {
            base: 100 * MS,
            max: 1000 * MS,
        };
        assert_eq!(backoff.delay(1, 0.0), 50 * MS);
        assert_eq!(backoff.delay(1, 0.5), 75 * MS);
        assert_eq!(backoff.delay(3, 0.0), 200 * MS);
        assert_eq!(backoff.delay(9, 0.0), 500 * MS);
    }

    #[test]
    fn odd_inputs_give_bounded_delays_without_panicking() {
        let backoff = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        };
        assert_eq!(backoff.delay(0, 1.0), Duration::from_secs(1));
        assert_eq!(backoff.delay(u32::MAX, 1.0), Duration::from_secs(300));
        assert_eq!(backoff.delay(1, f64::NAN), Duration::from_millis(500));
        assert_eq!(backoff.delay(1, -3.0), Duration::from_millis(500));
        assert_eq!(backoff.delay(1, 7.0), Duration::from_secs(1));
        let huge = Backoff {
            base: Duration::MAX,
            max: Duration::MAX,
        };
        assert_eq!(huge.delay(40, 1.0), Duration::MAX);
    }
}
