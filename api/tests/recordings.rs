//! Recordings in the store (issue 18): the identity rules of open and final rows, the reads by
//! call, by id and of the open rows, on both backends (`store_common::each_backend`); and
//! recordings written while the database is away, journaled and replayed: PostgreSQL behind a
//! proxy that is cut (`outage_support`, skipped without `DATABASE_URL`), SQLite locked by
//! another connection.

mod outage_support;
mod store_common;

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_api::model::TenantId;
use switchyard_api::store::{OPEN_RECORDING, RecordingRow, Store, StoreError};
use uuid::Uuid;

use outage_support::{CutProxy, PgDatabase};
use store_common::each_backend;

const T0: i64 = 1_700_000_000_000;

fn tenant() -> TenantId {
    TenantId(Uuid::new_v4())
}

/// The open row the runtime writes before a capture starts.
fn open_row(tenant: TenantId, call: Uuid, id: Uuid, started_at_ms: i64) -> RecordingRow {
    RecordingRow {
        id,
        tenant,
        call_id: call,
        leg: call,
        queue_id: 3,
        campaign_id: None,
        agents: vec![],
        caller_number: String::new(),
        mode: String::new(),
        capture: String::new(),
        fell_back: false,
        stereo: false,
        path: String::new(),
        started_at_ms,
        ended_at_ms: None,
        status: OPEN_RECORDING.into(),
        error: None,
        duration_ms: None,
        sample_rate: None,
        channels: None,
        bytes: None,
        silence_ratio: None,
        spans: json!([]),
        waveform: Value::Null,
        kind: "call".into(),
        mailbox_queue: None,
        mailbox_agent: None,
    }
}

/// The final record of the recording `open` opened, with every measurement filled in
/// (fractions that must come back bit for bit).
fn final_row(open: &RecordingRow) -> RecordingRow {
    RecordingRow {
        agents: vec![7, 9],
        caller_number: "+15550001234".into(),
        mode: "always-forced".into(),
        capture: "switch".into(),
        fell_back: true,
        stereo: true,
        path: format!("/var/lib/switchyard/recordings/{}.wav", open.id),
        ended_at_ms: Some(open.started_at_ms + 61_250),
        status: "completed".into(),
        duration_ms: Some(61_240),
        sample_rate: Some(8000),
        channels: Some(2),
        bytes: Some(1_959_724),
        silence_ratio: Some(0.123_456_789_012_345_67),
        spans: json!([{
            "kind": "masked", "start_ms": 12_000, "end_ms": 19_500,
            "by": "key 0192 (supervisor)", "ended_by": "key 0192 (supervisor)"
        }]),
        waveform: json!({
            "peak_dbfs": [-3.25, null],
            "channel_silence": [0.1, 1.0],
            "frames_per_peak": 612,
            "peaks": [[[-0.5, 0.25], [-0.125, 0.1]], [[0.0, 0.0], [0.0, 0.0]]],
        }),
        ..open.clone()
    }
}

