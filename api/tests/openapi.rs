//! The OpenAPI document against the server that serves it: every route is described and every
//! description is served (a), and the schemathesis check (b) — generated requests from the
//! document, on a real server over loopback, with no 5xx and answers that match the document.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_api::app;
use switchyard_api::http::HttpConfig;
use switchyard_api::ids::IdKind;
use switchyard_api::model::{Role, TenantId};
use switchyard_api::openapi;
use switchyard_api::runtime::{Runtime, SwitchConfig};
use switchyard_api::store::{AuditEntry, RecordingRow, Store};
use switchyard_engine::EngineConfig;
use tokio::task::JoinHandle;

/// Every operation the server answers, kept by hand: the routes of `routes::*` (mounted from
/// their own `#[utoipa::path]`), the kit's (`http::live`, `http::probes`, `http::metrics`) and
/// the document itself. Swagger UI (`/docs`, `/docs/`, `/docs/{*rest}`) and the pages served for
/// browsers (`/wallboard`, `/agent`, `/web/assets/{name}`, and their sessions at `/web/session`,
/// cookie-authenticated) are the only things served and not described.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/queues"),
    ("POST", "/v1/queues"),
    ("GET", "/v1/queues/{id}"),
    ("PATCH", "/v1/queues/{id}"),
    ("DELETE", "/v1/queues/{id}"),
    ("GET", "/v1/queues/{id}/members"),
    ("POST", "/v1/queues/{id}/members"),
    ("DELETE", "/v1/queues/{id}/members"),
    ("GET", "/v1/queues/{id}/stats"),
    ("GET", "/v1/analytics/overview"),
    ("GET", "/v1/analytics/agents"),
    ("GET", "/v1/analytics/queues"),
    ("GET", "/v1/queues/{id}/calls"),
    ("POST", "/v1/queues/{id}/pause"),
    ("POST", "/v1/queues/{id}/resume"),
    ("GET", "/v1/agents"),
    ("POST", "/v1/agents"),
    ("GET", "/v1/agents/{id}"),
    ("PATCH", "/v1/agents/{id}"),
    ("DELETE", "/v1/agents/{id}"),
    ("GET", "/v1/agents/{id}/state"),
    ("PUT", "/v1/agents/{id}/state"),
    ("GET", "/v1/agents/{id}/skills"),
    ("PUT", "/v1/agents/{id}/skills"),
    ("POST", "/v1/agents/{id}/monitor"),
    ("GET", "/v1/skills"),
    ("POST", "/v1/skills"),
    ("DELETE", "/v1/skills/{id}"),
    ("GET", "/v1/calls"),
    ("GET", "/v1/calls/{id}"),
    ("GET", "/v1/calls/{id}/journey"),
    ("GET", "/v1/webhooks"),
    ("POST", "/v1/webhooks"),
    ("GET", "/v1/webhooks/{id}"),
    ("PATCH", "/v1/webhooks/{id}"),
    ("DELETE", "/v1/webhooks/{id}"),
    ("POST", "/v1/webhooks/{id}/rotate-secret"),
    ("POST", "/v1/webhooks/{id}/test"),
    ("GET", "/v1/webhooks/{id}/deliveries"),
    ("POST", "/v1/webhooks/{id}/replay"),
    ("POST", "/v1/webhooks/{id}/messages/{message_id}/resend"),
    ("POST", "/v1/calls/{id}/assign"),
    ("POST", "/v1/calls/{id}/move"),
    ("PUT", "/v1/calls/{id}/priority"),
    ("POST", "/v1/calls/{id}/disposition"),
    ("POST", "/v1/calls/{id}/transfer"),
    ("POST", "/v1/calls/{id}/preview/accept"),
    ("POST", "/v1/calls/{id}/preview/skip"),
    ("POST", "/v1/agents/{id}/sign-in-links"),
    ("POST", "/v1/calls/{id}/recording"),
    ("GET", "/v1/calls/{id}/recordings"),
    ("PUT", "/v1/recordings/upload/{file}"),
    ("GET", "/v1/recordings"),
    ("GET", "/v1/recordings/{id}"),
    ("GET", "/v1/recordings/{id}/transcript"),
    ("PUT", "/v1/recordings/{id}/transcript"),
    ("GET", "/v1/recordings/{id}/presigned-url"),
    ("GET", "/v1/recordings/{id}/audio"),
    ("GET", "/v1/recordings/{id}/download"),
    ("DELETE", "/v1/recordings/{id}"),
    ("PUT", "/v1/recordings/{id}/legal-hold"),
    ("GET", "/v1/voicemail"),
    ("GET", "/v1/voicemail/{id}"),
    ("PATCH", "/v1/voicemail/{id}"),
    ("DELETE", "/v1/voicemail/{id}"),
    ("GET", "/v1/recording-retention"),
    ("PUT", "/v1/recording-retention"),
    ("POST", "/v1/recording-retention/sweep"),
    ("GET", "/v1/schedules"),
    ("POST", "/v1/schedules"),
    ("GET", "/v1/schedules/{id}"),
    ("PUT", "/v1/schedules/{id}"),
    ("DELETE", "/v1/schedules/{id}"),
    ("GET", "/v1/schedules/{id}/status"),
    ("GET", "/v1/ivr-menus"),
    ("POST", "/v1/ivr-menus"),
    ("GET", "/v1/ivr-menus/{id}"),
    ("PUT", "/v1/ivr-menus/{id}"),
    ("DELETE", "/v1/ivr-menus/{id}"),
    ("GET", "/v1/flows"),
    ("POST", "/v1/flows"),
    ("GET", "/v1/flows/{id}"),
    ("PUT", "/v1/flows/{id}"),
    ("DELETE", "/v1/flows/{id}"),
    ("GET", "/v1/numbers"),
    ("POST", "/v1/numbers"),
    ("GET", "/v1/numbers/default"),
    ("PUT", "/v1/numbers/default"),
    ("DELETE", "/v1/numbers/default"),
    ("GET", "/v1/numbers/{id}"),
    ("PUT", "/v1/numbers/{id}"),
    ("DELETE", "/v1/numbers/{id}"),
    ("GET", "/v1/campaigns"),
    ("POST", "/v1/campaigns"),
    ("GET", "/v1/campaigns/{id}"),
    ("PATCH", "/v1/campaigns/{id}"),
    ("DELETE", "/v1/campaigns/{id}"),
    ("POST", "/v1/campaigns/{id}/start"),
    ("POST", "/v1/campaigns/{id}/pause"),
    ("POST", "/v1/campaigns/{id}/resume"),
    ("POST", "/v1/campaigns/{id}/stop"),
    ("GET", "/v1/campaigns/{id}/contacts"),
    ("POST", "/v1/campaigns/{id}/contacts"),
    ("GET", "/v1/campaigns/{id}/attempts"),
    ("GET", "/v1/campaigns/{id}/stats"),
    ("GET", "/v1/campaigns/{id}/dnc"),
    ("POST", "/v1/campaigns/{id}/dnc"),
    ("DELETE", "/v1/campaigns/{id}/dnc"),
    ("GET", "/v1/dnc"),
    ("POST", "/v1/dnc"),
    ("DELETE", "/v1/dnc"),
    ("GET", "/v1/api-keys"),
    ("POST", "/v1/api-keys"),
    ("GET", "/v1/audit"),
    ("POST", "/v1/analytics/export"),
    ("DELETE", "/v1/api-keys/{id}"),
    ("GET", "/v1/display-tokens"),
    ("POST", "/v1/display-tokens"),
    ("DELETE", "/v1/display-tokens/{id}"),
    ("GET", "/v1/wallboard/settings"),
    ("PUT", "/v1/wallboard/settings"),
    ("GET", "/v1/platform-admin/tenants"),
    ("POST", "/v1/platform-admin/tenants"),
    ("GET", "/v1/platform-admin/tenants/{id}"),
    ("PATCH", "/v1/platform-admin/tenants/{id}"),
    ("POST", "/v1/platform-admin/tenants/{id}/api-keys"),
    ("GET", "/v1/platform-admin/tenants/{id}/grants"),
    ("PUT", "/v1/platform-admin/tenants/{id}/grants"),
    ("GET", "/v1/live"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// A running switchyard: fake switch, engine, API (as in `tests/api.rs`).
struct Server {
    addr: SocketAddr,
    http: reqwest::Client,
    store: Store,
    rt: Arc<Runtime>,
    api: JoinHandle<()>,
    switch: Option<switchyard_esl::sim::SimHandle>,
}

fn audit<'a>() -> AuditEntry<'a> {
    AuditEntry {
        tenant: None,
        key_id: None,
        action: "test",
        object_kind: "test",
        object_id: String::new(),
        detail: Value::Null,
    }
}

impl Server {
    async fn start() -> Server {
        let store = Store::sqlite_memory().await.unwrap();
        store.migrate().await.unwrap();
        let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let esl_addr = esl.local_addr().unwrap();
        // Inbound callers go to the runtime's outbound listener, whose address the fake switch
        // needs before the runtime exists: a free port, picked here.
        let outbound = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let switch = switchyard_esl::sim::spawn(
            esl,
            switchyard_esl::sim::SimConfig {
                inbound_target: Some(outbound.clone()),
                ..switchyard_esl::sim::SimConfig::default()
            },
            1,
        );
        let rt = Runtime::start(
            store.clone(),
            SwitchConfig {
                esl: esl_addr.to_string(),
                password: "ClueCon".into(),
                outbound_listen: outbound,
            },
            EngineConfig::default(),
            1,
        )
        .await
        .expect("runtime starts");
        let rt = Arc::new(rt);
        let http = HttpConfig {
            // Generated requests come fast; 429s would only hide the handlers.
            rate_per_sec: 0,
            ..HttpConfig::default()
        };
        let (router, _kit) = app::build(rt.clone(), http);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let api = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Server {
            addr,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            store,
            rt,
            api,
            switch: Some(switch),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn key(&self, tenant: Option<TenantId>, role: Role) -> String {
        self.store
            .create_api_key(tenant, role, None, "k", None, &audit())
            .await
            .unwrap()
            .1
    }

    /// A tenant with an admin key, one skill, one queue and one agent (ids 1), and callers
    /// waiting in the queue, so generated requests reach the handlers' inner paths (live calls,
    /// waiting callers, an agent on a call once it is made available) and not only their 404s.
    async fn seed(&self) -> (String, String) {
        let t = self
            .store
            .create_tenant_granted("acme", &switchyard_api::grants::DialGrants::lab(), &audit())
            .await
            .unwrap();
        let admin = self.key(Some(t.id), Role::Admin).await;
        let platform = self.key(None, Role::PlatformAdmin).await;
        // The store numbers each of these 1; the API shows them through `switchyard_api::ids`.
        let ids = &self.rt.ids;
        let (skill, queue, agent) = (ids.skill(1), ids.queue(1), ids.agent(1));
        for (path, body) in [
            ("/v1/skills".to_owned(), json!({"name": "spanish"})),
            (
                "/v1/queues".to_owned(),
                json!({"name": "sales", "config": {"numbers": ["5000"]}}),
            ),
            (
                "/v1/agents".to_owned(),
                json!({"name": "Ana", "config": {"contact": "user/1000", "skills": [{"skill": skill, "level": 5}]}}),
            ),
            (
                format!("/v1/queues/{queue}/members"),
                json!({"agent_id": agent}),
            ),
            // Inbound routing: a schedule, a stored menu, a flow using them, a number to it.
            (
                "/v1/schedules".to_owned(),
                json!({"name": "hours", "config": {"time_zone": "UTC", "weekly": {"monday": [{"start": "09:00", "end": "17:00"}]}}}),
            ),
            (
                "/v1/ivr-menus".to_owned(),
                json!({"name": "main", "config": {
                    "greet_long": "main.wav", "timeout_ms": 5000, "inter_digit_timeout_ms": 2000,
                    "max_failures": 3, "max_timeouts": 3,
                    "entries": [{"keys": {"exact": "1"}, "action": {"kind": "step", "step": "sales"}}],
                    "on_max_failures": {"kind": "step", "step": "sales"},
                    "on_max_timeouts": {"kind": "step", "step": "sales"}}}),
            ),
            (
                "/v1/flows".to_owned(),
                json!({"name": "front door", "config": {
                "fallback": {"queue": queue.to_string()},
                "steps": [
                    {"kind": "schedule", "id": "hours", "schedule": ids.encode(IdKind::Schedule, 1).to_string(), "open": "greet", "closed": "sales"},
                    {"kind": "menu", "id": "greet", "menu": ids.encode(IdKind::IvrMenu, 1).to_string()},
                    {"kind": "queue", "id": "sales", "queue": queue.to_string()}
                ]}}),
            ),
            (
                "/v1/numbers".to_owned(),
                json!({"number": "+15550100100", "flow": ids.encode(IdKind::Flow, 1)}),
            ),
        ] {
            let resp = self
                .http
                .post(self.url(&path))
                .bearer_auth(&admin)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 201, "seeding {path}");
        }
        let switch = self.switch.as_ref().unwrap();
        for n in 0..3 {
            switch
                .place_inbound_call(switchyard_esl::sim::InboundCall {
                    caller_number: format!("555000{n}"),
                    caller_name: "Caller".into(),
                    destination: "5000".into(),
                    patience: None,
                    talk_time: None,
                    dtmf: None,
                })
                .await
                .expect("the fake switch places the call");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let waiting: Value = self
                .http
                .get(self.url(&format!("/v1/queues/{queue}/calls")))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if waiting["calls"].as_array().is_some_and(|c| c.len() == 3) {
                break;
            }
            assert!(Instant::now() < deadline, "callers never queued: {waiting}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Two finished recordings of Ana's (agent 1, queue 1), for the recordings routes.
        let rows: Vec<RecordingRow> = (0..2)
            .map(|n| RecordingRow {
                id: uuid::Uuid::new_v4(),
                tenant: t.id,
                call_id: uuid::Uuid::new_v4(),
                leg: uuid::Uuid::new_v4(),
                queue_id: 1,
                campaign_id: None,
                agents: vec![1],
                caller_number: format!("555000{n}"),
                mode: "always".into(),
                capture: "live".into(),
                fell_back: false,
                stereo: true,
                path: String::new(),
                started_at_ms: 1_700_000_000_000 + n,
                ended_at_ms: Some(1_700_000_060_000 + n),
                status: "completed".into(),
                error: None,
                duration_ms: Some(60_000),
                sample_rate: Some(8000),
                channels: Some(2),
                bytes: Some(1_920_044),
                silence_ratio: Some(0.5),
                spans: json!([]),
                waveform: Value::Null,
                kind: "call".into(),
                mailbox_queue: None,
                mailbox_agent: None,
            })
            .collect();
        self.store.insert_recordings(&rows).await.unwrap();
        // Two voicemail messages, in queue 1's box and in Ana's, for the voicemail routes.
        let messages: Vec<RecordingRow> = rows
            .iter()
            .enumerate()
            .map(|(n, r)| RecordingRow {
                id: uuid::Uuid::new_v4(),
                call_id: uuid::Uuid::new_v4(),
                leg: uuid::Uuid::new_v4(),
                agents: vec![],
                stereo: false,
                channels: Some(1),
                kind: "voicemail".into(),
                mailbox_queue: (n == 0).then_some(1),
                mailbox_agent: (n == 1).then_some(1),
                ..r.clone()
            })
            .collect();
        self.store.insert_recordings(&messages).await.unwrap();
        (admin, platform)
    }

    async fn stop(mut self) {
        self.api.abort();
        if let Ok(rt) = Arc::try_unwrap(self.rt) {
            rt.shutdown().await;
        }
        if let Some(s) = self.switch.take() {
            s.shutdown().await;
        }
    }
}

/// (METHOD, path) of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("path item") {
            let m = method.to_ascii_uppercase();
            if METHODS.contains(&m.as_str()) {
                out.insert((m, path.clone()));
            } else {
                assert!(
                    ["parameters", "summary", "description"].contains(&method.as_str()),
                    "{path}: unexpected member {method}"
                );
            }
        }
    }
    out
}

/// `path` with each `{param}` replaced by a value of the parameter's type.
fn concrete(doc: &Value, method: &str, path: &str) -> String {
    let op = &doc["paths"][path][method.to_ascii_lowercase()];
    let mut out = path.to_owned();
    for p in op["parameters"].as_array().into_iter().flatten() {
        if p["in"] != "path" {
            continue;
        }
        let name = p["name"].as_str().unwrap();
        let value = match (p["schema"]["type"].as_str(), p["schema"]["format"].as_str()) {
            (Some("integer"), _) => "1".to_owned(),
            (Some("string"), Some("uuid")) => uuid::Uuid::new_v4().to_string(),
            // A recording's file name (the upload route).
            (Some("string"), None) if name == "file" => format!("{}.wav", uuid::Uuid::new_v4()),
            // A webhook message's id (`webhook-id`).
            (Some("string"), None) if name == "message_id" => {
                format!("msg_{}", uuid::Uuid::new_v4().simple())
            }
            other => panic!("{method} {path}: path parameter {name} of type {other:?}"),
        };
        out = out.replace(&format!("{{{name}}}"), &value);
    }
    assert!(
        !out.contains('{'),
        "{method} {path}: undescribed path parameter"
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_describes_exactly_the_routes_served() {
    let doc = serde_json::to_value(openapi::document()).unwrap();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let described = operations(&doc);
    assert_eq!(
        described.difference(&listed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "described but not in ROUTES"
    );
    assert_eq!(
        listed.difference(&described).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in ROUTES but not described"
    );
    let ids: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    assert_eq!(ids.len(), listed.len(), "one distinct operationId each");

    let s = Server::start().await;
    // The document is served as built, without a key.
    let resp = s.http.get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let served: Value = resp.json().await.unwrap();
    assert_eq!(served, doc);

    // Every described operation is routed: without a key it answers 401 if the document says
    // it needs one, and the router's own answers (404 "no such resource", 405) never come.
    for (method, path) in &described {
        let op = &doc["paths"][path.as_str()][method.to_ascii_lowercase()];
        let public = op["security"] == json!([]);
        let url = s.url(&concrete(&doc, method, path));
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = s.http.request(m, &url).send().await.unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if public {
            assert_eq!(status, 200, "{method} {path} is public: {body}");
        } else {
            assert_eq!(status, 401, "{method} {path} needs a key: {body}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
        // Every answer the operation gave is one it describes.
        assert!(
            op["responses"].get(status.to_string()).is_some(),
            "{method} {path}: {status} is not described"
        );
    }
    // And the methods a path does not describe are not served.
    let paths: BTreeSet<&String> = described.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in METHODS {
            if described.contains(&(method.to_owned(), path.clone())) {
                continue;
            }
            let some_method = described.iter().find(|(_, p)| p == path).unwrap();
            let url = s.url(&concrete(&doc, &some_method.0, path));
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let resp = s.http.request(m, &url).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 405, "{method} {path} is served");
        }
    }
    // Swagger UI: /docs sends browsers to /docs/, which is the UI pointing at the document.
    let resp = s.http.get(s.url("/docs")).send().await.unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert_eq!(resp.headers()["location"], "/docs/");
    let resp = s.http.get(s.url("/docs/")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers().get("content-security-policy").is_none(),
        "the UI runs scripts: the kit's CSP must not apply under /docs"
    );
    assert!(resp.text().await.unwrap().contains("swagger-ui-bundle.js"));
    let resp = s
        .http
        .get(s.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "the vendored assets are served"
    );
    let resp = s
        .http
        .get(s.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("/openapi.json"));
    s.stop().await;
}

/// The schemathesis CLI, or None (with the reason) when it is not installed.
fn schemathesis() -> Option<String> {
    let bin = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".to_owned());
    match Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => Some(bin),
        Ok(out) => {
            panic!(
                "{bin} --version failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        }
        Err(e) => {
            let why = format!(
                "schemathesis is not installed ({bin}: {e}); install it with \
                 `python3 -m pip install --user schemathesis` (or set SCHEMATHESIS to its path)"
            );
            if std::env::var_os("CI").is_some() {
                panic!("CI must run the schemathesis check: {why}");
            }
            eprintln!("SKIPPED the schemathesis check: {why}");
            None
        }
    }
}

/// Real ids for generated requests to use half of the time (schemathesis "dictionaries"):
/// random ids alone would only ever reach the 404s.
struct Known {
    /// Queue, agent, skill, schedule, IVR menu, flow and number ids.
    ids: Vec<i64>,
    /// Calls waiting in the queue.
    calls: Vec<String>,
    /// Recordings the seed stored.
    recordings: Vec<String>,
    /// Voicemail messages the seed stored.
    voicemail: Vec<String>,
    tenants: Vec<String>,
}

impl Known {
    fn config(&self) -> String {
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ids: Vec<String> = self.ids.iter().map(i64::to_string).collect();
        format!(
            r#"# The live feed never ends: read its first event (the snapshot), then hang up.
max-stream-events = 1

[dictionaries.ids]
values = [{ids}]

[dictionaries.calls]
values = [{calls}]

[dictionaries.tenants]
values = [{tenants}]

[dictionaries.recordings]
values = [{recordings}]

[dictionaries.voicemail]
values = [{voicemail}]

[parameters]
"query.agent_id" = {{ dictionary = "ids", probability = 0.5 }}
"body.agent_id" = {{ dictionary = "ids", probability = 0.5 }}

[[operations]]
include-path-regex = '^/v1/(queues|agents|skills|schedules|ivr-menus|flows|numbers)/\{{id\}}'
parameters = {{ "path.id" = {{ dictionary = "ids", probability = 0.5 }} }}

[[operations]]
include-path-regex = '^/v1/calls/\{{id\}}'
parameters = {{ "path.id" = {{ dictionary = "calls", probability = 0.5 }} }}

[[operations]]
include-path-regex = '^/v1/platform-admin/tenants/\{{id\}}'
parameters = {{ "path.id" = {{ dictionary = "tenants", probability = 0.5 }} }}

[[operations]]
include-path-regex = '^/v1/recordings/\{{id\}}'
parameters = {{ "path.id" = {{ dictionary = "recordings", probability = 0.5 }} }}

[[operations]]
include-path-regex = '^/v1/voicemail/\{{id\}}'
parameters = {{ "path.id" = {{ dictionary = "voicemail", probability = 0.5 }} }}
"#,
            ids = ids.join(", "),
            calls = list(&self.calls),
            recordings = list(&self.recordings),
            voicemail = list(&self.voicemail),
            tenants = list(&self.tenants),
        )
    }
}

/// One schemathesis run against `server` with `key`, over the operations `filter` selects.
/// Returns whether it passed, and its output.
async fn run_schemathesis(
    bin: String,
    server: &Server,
    known: &Known,
    key: &str,
    filter: &[&str],
) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-schemathesis-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("schemathesis.toml");
    std::fs::write(&config, known.config()).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(server.url("/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {key}")])
        // No 5xx, and every answer (status, content type, body, headers) as documented.
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance",
        ])
        // Bounded: 30 cases per operation and phase, about 20 s in all on 2 cores.
        .args(["--max-examples", "30", "--seed", "1"])
        // One worker: CPython 3.11's `ast.parse` is not safe across the threads hypothesis
        // describes strategies from ("AST constructor recursion depth mismatch").
        .args(["--workers", "1", "--request-timeout", "10"])
        // No example database left behind in the working directory.
        .args(["--generation-database", "none"])
        .args(["--no-color", "--report-dir"])
        .arg(dir.join("report"))
        .args(filter)
        .current_dir(&dir)
        .env("PYTHONUNBUFFERED", "1");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("schemathesis runs");
    std::fs::remove_dir_all(&dir).ok();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_and_no_answer_the_document_does_not_describe() {
    let Some(bin) = schemathesis() else {
        return;
    };
    let s = Server::start().await;
    let (admin, platform) = s.seed().await;
    let waiting: Value = s
        .http
        .get(s.url(&format!("/v1/queues/{}/calls", s.rt.ids.queue(1))))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenants: Value = s
        .http
        .get(s.url("/v1/platform-admin/tenants"))
        .bearer_auth(&platform)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recordings: Value = s
        .http
        .get(s.url("/v1/recordings"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let voicemail: Value = s
        .http
        .get(s.url("/v1/voicemail"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The queue, agent, skill and routing documents the seed made, as the API shows them.
    let known = Known {
        voicemail: voicemail["voicemail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect(),
        recordings: recordings["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect(),
        ids: vec![
            s.rt.ids.queue(1),
            s.rt.ids.agent(1),
            s.rt.ids.skill(1),
            s.rt.ids.encode(IdKind::Schedule, 1),
            s.rt.ids.encode(IdKind::IvrMenu, 1),
            s.rt.ids.encode(IdKind::Flow, 1),
            s.rt.ids.encode(IdKind::Number, 1),
        ],
        calls: waiting["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect(),
        tenants: tenants["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect(),
    };
    let started = Instant::now();
    // A tenant admin can do everything but the platform's routes.
    let (ok, out) = run_schemathesis(
        bin.clone(),
        &s,
        &known,
        &admin,
        &["--exclude-path-regex", "^/v1/platform-admin/"],
    )
    .await;
    println!("{out}");
    assert!(ok, "schemathesis (tenant admin) failed:\n{out}");
    // Last: a generated PATCH may disable the tenant (and with it the admin key).
    let (ok, out) = run_schemathesis(
        bin,
        &s,
        &known,
        &platform,
        &["--include-path-regex", "^/v1/platform-admin/"],
    )
    .await;
    println!("{out}");
    assert!(ok, "schemathesis (platform admin) failed:\n{out}");
    println!("schemathesis took {:?}", started.elapsed());
    s.stop().await;
}
