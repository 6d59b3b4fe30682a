//! The running switchyard the HTTP tests talk to (fake switch, engine, API on loopback) and
//! the request helpers they share.

#![allow(dead_code)]

pub mod live;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use switchyard_api::app;
use switchyard_api::http::HttpConfig;
use switchyard_api::model::Role;
use switchyard_api::runtime::{Recording, Runtime, SwitchNode};
use switchyard_api::store::{AuditEntry, Pools, Store};
use switchyard_engine::EngineConfig;
use tokio::task::JoinHandle;

/// A running switchyard: fake switch, engine, API.
pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Store,
    pub rt: Arc<Runtime>,
    pub api: JoinHandle<()>,
    pub switch: Option<switchyard_esl::sim::SimHandle>,
}

pub fn audit<'a>() -> AuditEntry<'a> {
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
    pub async fn start(store: Store) -> Server {
        Server::start_with(
            store,
            HttpConfig {
                rate_per_sec: 0,
                ..HttpConfig::default()
            },
        )
        .await
    }

    pub async fn start_with(store: Store, http: HttpConfig) -> Server {
        Server::start_with_scenario(store, http, switchyard_esl::sim::Scenario::default()).await
    }

    /// A server whose fake switch follows `scenario` (who answers, how long customers talk).
    pub async fn start_with_scenario(
        store: Store,
        http: HttpConfig,
        scenario: switchyard_esl::sim::Scenario,
    ) -> Server {
        Server::start_full(store, http, scenario, Recording::default()).await
    }

    /// A server that records as `recording` says.
    pub async fn start_recording(store: Store, recording: Recording) -> Server {
        let http = HttpConfig {
            rate_per_sec: 0,
            ..HttpConfig::default()
        };
        Server::start_full(
            store,
            http,
            switchyard_esl::sim::Scenario::default(),
            recording,
        )
        .await
    }

    pub async fn start_full(
        store: Store,
        http: HttpConfig,
        scenario: switchyard_esl::sim::Scenario,
        recording: Recording,
    ) -> Server {
        let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let esl_addr = esl.local_addr().unwrap();
        // The fake switch sends inbound callers to the runtime's outbound listener, whose address
        // it needs before the runtime exists: a free port, picked here.
        let outbound = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let switch = switchyard_esl::sim::spawn(
            esl,
            switchyard_esl::sim::SimConfig {
                inbound_target: Some(outbound.clone()),
                scenario,
                ..switchyard_esl::sim::SimConfig::default()
            },
            1,
        );
        let rt = Runtime::start_recording(
            store.clone(),
            vec![SwitchNode {
                name: "fs1".into(),
                esl: esl_addr.to_string(),
                password: "ClueCon".into(),
            }],
            &outbound,
            recording,
            EngineConfig::default(),
            1,
        )
        .await
        .expect("runtime starts");
        let rt = Arc::new(rt);
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
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            store,
            rt,
            api,
            switch: Some(switch),
        }
    }

    pub async fn stop(mut self) {
        self.api.abort();
        if let Ok(rt) = Arc::try_unwrap(self.rt) {
            rt.shutdown().await;
        }
        if let Some(s) = self.switch.take() {
            s.shutdown().await;
        }
    }

    pub async fn tenant(&self, name: &str) -> (switchyard_api::model::TenantId, String) {
        let t = self
            .store
            .create_tenant_granted(name, &switchyard_api::grants::DialGrants::lab(), &audit())
            .await
            .unwrap();
        let (_, key) = self
            .store
            .create_api_key(Some(t.id), Role::Admin, None, "admin", None, &audit())
            .await
            .unwrap();
        (t.id, key)
    }

    /// A key of any role but `agent` (see [`Server::agent_key`]).
    pub async fn key(&self, tenant: Option<switchyard_api::model::TenantId>, role: Role) -> String {
        self.store
            .create_api_key(tenant, role, None, "k", None, &audit())
            .await
            .unwrap()
            .1
    }

    /// The store's id of an agent the API showed as `shown` (`switchyard_api::ids`).
    pub fn stored_agent(&self, shown: i64) -> i64 {
        self.rt
            .ids
            .decode(switchyard_api::ids::IdKind::Agent, shown)
            .expect("an agent id the API showed")
    }

    /// An agent key acting for `agent` (its id as the API shows it).
    pub async fn agent_key(&self, tenant: switchyard_api::model::TenantId, agent: i64) -> String {
        self.store
            .create_api_key(
                Some(tenant),
                Role::Agent,
                Some(self.stored_agent(agent)),
                "desk",
                None,
                &audit(),
            )
            .await
            .unwrap()
            .1
    }

    /// An agent key bound to no agent, as every agent key issued before migration 0003 is. The
    /// store no longer makes those: this one is made bound, then unbound behind its back.
    pub async fn legacy_agent_key(
        &self,
        tenant: switchyard_api::model::TenantId,
        agent: i64,
    ) -> String {
        let (listed, key) = self
            .store
            .create_api_key(
                Some(tenant),
                Role::Agent,
                Some(self.stored_agent(agent)),
                "old desk",
                None,
                &audit(),
            )
            .await
            .unwrap();
        let sql = "UPDATE api_keys SET agent_id = NULL WHERE id = $1";
        let id = listed.id.hyphenated().to_string();
        let changed = match self.store.pools() {
            Pools::Sqlite { writer, .. } => sqlx::query(sql)
                .bind(id)
                .execute(writer)
                .await
                .map(|r| r.rows_affected()),
            Pools::Postgres(pg) => sqlx::query(sql)
                .bind(id)
                .execute(pg)
                .await
                .map(|r| r.rows_affected()),
        };
        assert_eq!(changed.expect("unbinding the key"), 1);
        key
    }

    /// A new agent of the tenant of `admin` (an admin key), through the API; its id.
    pub async fn agent(&self, admin: &str, name: &str, contact: &str) -> i64 {
        self.agent_with(admin, name, serde_json::json!({"contact": contact}))
            .await
    }

    /// A new agent with this `config` (contact, persistent line, ...); its id.
    pub async fn agent_with(&self, admin: &str, name: &str, config: serde_json::Value) -> i64 {
        let (st, a) = self
            .call(
                "POST",
                "/v1/agents",
                Some(admin),
                Some(serde_json::json!({"name": name, "config": config})),
            )
            .await;
        assert_eq!(st, 201, "{a}");
        a["id"].as_i64().expect("an agent id")
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        key: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (
            status,
            serde_json::from_str(&resp.text().await.unwrap_or_default()).unwrap_or(Value::Null),
        )
    }
}

pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}
