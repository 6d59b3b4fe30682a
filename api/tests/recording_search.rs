//! The recordings search and transcripts over HTTP on loopback, on SQLite and PostgreSQL
//! (`store_common::each_backend`): a transcript written and read back whole, refused input
//! named by its field, full-text search, every filter, cursor paging, tenant isolation and
//! the role matrix of every route. Recording rows are written through the store as the runtime
//! writes them; everything else goes through the API.

mod server_common;
mod store_common;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::ids::IdKind;
use switchyard_api::model::{Role, TenantId};
use switchyard_api::store::{Pools, RecordingRow, Store};
use uuid::Uuid;

const T0: i64 = 1_700_000_000_000;

/// A finished recording of the tenant (agents as the API shows them). One argument a column
/// the tests vary.
#[allow(clippy::too_many_arguments)]
fn recording(
    s: &Server,
    tenant: TenantId,
    started_at_ms: i64,
    queue: i64,
    agents: &[i64],
    caller: &str,
    status: &str,
    duration_ms: Option<i64>,
) -> RecordingRow {
    let id = Uuid::new_v4();
    RecordingRow {
        id,
        tenant,
        call_id: Uuid::new_v4(),
        leg: Uuid::new_v4(),
        queue_id: queue,
        campaign_id: None,
        agents: agents.iter().map(|a| s.stored_agent(*a)).collect(),
        caller_number: caller.into(),
        mode: "always".into(),
        capture: "live".into(),
        fell_back: false,
        stereo: true,
        path: format!("/var/lib/switchyard/recordings/{id}.wav"),
        started_at_ms,
        ended_at_ms: duration_ms.map(|d| started_at_ms + d),
        status: status.into(),
        error: None,
        duration_ms,
        sample_rate: duration_ms.map(|_| 8000),
        channels: duration_ms.map(|_| 2),
        bytes: duration_ms.map(|d| 44 + d * 32),
        silence_ratio: duration_ms.map(|_| 0.25),
        spans: json!([{"kind": "paused", "start_ms": 1000, "end_ms": 2000,
                       "by": "key 1 (agent)", "ended_by": "key 1 (agent)"}]),
        waveform: json!({"peak_dbfs": [-3.0, -6.0], "peaks": [[[-1, 1]], [[-2, 2]]]}),
        kind: "call".into(),
        mailbox_queue: None,
        mailbox_agent: None,
    }
}

fn transcript(text: &str, sentiment: &str, quality: f64, tags: &[&str]) -> Value {
    json!({
        "segments": [
            {"channel": 0, "start_ms": 0, "end_ms": 1500, "text": "hello", "confidence": 0.5},
            {"speaker": "agent", "start_ms": 1500, "end_ms": 4000, "text": text},
        ],
        "sentiment": sentiment,
        "summary": format!("about {text}"),
        "quality_score": quality,
        "tags": tags,
    })
}

