//! The whole HTTP application: resource routes, the live feed, probes and metrics, the OpenAPI
//! document and Swagger UI, wrapped in the middleware stack; plus the store-backed key verifier.

use std::sync::Arc;

use axum::Router;

use crate::http::{self, ApiError, BoxFuture, HttpConfig, HttpKit, KeyVerifier, Metrics, Probes};
use crate::model::Principal;
use crate::openapi;
use crate::routes::{self, AppState};
use crate::runtime::Runtime;
use crate::store::{Store, now_ms};

/// Verifies bearer keys against the store (the kit caches the answers briefly).
#[derive(Debug, Clone)]
pub struct StoreKeys {
    store: Store,
}

impl StoreKeys {
    pub fn new(store: Store) -> StoreKeys {
        StoreKeys { store }
    }
}

impl KeyVerifier for StoreKeys {
    fn verify<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Principal>, ApiError>> {
        Box::pin(async move {
            let now = now_ms();
            let found = self
                .store
                .authenticate(key, now)
                .await
                .map_err(ApiError::from)?;
            if let Some(p) = found {
                // Best effort: a failed touch must not fail the request.
                let _ = self.store.touch_api_key(p.key_id, now).await;
            }
            Ok(found)
        })
    }
}

/// Everything `switchyard serve` answers on its HTTP port.
pub fn build(rt: Arc<Runtime>, config: HttpConfig) -> (Router, HttpKit) {
    let metrics = Metrics::new();
    // The engine's gauges; the task ends when the engine stops.
    let _gauges = rt.spawn_gauges(metrics.clone(), std::time::Duration::from_secs(5));
    let kit = HttpKit::new(
        config,
        Arc::new(StoreKeys::new(rt.store.clone())),
        metrics.clone(),
    );
    let store = rt.store.clone();
    let engine = rt.engine.clone();
    let probes = Probes::new()
        .check("database", move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        })
        .check("freeswitch", move || {
            let ready = crate::runtime::switch_readiness(&engine);
            async move { ready }
        });
    let live = http::live::router(rt.hub.clone(), rt.snapshot_fn());
    let state = AppState {
        rt,
        kit: kit.clone(),
    };
    let app = Router::new()
        .merge(routes::router(state))
        .merge(live)
        .merge(metrics.router())
        .merge(probes.router())
        // GET /openapi.json (no key) and Swagger UI under /docs.
        .merge(openapi::router(openapi::document()));
    (http::layers(app, &kit), kit)
}