#[tokio::test]
async fn an_open_row_is_replaced_by_the_final_record_of_its_recording() {
    each_backend(|store| async move {
        let t = tenant();
        let call = Uuid::new_v4();
        let open = open_row(t, call, Uuid::new_v4(), T0);
        store
            .insert_recordings(std::slice::from_ref(&open))
            .await
            .unwrap();
        assert_eq!(
            store.recording(t, open.id).await.unwrap(),
            Some(open.clone())
        );
        assert_eq!(store.open_recordings().await.unwrap(), vec![open.clone()]);

        let done = final_row(&open);
        store
            .insert_recordings(std::slice::from_ref(&done))
            .await
            .unwrap();
        // Every column back as written, the measurements and JSON documents included.
        assert_eq!(
            store.recording(t, open.id).await.unwrap(),
            Some(done.clone())
        );
        assert_eq!(
            store.recordings_for_call(t, call).await.unwrap(),
            vec![done]
        );
        assert!(store.open_recordings().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn an_open_row_and_its_final_record_in_one_batch_leave_the_final_record() {
    each_backend(|store| async move {
        let t = tenant();
        let open = open_row(t, Uuid::new_v4(), Uuid::new_v4(), T0);
        let done = final_row(&open);
        store
            .insert_recordings(&[open.clone(), done.clone()])
            .await
            .unwrap();
        assert_eq!(store.recording(t, open.id).await.unwrap(), Some(done));
        assert!(store.open_recordings().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn the_same_final_record_twice_and_its_open_row_after_it_are_no_ops() {
    each_backend(|store| async move {
        let t = tenant();
        let open = open_row(t, Uuid::new_v4(), Uuid::new_v4(), T0);
        let done = final_row(&open);
        store
            .insert_recordings(std::slice::from_ref(&done))
            .await
            .unwrap();
        store
            .insert_recordings(std::slice::from_ref(&done))
            .await
            .unwrap();
        // A replay that brings the open row after the final one does not reopen it.
        store
            .insert_recordings(std::slice::from_ref(&open))
            .await
            .unwrap();
        assert_eq!(
            store.recordings_for_call(t, open.call_id).await.unwrap(),
            vec![done]
        );
        assert!(store.open_recordings().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn another_record_under_a_stored_id_is_a_duplicate_and_the_batch_writes_nothing() {
    each_backend(|store| async move {
        let t = tenant();
        let open = open_row(t, Uuid::new_v4(), Uuid::new_v4(), T0);
        let done = final_row(&open);
        store
            .insert_recordings(std::slice::from_ref(&done))
            .await
            .unwrap();

        let damaged = RecordingRow {
            status: "damaged".into(),
            error: Some("truncated".into()),
            ..done.clone()
        };
        let fresh = final_row(&open_row(t, Uuid::new_v4(), Uuid::new_v4(), T0 + 5));
        let err = store
            .insert_recordings(&[fresh.clone(), damaged])
            .await
            .unwrap_err();
        match err {
            StoreError::Duplicate { what, ids } => {
                assert_eq!(what, "recording");
                assert_eq!(ids, vec![done.id.to_string()]);
            }
            other => panic!("expected a duplicate, got {other:?}"),
        }
        assert_eq!(
            store.recording(t, done.id).await.unwrap(),
            Some(done.clone())
        );
        assert_eq!(store.recording(t, fresh.id).await.unwrap(), None);

        // An open row of another recording (another call) under the stored id: also refused.
        let other_call = open_row(t, Uuid::new_v4(), done.id, T0);
        assert!(matches!(
            store.insert_recordings(&[other_call]).await,
            Err(StoreError::Duplicate {
                what: "recording",
                ..
            })
        ));
        // A final record of another recording under an open row's id does not replace it.
        let open2 = open_row(t, Uuid::new_v4(), Uuid::new_v4(), T0);
        store
            .insert_recordings(std::slice::from_ref(&open2))
            .await
            .unwrap();
        let elsewhere = RecordingRow {
            leg: Uuid::new_v4(),
            ..final_row(&open2)
        };
        assert!(matches!(
            store.insert_recordings(&[elsewhere]).await,
            Err(StoreError::Duplicate {
                what: "recording",
                ..
            })
        ));
        assert_eq!(store.recording(t, open2.id).await.unwrap(), Some(open2));
    })
    .await;
}

#[tokio::test]
async fn a_call_lists_its_recordings_oldest_first_and_only_within_its_tenant() {
    each_backend(|store| async move {
        let (a, b) = (tenant(), tenant());
        let call = Uuid::new_v4();
        let later = final_row(&open_row(a, call, Uuid::new_v4(), T0 + 2_000));
        // A callback's recording: another leg of the same call, earlier.
        let earlier = RecordingRow {
            leg: Uuid::new_v4(),
            ..open_row(a, call, Uuid::new_v4(), T0 + 1_000)
        };
        let other_call = final_row(&open_row(a, Uuid::new_v4(), Uuid::new_v4(), T0));
        // Another tenant's recording naming the same call id.
        let theirs = final_row(&open_row(b, call, Uuid::new_v4(), T0));
        store
            .insert_recordings(&[later.clone(), other_call, theirs.clone(), earlier.clone()])
            .await
            .unwrap();

        assert_eq!(
            store.recordings_for_call(a, call).await.unwrap(),
            vec![earlier, later.clone()]
        );
        assert_eq!(
            store.recordings_for_call(b, call).await.unwrap(),
            vec![theirs]
        );
        assert_eq!(store.recording(b, later.id).await.unwrap(), None);
        assert!(
            store
                .recordings_for_call(tenant(), call)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn open_recordings_lists_only_rows_still_recording_oldest_first() {
    each_backend(|store| async move {
        let (a, b) = (tenant(), tenant());
        let newer_open = open_row(a, Uuid::new_v4(), Uuid::new_v4(), T0 + 30_000);
        let older_open = open_row(b, Uuid::new_v4(), Uuid::new_v4(), T0 + 10_000);
        let closed = open_row(a, Uuid::new_v4(), Uuid::new_v4(), T0);
        let failed = RecordingRow {
            status: "failed".into(),
            error: Some("no audio".into()),
            duration_ms: None,
            sample_rate: None,
            channels: None,
            bytes: None,
            silence_ratio: None,
            waveform: Value::Null,
            ..final_row(&open_row(b, Uuid::new_v4(), Uuid::new_v4(), T0))
        };
        store
            .insert_recordings(&[
                newer_open.clone(),
                closed.clone(),
                older_open.clone(),
                failed,
            ])
            .await
            .unwrap();
        store
            .insert_recordings(&[final_row(&closed)])
            .await
            .unwrap();
        assert_eq!(
            store.open_recordings().await.unwrap(),
            vec![older_open, newer_open]
        );
    })
    .await;
}

/// Runs `f` with a guard against hanging (an outage must be answered, not waited out).
async fn answered<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"))
}

fn journal_dir(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("switchyard-{what}-{}", Uuid::new_v4().simple()))
}

/// Writes, while `store`'s database is away, the open row and then the final record of one
/// recording and the final record of `before` (whose open row was stored before the outage);
/// `restore` brings the database back. Every record must then be stored, once, as its final
/// row, with nothing left open and nothing refused.
async fn recordings_survive_an_outage<F, Fut>(store: &Store, before: RecordingRow, restore: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let t = before.tenant;
    let during = open_row(t, Uuid::new_v4(), Uuid::new_v4(), T0 + 1_000);
    for rows in [
        vec![during.clone()],
        vec![final_row(&during)],
        vec![final_row(&before)],
    ] {
        answered(
            "a recording written during the outage",
            store.insert_recordings(&rows),
        )
        .await
        .expect("journaled, not failed");
    }
    let st = store.spool_status().expect("a journal");
    assert!(st.pending_entries >= 3, "{st:?}");

    restore().await;
    assert!(
        store.journal_drained(Duration::from_secs(30)).await,
        "journal not replayed: {:?}",
        store.spool_status()
    );
    let st = store.spool_status().expect("a journal");
    assert_eq!(st.pending_entries, 0, "{st:?}");
    assert_eq!(
        (st.duplicates, st.replay_dropped, st.refused_at_bound),
        (0, 0, 0),
        "{st:?}"
    );
    for open in [&during, &before] {
        assert_eq!(
            store.recordings_for_call(t, open.call_id).await.unwrap(),
            vec![final_row(open)]
        );
    }
    assert!(store.open_recordings().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_written_while_postgres_is_away_are_stored_when_it_returns() {
    let Some(db) = PgDatabase::create().await else {
        eprintln!("skipped: DATABASE_URL is not set");
        return;
    };
    let proxy = CutProxy::start(db.server_addr()).await;
    let store = Store::connect(&db.url_via(proxy.addr()))
        .await
        .expect("connect through the proxy");
    store.migrate().await.expect("migrate");
    let dir = journal_dir("recordings-outage");
    let store = store.with_journal(&dir, 16 << 20).expect("journal opens");
    let before = open_row(tenant(), Uuid::new_v4(), Uuid::new_v4(), T0);
    store
        .insert_recordings(std::slice::from_ref(&before))
        .await
        .unwrap();

    proxy.cut().await;
    recordings_survive_an_outage(&store, before, || proxy.restore()).await;
    store.close().await;
    db.drop_now().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// SQLite's outage: its file locked by another connection (a backup, the sqlite3 shell) for
/// longer than the busy timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_written_while_sqlite_is_locked_are_stored_when_it_is_released() {
    use sqlx::Connection;
    let dir = journal_dir("recordings-sqlite");
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("switchyard.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let store = store.with_journal(&dir.join("journal"), 16 << 20).unwrap();
    let before = open_row(tenant(), Uuid::new_v4(), Uuid::new_v4(), T0);
    store
        .insert_recordings(std::slice::from_ref(&before))
        .await
        .unwrap();

    let mut locker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .unwrap();
    recordings_survive_an_outage(&store, before, || async move {
        sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
        locker.close().await.unwrap();
    })
    .await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