/// The ids of a listing, in order.
fn listed(v: &Value) -> Vec<String> {
    v["recordings"]
        .as_array()
        .unwrap_or_else(|| panic!("a listing: {v}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The tenant `acme` with agents Ana and Bo and four recordings, newest last:
/// - `a`: queue 11, Ana, +15550001, 30 s, completed; transcript "refund please", negative, 40,
///   tags refund + escalated
/// - `b`: queue 12, Bo, +15550002, 120 s, completed; transcript "great service thanks",
///   positive, 90, tag praise
/// - `c`: queue 11, Ana then Bo, +15550001, 600 s, damaged; no transcript
/// - `d`: queue 12, nobody yet, +15550003, running (no duration); no transcript
struct Acme {
    s: Server,
    tenant: TenantId,
    admin: String,
    ana: i64,
    bo: i64,
    a: String,
    b: String,
    c: String,
    d: String,
}

async fn acme(store: Store) -> Acme {
    let s = Server::start(store).await;
    let (tenant, admin) = s.tenant("acme").await;
    let ana = s.agent(&admin, "Ana", "user/1000").await;
    let bo = s.agent(&admin, "Bo", "user/1001").await;
    let mut rows = vec![
        recording(
            &s,
            tenant,
            T0 + 1000,
            11,
            &[ana],
            "+15550001",
            "completed",
            Some(30_000),
        ),
        recording(
            &s,
            tenant,
            T0 + 2000,
            12,
            &[bo],
            "+15550002",
            "completed",
            Some(120_000),
        ),
        recording(
            &s,
            tenant,
            T0 + 3000,
            11,
            &[ana, bo],
            "+15550001",
            "damaged",
            Some(600_000),
        ),
        recording(
            &s,
            tenant,
            T0 + 4000,
            12,
            &[],
            "+15550003",
            "recording",
            None,
        ),
    ];
    // b and c were campaign 5's dials.
    rows[1].campaign_id = Some(5);
    rows[2].campaign_id = Some(5);
    s.store
        .insert_recordings(&rows)
        .await
        .expect("recordings stored");
    let [a, b, c, d] = [0, 1, 2, 3].map(|i| rows[i].id.to_string());
    for (id, body) in [
        (
            &a,
            transcript("refund please", "negative", 40.0, &["refund", "escalated"]),
        ),
        (
            &b,
            transcript("great service thanks", "positive", 90.0, &["praise"]),
        ),
    ] {
        let (st, v) = s
            .call(
                "PUT",
                &format!("/v1/recordings/{id}/transcript"),
                Some(&admin),
                Some(body),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
    Acme {
        s,
        tenant,
        admin,
        ana,
        bo,
        a,
        b,
        c,
        d,
    }
}

#[tokio::test]
async fn the_sqlite_build_has_fts5() {
    let store = Store::sqlite_memory().await.expect("sqlite");
    let Pools::Sqlite { writer, .. } = store.pools() else {
        unreachable!("sqlite_memory is SQLite");
    };
    let (on,): (i64,) = sqlx::query_as("SELECT sqlite_compileoption_used('ENABLE_FTS5')")
        .fetch_one(writer)
        .await
        .expect("compile options readable");
    assert_eq!(on, 1, "libsqlite3-sys is built without FTS5");
    // And migration 0011 builds its FTS5 table on it.
    store.migrate().await.expect("migrations with FTS5");
}

/// On SQLite the FTS5 index is kept by triggers (migration 0011): after every insert, replace
/// and delete of a transcript, FTS5's own integrity check finds the index and the table agree,
/// and a deleted transcript's words find nothing.
#[tokio::test]
async fn the_sqlite_search_index_follows_every_write_and_delete_of_a_transcript() {
    let store = Store::sqlite_memory().await.expect("sqlite");
    store.migrate().await.expect("migrated");
    let f = acme(store.clone()).await;
    let Pools::Sqlite { writer, .. } = store.pools() else {
        unreachable!("sqlite_memory is SQLite");
    };
    let check = "INSERT INTO recording_transcripts_fts (recording_transcripts_fts, rank) \
                 VALUES ('integrity-check', 1)";
    sqlx::query(check)
        .execute(writer)
        .await
        .expect("index in step after inserts");
    let path = format!("/v1/recordings/{}/transcript", f.a);
    let (st, v) =
        f.s.call(
            "PUT",
            &path,
            Some(&f.admin),
            Some(transcript("exchange", "neutral", 50.0, &[])),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    sqlx::query(check)
        .execute(writer)
        .await
        .expect("index in step after a replace");
    // A retention job deletes rows with plain SQL, knowing nothing of the index.
    sqlx::query("DELETE FROM recording_transcripts WHERE recording_id = $1")
        .bind(&f.a)
        .execute(writer)
        .await
        .expect("deleted");
    sqlx::query(check)
        .execute(writer)
        .await
        .expect("index in step after a delete");
    for q in ["exchange", "refund"] {
        let (_, v) =
            f.s.call(
                "GET",
                &format!("/v1/recordings?q={q}"),
                Some(&f.admin),
                None,
            )
            .await;
        assert_eq!(listed(&v), Vec::<String>::new(), "q={q}");
    }
    f.s.stop().await;
}

#[tokio::test]
async fn a_transcript_is_read_back_as_written_and_a_second_put_replaces_it_whole() {
    store_common::each_backend(|store| async move {
        let f = acme(store).await;
        let (s, k) = (&f.s, f.admin.as_str());
        let path = format!("/v1/recordings/{}/transcript", f.a);
        let (st, t) = s.call("GET", &path, Some(k), None).await;
        assert_eq!(st, 200, "{t}");
        assert_eq!(t["recording_id"], f.a.as_str());
        assert_eq!(
            t["segments"],
            json!([
                {"channel": 0, "start_ms": 0, "end_ms": 1500, "text": "hello", "confidence": 0.5},
                {"speaker": "agent", "start_ms": 1500, "end_ms": 4000, "text": "refund please"},
            ])
        );
        assert_eq!(t["sentiment"], "negative");
        assert_eq!(t["summary"], "about refund please");
        assert_eq!(t["quality_score"], 40.0);
        assert_eq!(t["tags"], json!(["refund", "escalated"]));
        assert!(t["updated_at_ms"].as_i64().is_some_and(|v| v > T0), "{t}");

        // Replaced whole: fields left out are gone, the old words no longer found.
        let (st, put) = s
            .call(
                "PUT",
                &path,
                Some(k),
                Some(json!({"segments": [
                    {"speaker": "caller", "start_ms": 0, "end_ms": 900, "text": "cancel my order"}
                ]})),
            )
            .await;
        assert_eq!(st, 200, "{put}");
        let (_, t) = s.call("GET", &path, Some(k), None).await;
        assert_eq!(t, put, "GET answers what PUT stored");
        assert_eq!(t["sentiment"], Value::Null);
        assert_eq!(t["quality_score"], Value::Null);
        assert_eq!(t["tags"], json!([]));
        let (_, v) = s
            .call("GET", "/v1/recordings?q=refund", Some(k), None)
            .await;
        assert_eq!(listed(&v), Vec::<String>::new());
        let (_, v) = s
            .call("GET", "/v1/recordings?q=cancel", Some(k), None)
            .await;
        assert_eq!(listed(&v), vec![f.a.clone()]);

        // One recording's metadata says it has one; the others do not.
        let (st, r) = s
            .call("GET", &format!("/v1/recordings/{}", f.a), Some(k), None)
            .await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["has_transcript"], true);
        assert_eq!(r["format"], "wav");
        assert_eq!(r["duration_ms"], 30_000);
        assert_eq!(r["channels"], 2);
        assert_eq!(r["sample_rate"], 8000);
        assert_eq!(r["silence_ratio"], 0.25);
        assert_eq!(r["spans"][0]["by"], "key 1 (agent)", "who paused: {r}");
        assert_eq!(r["waveform"]["peak_dbfs"], json!([-3.0, -6.0]));
        assert_eq!(r["agents"], json!([f.ana]));
        let (_, r) = s
            .call("GET", &format!("/v1/recordings/{}", f.c), Some(k), None)
            .await;
        assert_eq!(r["has_transcript"], false);
        let (st, e) = s
            .call(
                "GET",
                &format!("/v1/recordings/{}/transcript", f.c),
                Some(k),
                None,
            )
            .await;
        assert_eq!((st, error_code(&e)), (404, "not_found"), "{e}");

        // Each write is audited, without the conversation's text.
        let audit = s
            .store
            .list_audit(Some(f.tenant), 100)
            .await
            .expect("audit");
        let writes: Vec<_> = audit
            .iter()
            .filter(|e| e.action == "recording.transcript" && e.object_id == f.a)
            .collect();
        assert_eq!(writes.len(), 2, "{audit:?}");
        assert!(
            !writes[0].detail.to_string().contains("cancel"),
            "{:?}",
            writes[0]
        );
        assert_eq!(writes[0].detail["segments"], 1);
        f.s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_refused_transcript_names_its_field_and_writes_nothing() {
    store_common::each_backend(|store| async move {
        let f = acme(store).await;
        let (s, k) = (&f.s, f.admin.as_str());
        let seg = |extra: Value| {
            let mut v = json!({"channel": 1, "start_ms": 10, "end_ms": 20, "text": "hi"});
            if let (Value::Object(m), Value::Object(x)) = (&mut v, extra) {
                m.extend(x);
            }
            v
        };
        let many: Vec<Value> = (0..10_001).map(|_| seg(json!({}))).collect();
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"segments": [seg(json!({"end_ms": 5}))]}),
                "segments[0].end_ms",
            ),
            (
                json!({"segments": [seg(json!({})), seg(json!({"start_ms": -1}))]}),
                "segments[1].start_ms",
            ),
            (
                json!({"segments": [{"start_ms": 0, "end_ms": 1, "text": "x"}]}),
                "segments[0].speaker",
            ),
            (
                json!({"segments": [seg(json!({"channel": 2}))]}),
                "segments[0].channel",
            ),
            (
                json!({"segments": [seg(json!({"speaker": ""}))]}),
                "segments[0].speaker",
            ),
            (
                json!({"segments": [seg(json!({"text": "x".repeat(10_001)}))]}),
                "segments[0].text",
            ),
            (
                json!({"segments": [seg(json!({"text": "a\u{0}b"}))]}),
                "segments[0].text",
            ),
            (
                json!({"segments": [seg(json!({"confidence": 1.01}))]}),
                "segments[0].confidence",
            ),
            (
                json!({"segments": [], "quality_score": 100.01}),
                "quality_score",
            ),
            (
                json!({"segments": [], "quality_score": -1}),
                "quality_score",
            ),
            (json!({"segments": [], "sentiment": "happy"}), "sentiment"),
            (json!({"segments": [], "tags": ["a", "b", "a"]}), "tags[2]"),
            (
                json!({"segments": [], "tags": ["x".repeat(101)]}),
                "tags[0]",
            ),
            (json!({"segments": [], "summary": "bell\u{7}"}), "summary"),
            (json!({"segments": many}), "segments"),
        ];
        let path = format!("/v1/recordings/{}/transcript", f.c);
        for (body, field) in cases {
            let (st, e) = s.call("PUT", &path, Some(k), Some(body)).await;
            assert!(st == 422 || st == 413, "{field}: {st} {e}");
            if st == 422 {
                assert_eq!(e["error"]["field"], field, "{e}");
            }
        }
        let (st, e) = s
            .call(
                "PUT",
                &path,
                Some(k),
                Some(json!({"segments": [], "extra": 1})),
            )
            .await;
        assert_eq!(st, 422, "an unknown field: {e}");
        let (st, _) = s.call("GET", &path, Some(k), None).await;
        assert_eq!(st, 404, "nothing was written");
        let (_, v) = s
            .call("GET", "/v1/recordings?has_transcript=true", Some(k), None)
            .await;
        assert_eq!(listed(&v), vec![f.b.clone(), f.a.clone()]);
        f.s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn full_text_search_finds_a_recording_by_a_word_of_its_transcript_and_no_other() {
    store_common::each_backend(|store| async move {
        let f = acme(store).await;
        let (s, k) = (&f.s, f.admin.as_str());
        let cases: &[(&str, Vec<&String>)] = &[
            ("refund", vec![&f.a]),
            ("REFUND", vec![&f.a]),
            ("refund%20please", vec![&f.a]),
            ("please%20refund", vec![&f.a]),
            ("refund%20thanks", vec![]),
            ("service", vec![&f.b]),
            // Whole words: no prefix, no stemming.
            ("serv", vec![]),
            ("refunds", vec![]),
            // A word both transcripts hold.
            ("hello", vec![&f.b, &f.a]),
            // FTS5 and tsquery syntax are plain words here.
            ("refund%20OR%20service", vec![]),
            ("%22refund%22", vec![&f.a]),
            ("refund*", vec![&f.a]),
        ];
        for (q, want) in cases {
            let (st, v) = s
                .call("GET", &format!("/v1/recordings?q={q}"), Some(k), None)
                .await;
            assert_eq!(st, 200, "q={q}: {v}");
            let want: Vec<String> = want.iter().map(|id| (*id).clone()).collect();
            assert_eq!(listed(&v), want, "q={q}");
        }
        for q in ["", "%20%3F!%20", &"w%20".repeat(17), "a%00b"] {
            let (st, e) = s
                .call("GET", &format!("/v1/recordings?q={q}"), Some(k), None)
                .await;
            assert_eq!(st, 422, "q={q}: {e}");
            assert_eq!(e["error"]["field"], "q", "{e}");
        }
        f.s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn each_filter_narrows_the_listing_to_the_recordings_that_match() {
    store_common::each_backend(|store| async move {
        let f = acme(store).await;
        let (s, k) = (&f.s, f.admin.as_str());
        let ids = &s.rt.ids;
        let (q11, q12) = (ids.encode(IdKind::Queue, 11), ids.encode(IdKind::Queue, 12));
        let c5 = ids.encode(IdKind::Campaign, 5);
        let (a, b, c, d) = (&f.a, &f.b, &f.c, &f.d);
        let cases: Vec<(String, Vec<&String>)> = vec![
            (String::new(), vec![d, c, b, a]),
            (format!("from_ms={}", T0 + 2000), vec![d, c, b]),
            (format!("to_ms={}", T0 + 3000), vec![b, a]),
            (
                format!("from_ms={}&to_ms={}", T0 + 2000, T0 + 3000),
                vec![b],
            ),
            (format!("queue_id={q11}"), vec![c, a]),
            (format!("queue_id={q12}"), vec![d, b]),
            (format!("campaign_id={c5}"), vec![c, b]),
            (format!("campaign_id={c5}&queue_id={q11}"), vec![c]),
            ("campaign_id=7".into(), vec![]),
            (format!("agent_id={}", f.ana), vec![c, a]),
            (format!("agent_id={}", f.bo), vec![c, b]),
            // An id never shown matches nothing.
            ("agent_id=7".into(), vec![]),
            ("caller_number=%2B15550001".into(), vec![c, a]),
            // Exact, not a prefix.
            ("caller_number=%2B1555000".into(), vec![]),
            ("status=damaged".into(), vec![c]),
            ("status=recording".into(), vec![d]),
            ("min_duration_ms=100000".into(), vec![c, b]),
            ("max_duration_ms=60000".into(), vec![a]),
            (
                "min_duration_ms=100000&max_duration_ms=200000".into(),
                vec![b],
            ),
            ("min_duration_ms=0".into(), vec![c, b, a]),
            ("has_transcript=true".into(), vec![b, a]),
            ("has_transcript=false".into(), vec![d, c]),
            ("sentiment=positive".into(), vec![b]),
            ("sentiment=negative".into(), vec![a]),
            ("sentiment=mixed".into(), vec![]),
            ("min_quality=50".into(), vec![b]),
            ("min_quality=40".into(), vec![b, a]),
            ("tag=refund".into(), vec![a]),
            ("tag=escalated".into(), vec![a]),
            ("tag=Refund".into(), vec![]),
            (format!("queue_id={q11}&has_transcript=true"), vec![a]),
            (format!("agent_id={}&q=hello", f.bo), vec![b]),
        ];
        for (query, want) in &cases {
            let (st, v) = s
                .call("GET", &format!("/v1/recordings?{query}"), Some(k), None)
                .await;
            assert_eq!(st, 200, "{query}: {v}");
            let want: Vec<String> = want.iter().map(|id| (*id).clone()).collect();
            assert_eq!(listed(&v), want, "{query}");
        }
        // What a result list shows beside each recording.
        let (_, v) = s.call("GET", "/v1/recordings", Some(k), None).await;
        let first_a = &v["recordings"][3];
        assert_eq!(first_a["has_transcript"], true);
        assert_eq!(first_a["sentiment"], "negative");
        assert_eq!(first_a["quality_score"], 40.0);
        assert_eq!(first_a["tags"], json!(["refund", "escalated"]));
        assert_eq!(first_a["queue_id"], q11);
        assert_eq!(first_a["campaign_id"], Value::Null);
        assert_eq!(v["recordings"][1]["campaign_id"], c5);
        assert!(first_a.get("waveform").is_none(), "{first_a}");
        assert_eq!(v["recordings"][0]["tags"], json!([]));

        let refused: &[(&str, &str, u16)] = &[
            ("to_ms=1&from_ms=2", "to_ms", 422),
            (
                "min_duration_ms=5&max_duration_ms=4",
                "max_duration_ms",
                422,
            ),
            ("min_duration_ms=-1", "min_duration_ms", 422),
            ("min_quality=101", "min_quality", 422),
            ("caller_number=%00", "caller_number", 422),
            ("tag=a%01", "tag", 422),
            ("limit=0", "limit", 422),
            ("cursor=zz", "cursor", 422),
            ("sentiment=happy", "sentiment", 400),
            ("status=lost", "status", 400),
            ("has_transcript=maybe", "has_transcript", 400),
            ("nope=1", "", 400),
        ];
        for (query, field, status) in refused {
            let (st, e) = s
                .call("GET", &format!("/v1/recordings?{query}"), Some(k), None)
                .await;
            assert_eq!(st, *status, "{query}: {e}");
            if !field.is_empty() {
                assert_eq!(e["error"]["field"], *field, "{query}: {e}");
            }
        }
        f.s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn paging_with_the_cursor_returns_every_recording_exactly_once_newest_first() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, k) = s.tenant("acme").await;
        // Three recordings per start time: the id breaks the ties.
        let rows: Vec<RecordingRow> = (0..25)
            .map(|i| {
                recording(
                    &s,
                    tenant,
                    T0 + (i / 3) * 1000,
                    11,
                    &[],
                    "+1555",
                    "completed",
                    Some(1000),
                )
            })
            .collect();
        s.store.insert_recordings(&rows).await.expect("stored");
        let mut want: Vec<(i64, String)> = rows
            .iter()
            .map(|r| (r.started_at_ms, r.id.to_string()))
            .collect();
        want.sort_by(|x, y| y.cmp(x));
        let want: Vec<String> = want.into_iter().map(|(_, id)| id).collect();

        let mut got = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/recordings?limit=4&cursor={c}"),
                None => "/v1/recordings?limit=4".to_owned(),
            };
            let (st, v) = s.call("GET", &path, Some(&k), None).await;
            assert_eq!(st, 200, "{v}");
            let page = listed(&v);
            assert!(page.len() <= 4);
            got.extend(page);
            pages += 1;
            assert!(pages <= 7, "more pages than 25 rows make");
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(got, want, "every row once, newest first, ties by id");
        assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 25);
        // More than the bound is cut to it, never refused.
        let (st, v) = s
            .call("GET", "/v1/recordings?limit=100000", Some(&k), None)
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(listed(&v).len(), 25);
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn another_tenants_recording_is_404_on_every_route_and_never_listed() {
    store_common::each_backend(|store| async move {
        let f = acme(store).await;
        let s = &f.s;
        let (globex, gk) = s.tenant("globex").await;
        let g = recording(
            s,
            globex,
            T0 + 5000,
            11,
            &[],
            "+15550001",
            "completed",
            Some(30_000),
        );
        s.store
            .insert_recordings(std::slice::from_ref(&g))
            .await
            .expect("stored");
        let gpath = format!("/v1/recordings/{}/transcript", g.id);
        let (st, v) = s
            .call(
                "PUT",
                &gpath,
                Some(&gk),
                Some(transcript("refund now", "neutral", 1.0, &["refund"])),
            )
            .await;
        assert_eq!(st, 200, "{v}");

        for (theirs, key, mine) in [
            (
                g.id.to_string(),
                f.admin.as_str(),
                vec![f.d.clone(), f.c.clone(), f.b.clone(), f.a.clone()],
            ),
            (f.a.clone(), gk.as_str(), vec![g.id.to_string()]),
        ] {
            for (method, path, body) in [
                ("GET", format!("/v1/recordings/{theirs}"), None),
                ("GET", format!("/v1/recordings/{theirs}/transcript"), None),
                (
                    "PUT",
                    format!("/v1/recordings/{theirs}/transcript"),
                    Some(transcript("overwritten", "mixed", 0.0, &[])),
                ),
            ] {
                let (st, e) = s.call(method, &path, Some(key), body).await;
                assert_eq!(
                    (st, error_code(&e)),
                    (404, "not_found"),
                    "{method} {path}: {e}"
                );
            }
            for query in [
                "",
                "?q=refund",
                "?tag=refund",
                "?caller_number=%2B15550001",
                "?has_transcript=true",
            ] {
                let (_, v) = s
                    .call("GET", &format!("/v1/recordings{query}"), Some(key), None)
                    .await;
                let got = listed(&v);
                assert!(!got.contains(&theirs), "{query}: {v}");
                assert!(got.iter().all(|id| mine.contains(id)), "{query}: {v}");
            }
        }
        // Neither PUT wrote anything.
        let (_, t) = s.call("GET", &gpath, Some(&gk), None).await;
        assert_eq!(t["sentiment"], "neutral", "{t}");
        let (_, t) = s
            .call(
                "GET",
                &format!("/v1/recordings/{}/transcript", f.a),
                Some(&f.admin),
                None,
            )
            .await;
        assert_eq!(t["sentiment"], "negative", "{t}");
        f.s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn every_recording_route_answers_each_role_as_the_matrix_says() {
    store_common::each_backend(|store| async move {
        let f = acme(store).await;
        let s = &f.s;
        let keys = [
            ("admin", f.admin.clone()),
            ("supervisor", s.key(Some(f.tenant), Role::Supervisor).await),
            ("ana", s.agent_key(f.tenant, f.ana).await),
            ("read-only", s.key(Some(f.tenant), Role::ReadOnly).await),
            ("unbound agent", s.legacy_agent_key(f.tenant, f.bo).await),
            ("platform", s.key(None, Role::PlatformAdmin).await),
        ];
        // `a` is Ana's recording (her own), `b` Bo's (another agent's).
        let (own, other) = (&f.a, &f.b);
        let body = || {
            Some(transcript(
                "refund please",
                "negative",
                40.0,
                &["refund", "escalated"],
            ))
        };
        // (method, path, key, status)
        let matrix: Vec<(&str, String, &str, u16)> = vec![
            ("GET", "/v1/recordings".into(), "admin", 200),
            ("GET", "/v1/recordings".into(), "supervisor", 200),
            ("GET", "/v1/recordings".into(), "ana", 200),
            ("GET", "/v1/recordings".into(), "read-only", 200),
            ("GET", "/v1/recordings".into(), "unbound agent", 200),
            ("GET", "/v1/recordings".into(), "platform", 403),
            ("GET", format!("/v1/recordings/{own}"), "admin", 200),
            ("GET", format!("/v1/recordings/{own}"), "supervisor", 200),
            ("GET", format!("/v1/recordings/{own}"), "ana", 200),
            ("GET", format!("/v1/recordings/{other}"), "ana", 404),
            ("GET", format!("/v1/recordings/{own}"), "read-only", 200),
            ("GET", format!("/v1/recordings/{own}"), "unbound agent", 404),
            ("GET", format!("/v1/recordings/{own}"), "platform", 403),
            (
                "GET",
                format!("/v1/recordings/{own}/transcript"),
                "admin",
                200,
            ),
            (
                "GET",
                format!("/v1/recordings/{own}/transcript"),
                "supervisor",
                200,
            ),
            (
                "GET",
                format!("/v1/recordings/{own}/transcript"),
                "ana",
                200,
            ),
            (
                "GET",
                format!("/v1/recordings/{other}/transcript"),
                "ana",
                404,
            ),
            (
                "GET",
                format!("/v1/recordings/{own}/transcript"),
                "read-only",
                200,
            ),
            (
                "GET",
                format!("/v1/recordings/{own}/transcript"),
                "unbound agent",
                404,
            ),
            (
                "GET",
                format!("/v1/recordings/{own}/transcript"),
                "platform",
                403,
            ),
            (
                "PUT",
                format!("/v1/recordings/{own}/transcript"),
                "admin",
                200,
            ),
            (
                "PUT",
                format!("/v1/recordings/{own}/transcript"),
                "supervisor",
                200,
            ),
            (
                "PUT",
                format!("/v1/recordings/{own}/transcript"),
                "ana",
                403,
            ),
            (
                "PUT",
                format!("/v1/recordings/{other}/transcript"),
                "ana",
                403,
            ),
            (
                "PUT",
                format!("/v1/recordings/{own}/transcript"),
                "read-only",
                403,
            ),
            (
                "PUT",
                format!("/v1/recordings/{own}/transcript"),
                "unbound agent",
                403,
            ),
            (
                "PUT",
                format!("/v1/recordings/{own}/transcript"),
                "platform",
                403,
            ),
        ];
        for (method, path, who, want) in &matrix {
            let key = &keys
                .iter()
                .find(|(n, _)| n == who)
                .expect("a key of the matrix")
                .1;
            let b = if *method == "PUT" { body() } else { None };
            let (st, v) = s.call(method, path, Some(key), b).await;
            assert_eq!(st, *want, "{method} {path} as {who}: {v}");
        }
        // What each reader's listing holds: an agent only its own agent's recordings (and the
        // caller's number in full only where its agent took the call), read-only masked.
        let key = |who: &str| keys.iter().find(|(n, _)| *n == who).map(|(_, k)| k.clone());
        let (_, v) = s
            .call("GET", "/v1/recordings", key("ana").as_deref(), None)
            .await;
        assert_eq!(listed(&v), vec![f.c.clone(), f.a.clone()]);
        assert_eq!(v["recordings"][1]["caller_number"], "+15550001");
        let (_, v) = s
            .call(
                "GET",
                &format!("/v1/recordings?agent_id={}", f.bo),
                key("ana").as_deref(),
                None,
            )
            .await;
        assert_eq!(listed(&v), vec![f.c.clone()], "narrowed within its own");
        let (_, v) = s
            .call(
                "GET",
                "/v1/recordings",
                key("unbound agent").as_deref(),
                None,
            )
            .await;
        assert_eq!(listed(&v), Vec::<String>::new());
        let (_, v) = s
            .call("GET", "/v1/recordings", key("read-only").as_deref(), None)
            .await;
        assert_eq!(listed(&v).len(), 4);
        assert_eq!(v["recordings"][3]["caller_number"], "+******01", "{v}");
        let (_, r) = s
            .call(
                "GET",
                &format!("/v1/recordings/{}", f.a),
                key("read-only").as_deref(),
                None,
            )
            .await;
        assert_eq!(r["caller_number"], "+******01", "{r}");
        f.s.stop().await;
    })
    .await;
}
