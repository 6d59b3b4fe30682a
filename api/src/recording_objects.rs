//! The recordings service: every finished recording's audio goes from its spool file (where
//! the capture or the upload route left it) to storage (`switchyard_media::storage`: a local
//! directory, or S3-compatible object storage), and its row (`recording_objects`, migration
//! 0012) says where it is. Deletions (the API's, retention's) go through here too.
//!
//! ```text
//!   final recording row with audio ─► spool row ('spooled', written first) ─► Uploader
//!   Uploader: Uploaded ─► row 'stored' (location, SHA-256, bytes) ─► spool file removed
//!                         ─► live `recording.completed`
//!             Failed   ─► attempts and last error on the row; retried with backoff for ever
//!   final recording row without audio ─► live `recording.failed`
//!   start: every 'spooled' row submitted again, every 'deleting' one finished
//!   delete: row 'deleting' (audited) ─► object deleted ─► spool file removed ─► 'deleted'
//! ```
//!
//! Nothing is lost when storage is down: the spool file stays until the object is written, the
//! row says so, and a restart takes the row up again. An object is written once; a retry (or a
//! second submission after a restart) of the same bytes is taken as done (see the storage
//! module), so submitting twice does no harm.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchyard_media::storage::{
    Backoff, ObjectKey, RecordingStorage, Storage, StorageConfig, UploadReport, Uploader,
};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::http::live::{LiveHub, LiveMessage};
use crate::ids::IdCodec;
use crate::model::TenantId;
use crate::store::{
    AuditEntry, ObjectRow, ObjectSpool, ObjectState, RecordingRow, Store, StoreError,
};

/// Uploads waiting at once; past it, spooling waits (the recordings stay on disk meanwhile).
const UPLOAD_QUEUE: usize = 10_000;
/// How often a store write of the service is tried before it is left to the next start.
const STORE_TRIES: u32 = 5;

/// Where recordings are kept, and under which key prefix.
#[derive(Clone, Debug)]
pub struct ObjectsConfig {
    pub storage: StorageConfig,
    /// The first part of every key: `<prefix>/<tenant>/<recording>.wav`.
    pub prefix: String,
    pub backoff: Backoff,
    /// How often the tenants' retention is applied (`None`: never, only by the CLI).
    pub retention_every: Option<Duration>,
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        ObjectsConfig {
            storage: StorageConfig::Local {
                dir: "recordings/store".into(),
            },
            prefix: "recordings".into(),
            backoff: Backoff::default(),
            retention_every: Some(Duration::from_secs(3600)),
        }
    }
}

/// The running service. Cheap to clone.
#[derive(Clone)]
pub struct Objects {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Arc<Storage>,
    uploader: Uploader,
    prefix: String,
    store: Store,
    /// Live events show ids as the API does.
    ids: IdCodec,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects")
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

impl Objects {
    /// Opens the storage and starts the uploader; takes up what the last run left (spooled
    /// uploads, deletions half done).
    pub async fn start(
        store: Store,
        config: &ObjectsConfig,
        hub: LiveHub,
        ids: IdCodec,
    ) -> Result<(Objects, JoinHandle<()>), ObjectsError> {
        let storage = Arc::new(Storage::open(&config.storage)?);
        let dyn_storage: Arc<dyn RecordingStorage> = storage.clone();
        let (uploader, reports, _task) = Uploader::spawn(dyn_storage, config.backoff, UPLOAD_QUEUE);
        let objects = Objects {
            inner: Arc::new(Inner {
                storage,
                uploader,
                prefix: config.prefix.clone(),
                store: store.clone(),
                ids,
            }),
        };
        let reports_task = tokio::spawn(report_loop(objects.clone(), reports, hub));
        objects.resume().await?;
        let sweeper = config
            .retention_every
            .map(|every| tokio::spawn(retention_loop(objects.clone(), every)));
        let task = tokio::spawn(async move {
            let _ = reports_task.await;
            if let Some(s) = sweeper {
                s.abort();
            }
        });
        Ok((objects, task))
    }

    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// The key a recording of `tenant` is stored under.
    pub fn key(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<ObjectKey, switchyard_media::MediaError> {
        ObjectKey::new(
            &self.inner.prefix,
            &tenant.0.hyphenated().to_string(),
            &id.hyphenated().to_string(),
        )
    }

    /// Finished recordings just filed: those with audio are spooled (row first) and handed to
    /// the uploader.
    pub async fn spool(&self, rows: &[RecordingRow]) {
        let spools: Vec<ObjectSpool> = rows
            .iter()
            .filter(|r| matches!(r.status.as_str(), "completed" | "damaged") && !r.path.is_empty())
            .filter_map(|r| {
                let key = self.key(r.tenant, r.id).ok()?;
                Some(ObjectSpool {
                    recording_id: r.id,
                    tenant: r.tenant,
                    object_key: key.as_str().to_owned(),
                    spool_path: r.path.clone(),
                })
            })
            .collect();
        if spools.is_empty() {
            return;
        }
        // Written before the upload: if this fails, the next start finds the recordings
        // without a row and spools them then (`Store::pending_objects`).
        if let Err(e) = retry_store(|| self.inner.store.spool_objects(&spools)).await {
            warn!(error = %e, "recordings not spooled now; the next start takes them up");
            return;
        }
        for s in spools {
            // A recording filed again (a replay after a restart) may be stored or deleted
            // already, its spool file gone: only one still spooled is uploaded.
            if let Ok(Some(row)) = self.inner.store.recording_object_any(s.recording_id).await
                && row.state != ObjectState::Spooled
            {
                continue;
            }
            self.submit(s.tenant, s.recording_id, PathBuf::from(s.spool_path))
                .await;
        }
    }

    async fn submit(&self, tenant: TenantId, id: Uuid, path: PathBuf) {
        let key = match self.key(tenant, id) {
            Ok(k) => k,
            Err(e) => return warn!(recording = %id, error = %e, "no object key"),
        };
        if let Err(e) = self.inner.uploader.submit(key, path).await {
            warn!(recording = %id, error = %e, "the uploader is gone; the next start uploads it");
        }
    }

    /// What the last run left: uploads to make, deletions to finish.
    async fn resume(&self) -> Result<(), StoreError> {
        let prefix = self.inner.prefix.clone();
        let pending = self
            .inner
            .store
            .pending_objects(move |tenant, id| {
                ObjectKey::new(
                    &prefix,
                    &tenant.0.hyphenated().to_string(),
                    &id.hyphenated().to_string(),
                )
                .ok()
                .map(|k| k.as_str().to_owned())
            })
            .await?;
        let (mut uploads, mut deletions) = (0, 0);
        for row in pending {
            match row.state {
                ObjectState::Spooled => {
                    uploads += 1;
                    self.submit(row.tenant, row.recording_id, PathBuf::from(&row.spool_path))
                        .await;
                }
                ObjectState::Deleting => {
                    deletions += 1;
                    if let Err(e) = self.finish_delete(&row).await {
                        warn!(recording = %row.recording_id, error = %e, "deletion not finished; the next start tries again");
                    }
                }
                ObjectState::Stored | ObjectState::Deleted => {}
            }
        }
        if uploads + deletions > 0 {
            info!(uploads, deletions, "recordings taken up from the last run");
        }
        Ok(())
    }

    /// The second half of a deletion (its row says `deleting`): the object, the spool file,
    /// then the row. Each step is idempotent, so a crash half-way is finished by the next run.
    pub async fn finish_delete(&self, row: &ObjectRow) -> Result<(), ObjectsError> {
        let key = self.key(row.tenant, row.recording_id)?;
        self.inner.storage.delete(&key).await?;
        remove_file(Path::new(&row.spool_path)).await?;
        self.inner.store.object_deleted(row.recording_id).await?;
        Ok(())
    }

    /// Deletes the audio the tenants' retention has passed (each recording's campaign rule,
    /// else its queue's, else the tenant's days), oldest first, at most `batch` per tenant;
    /// recordings on legal hold are skipped. Each deletion is audited
    /// (`recording.retention_delete`) and written before it is made, so a crash half-way is
    /// finished by the next start. `apply` false: only says what it would delete.
    pub async fn sweep_retention(
        &self,
        now_ms: i64,
        apply: bool,
        batch: i64,
    ) -> Result<Vec<ObjectRow>, ObjectsError> {
        self.sweep(None, now_ms, apply, batch).await
    }

    /// [`Objects::sweep_retention`] for one tenant.
    pub async fn sweep_tenant(
        &self,
        tenant: TenantId,
        now_ms: i64,
        apply: bool,
        batch: i64,
    ) -> Result<Vec<ObjectRow>, ObjectsError> {
        self.sweep(Some(tenant), now_ms, apply, batch).await
    }

    async fn sweep(
        &self,
        only: Option<TenantId>,
        now_ms: i64,
        apply: bool,
        batch: i64,
    ) -> Result<Vec<ObjectRow>, ObjectsError> {
        let store = &self.inner.store;
        let mut swept = Vec::new();
        let tenants = match only {
            Some(t) => vec![t],
            None => store.tenants_with_retention().await?,
        };
        for tenant in tenants {
            for past in store.objects_past_retention(tenant, now_ms, batch).await? {
                let row = past.object;
                if apply {
                    let entry = AuditEntry {
                        tenant: Some(tenant),
                        key_id: None,
                        action: "recording.retention_delete",
                        object_kind: "recording",
                        object_id: row.recording_id.to_string(),
                        detail: json!({ "retention_days": past.days, "rule": past.rule }),
                    };
                    if let Ok(r) = store.begin_delete(tenant, row.recording_id, &entry).await?
                        && r.state == ObjectState::Deleting
                    {
                        self.finish_delete(&r).await?;
                    }
                }
                swept.push(row);
            }
        }
        Ok(swept)
    }

    /// Where a recording's audio can be read on this host now: the stored object of a local
    /// storage, or the spool file while it waits for its upload. `None`: it is elsewhere (S3)
    /// or gone.
    pub fn local_file(&self, row: &ObjectRow) -> Option<PathBuf> {
        match (row.state, self.inner.storage.as_ref()) {
            (ObjectState::Spooled, _) => Some(PathBuf::from(&row.spool_path)),
            (ObjectState::Stored, Storage::Local(dir)) => {
                let key = self.key(row.tenant, row.recording_id).ok()?;
                Some(dir.file_path(&key))
            }
            _ => None,
        }
    }

    /// A presigned GET of a stored object (S3); `None` for local storage or an object not
    /// stored.
    pub async fn presign(
        &self,
        row: &ObjectRow,
        expires: Duration,
    ) -> Result<Option<String>, ObjectsError> {
        if row.state != ObjectState::Stored {
            return Ok(None);
        }
        let key = self.key(row.tenant, row.recording_id)?;
        Ok(self.inner.storage.presign_get(&key, expires).await?)
    }
}

/// Takes the uploader's reports: rows updated, spool files removed, the live feed told.
async fn report_loop(
    objects: Objects,
    mut reports: tokio::sync::mpsc::Receiver<UploadReport>,
    hub: LiveHub,
) {
    while let Some(report) = reports.recv().await {
        match report {
            UploadReport::Uploaded { key, path, stored } => {
                let Some(id) = recording_of(&key) else {
                    continue;
                };
                let sha = stored.sha256_hex();
                let bytes = i64::try_from(stored.bytes).unwrap_or(i64::MAX);
                let store = &objects.inner.store;
                let done =
                    retry_store(|| store.object_stored(id, &stored.location, &sha, bytes)).await;
                match done {
                    Ok(_) => {
                        if !same_file(&path, objects.local_file_of(&key).as_deref())
                            && let Err(e) = remove_file(&path).await
                        {
                            debug!(recording = %id, error = %e, "spool file not removed");
                        }
                        publish_completed(&objects, &hub, id).await;
                    }
                    // The row still says spooled: the next start uploads it again, which
                    // finds the same bytes stored and completes the row.
                    Err(e) => warn!(recording = %id, error = %e, "stored, but its row not updated"),
                }
            }
            UploadReport::Failed {
                key,
                attempt,
                error,
                retry_in,
            } => {
                let Some(id) = recording_of(&key) else {
                    continue;
                };
                warn!(recording = %id, attempt, %error, ?retry_in, "recording upload failed; retrying");
                if let Err(e) = objects
                    .inner
                    .store
                    .object_attempt_failed(id, attempt, &error.to_string())
                    .await
                {
                    debug!(recording = %id, error = %e, "upload attempt not noted");
                }
            }
        }
    }
}

impl Objects {
    /// The stored object's own file, on local storage.
    fn local_file_of(&self, key: &ObjectKey) -> Option<PathBuf> {
        match self.inner.storage.as_ref() {
            Storage::Local(dir) => Some(dir.file_path(key)),
            Storage::S3(_) => None,
        }
    }
}

/// Applies retention every `every` (the first time one period after the start).
async fn retention_loop(objects: Objects, every: Duration) {
    const BATCH: i64 = 1000;
    loop {
        tokio::time::sleep(every).await;
        match objects
            .sweep_retention(crate::store::now_ms(), true, BATCH)
            .await
        {
            Ok(swept) if !swept.is_empty() => {
                info!(
                    deleted = swept.len(),
                    "recordings past their tenant's retention deleted"
                );
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "retention not applied; trying again next time"),
        }
    }
}

/// `recording.completed`: the audio is stored, with what the AI service and the portal need.
async fn publish_completed(objects: &Objects, hub: &LiveHub, id: Uuid) {
    let store = &objects.inner.store;
    let ids = &objects.inner.ids;
    let (Ok(Some(object)), Ok(Some(rec))) = (
        store.recording_object_any(id).await,
        store.recording_any(id).await,
    ) else {
        return;
    };
    if rec.kind == crate::store::VOICEMAIL {
        // A message is playable once stored: its box hears of it now, not when recorded.
        hub.publish(LiveMessage {
            tenant: object.tenant,
            kind: "voicemail.received",
            data: json!({
                "id": id,
                "call_id": rec.call_id,
                "mailbox": match (rec.mailbox_queue, rec.mailbox_agent) {
                    (_, Some(a)) => json!({ "agent": ids.agent(a) }),
                    (q, None) => json!({ "queue": q.map(|q| ids.queue(q)) }),
                },
                "caller_number": rec.caller_number,
                "duration_ms": rec.duration_ms,
                "left_at_ms": rec.started_at_ms,
            }),
        });
        return;
    }
    hub.publish(LiveMessage {
        tenant: object.tenant,
        kind: "recording.completed",
        data: json!({
            "id": id,
            "call_id": rec.call_id,
            "queue_id": ids.queue(rec.queue_id),
            "agents": rec.agents.iter().map(|a| ids.agent(*a)).collect::<Vec<_>>(),
            "status": rec.status,
            "duration_ms": rec.duration_ms,
            "channels": rec.channels,
            "sample_rate": rec.sample_rate,
            "bytes": object.bytes,
            "sha256": object.sha256,
            "started_at_ms": rec.started_at_ms,
            "ended_at_ms": rec.ended_at_ms,
        }),
    });
}

/// `recording.failed`: a recording ended without audio (the reason in `error`); ids as the
/// API shows them.
pub fn publish_failed(hub: &LiveHub, ids: &IdCodec, rows: &[RecordingRow]) {
    // A voicemail that failed is a caller who left no message, not a recording that broke.
    for r in rows
        .iter()
        .filter(|r| r.status == "failed" && r.kind != crate::store::VOICEMAIL)
    {
        hub.publish(LiveMessage {
            tenant: r.tenant,
            kind: "recording.failed",
            data: json!({
                "id": r.id,
                "call_id": r.call_id,
                "queue_id": ids.queue(r.queue_id),
                "agents": r.agents.iter().map(|a| ids.agent(*a)).collect::<Vec<_>>(),
                "error": r.error,
                "started_at_ms": r.started_at_ms,
                "ended_at_ms": r.ended_at_ms,
            }),
        });
    }
}

/// The recording a key names (`<prefix>/<tenant>/<id>.wav`).
fn recording_of(key: &ObjectKey) -> Option<Uuid> {
    let file = key.as_str().rsplit('/').next()?;
    Uuid::parse_str(file.strip_suffix(".wav")?).ok()
}

fn same_file(a: &Path, b: Option<&Path>) -> bool {
    b.is_some_and(|b| a == b)
}

async fn remove_file(path: &Path) -> std::io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

async fn retry_store<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt >= STORE_TRIES => return Err(e),
            Err(e) => {
                debug!(error = %e, attempt, "store write retried");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
}

/// What can go wrong in the service.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    #[error("storage: {0}")]
    Storage(#[from] switchyard_media::MediaError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("spool file: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::live::{LiveConfig, LiveItem};

    fn row(status: &str, kind: &str) -> RecordingRow {
        RecordingRow {
            id: Uuid::from_u128(1),
            tenant: TenantId(Uuid::from_u128(2)),
            call_id: Uuid::from_u128(3),
            leg: Uuid::from_u128(3),
            queue_id: 7,
            campaign_id: None,
            agents: vec![5],
            caller_number: "+15550100".into(),
            mode: "always".into(),
            capture: "live".into(),
            fell_back: false,
            stereo: true,
            path: String::new(),
            started_at_ms: 1,
            ended_at_ms: Some(2),
            status: status.into(),
            error: Some("no audio".into()),
            duration_ms: None,
            sample_rate: None,
            channels: None,
            bytes: None,
            silence_ratio: None,
            spans: serde_json::Value::Array(Vec::new()),
            waveform: serde_json::Value::Null,
            kind: kind.into(),
            mailbox_queue: None,
            mailbox_agent: None,
        }
    }

    #[tokio::test]
    async fn a_failed_recording_is_announced_with_the_ids_the_api_shows_and_a_failed_message_is_not()
     {
        let hub = LiveHub::new(LiveConfig::default());
        let ids = IdCodec::new(b"test secret");
        let tenant = TenantId(Uuid::from_u128(2));
        let snapshot: crate::http::live::SnapshotFn =
            std::sync::Arc::new(|_| serde_json::Value::Null);
        let mut sub = hub
            .subscribe(tenant, None, snapshot, crate::http::sight::Sight::Whole)
            .unwrap();
        assert!(matches!(sub.next().await, Some(LiveItem::Snapshot { .. })));
        publish_failed(
            &hub,
            &ids,
            &[
                row("failed", crate::store::VOICEMAIL),
                row("completed", crate::store::CALL_RECORDING),
                row("failed", crate::store::CALL_RECORDING),
            ],
        );
        let Some(LiveItem::Event(ev)) = sub.next().await else {
            panic!("an event");
        };
        assert_eq!(ev.kind(), "recording.failed");
        let data: serde_json::Value = serde_json::from_slice(&ev.data_json()).unwrap();
        assert_eq!(data["queue_id"], ids.queue(7));
        assert_eq!(data["agents"], serde_json::json!([ids.agent(5)]));
        // Only the one call recording: nothing else is pending.
        assert_eq!(hub.last_seq(tenant), ev.seq());
    }
}
