//! The whole HTTP application: resource routes, the live feed, probes and metrics, the OpenAPI
//! document and Swagger UI, wrapped in the middleware stack; plus the store-backed key verifier.

use std::sync::Arc;

use axum::Router;

use std::time::{Duration, UNIX_EPOCH};

use crate::http::{
    self, ApiError, BoxFuture, HttpConfig, HttpKit, KeyVerdict, KeyVerifier, Metrics, Probes,
};
use crate::openapi;
use crate::routes::{self, AppState};
use crate::runtime::Runtime;
use crate::store::{KeyCheck, Store, now_ms};

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
    fn verify<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyVerdict, ApiError>> {
        Box::pin(async move {
            let now = now_ms();
            let found = match self.store.check_api_key(key, now).await {
                Ok(found) => found,
                Err(e) => {
                    // An outage seen here sends writes to the journal and starts probing.
                    self.store.note_error(&e);
                    return Err(ApiError::from(e));
                }
            };
            Ok(match found {
                KeyCheck::Valid {
                    principal,
                    expires_at_ms,
                } => {
                    // Best effort: a failed touch must not fail the request.
                    let _ = self.store.touch_api_key(principal.key_id, now).await;
                    KeyVerdict::Valid {
                        principal,
                        // A negative expiry (before 1970) is long past: the epoch says so.
                        expires: expires_at_ms.map(|ms| {
                            UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
                        }),
                    }
                }
                KeyCheck::Invalid => KeyVerdict::Invalid,
                KeyCheck::TenantDisabled(t) => KeyVerdict::TenantDisabled(t),
            })
        })
    }

    fn available(&self) -> bool {
        !self.store.known_down()
    }
}

/// Verifies browser-session tokens (the `sy_session` cookie) against the store, with the key
/// or display token each was made from; cached by the kit like keys.
#[derive(Debug, Clone)]
pub struct StoreSessions {
    store: Store,
}

impl StoreSessions {
    pub fn new(store: Store) -> StoreSessions {
        StoreSessions { store }
    }
}

impl KeyVerifier for StoreSessions {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<KeyVerdict, ApiError>> {
        Box::pin(async move {
            match self.store.check_web_session(token, now_ms()).await {
                Ok(found) => Ok(verdict(found)),
                Err(e) => {
                    self.store.note_error(&e);
                    Err(ApiError::from(e))
                }
            }
        })
    }

    fn available(&self) -> bool {
        !self.store.known_down()
    }
}

/// The kit's verdict of what the store said of a key, a display token or a session.
pub(crate) fn verdict(found: KeyCheck) -> KeyVerdict {
    match found {
        KeyCheck::Valid {
            principal,
            expires_at_ms,
        } => KeyVerdict::Valid {
            principal,
            // A negative expiry (before 1970) is long past: the epoch says so.
            expires: expires_at_ms
                .map(|ms| UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
        },
        KeyCheck::Invalid => KeyVerdict::Invalid,
        KeyCheck::TenantDisabled(t) => KeyVerdict::TenantDisabled(t),
    }
}

/// What `/readyz` says about the database while it is away or the journal is replaying:
/// since when, why, and what the journal holds. None when all is well.
pub fn database_report(store: &Store) -> Option<serde_json::Value> {
    let st = store.spool_status()?;
    // No path or connection detail: anyone who reaches /readyz sees this.
    let journal = serde_json::json!({
        "pending_entries": st.pending_entries,
        "pending_bytes": st.pending_bytes,
        "bound_bytes": st.bound_bytes,
        "refused_at_bound": st.refused_at_bound,
    });
    if let Some(since_ms) = st.down_since_ms {
        let since = jiff::Timestamp::from_millisecond(since_ms)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| since_ms.to_string());
        let reason = st.reason.unwrap_or_default();
        Some(serde_json::json!({
            "state": "unavailable",
            "since": since,
            "reason": reason,
            "message": format!(
                "database unavailable since {since} ({reason}); journal pending {} entries \
                 ({} of {} bytes)",
                st.pending_entries, st.pending_bytes, st.bound_bytes
            ),
            "journal": journal,
        }))
    } else if st.pending_entries > 0 {
        Some(serde_json::json!({
            "state": "replaying",
            "message": format!(
                "database answers; replaying the journal: {} entries pending",
                st.pending_entries
            ),
            "journal": journal,
        }))
    } else {
        None
    }
}

/// Everything `switchyard serve` answers on its HTTP port.
pub fn build(rt: Arc<Runtime>, config: HttpConfig) -> (Router, HttpKit) {
    let metrics = Metrics::new();
    // The engine's gauges; the task ends when the engine stops.
    let _gauges = rt.spawn_gauges(metrics.clone(), std::time::Duration::from_secs(5));
    let kit = HttpKit::with_sessions(
        config,
        Arc::new(StoreKeys::new(rt.store.clone())),
        Arc::new(StoreSessions::new(rt.store.clone())),
        metrics.clone(),
    );
    let store = rt.store.clone();
    let engine = rt.engine.clone();
    let reported = store.clone();
    let probes = Probes::new()
        .check("database", move || {
            let store = store.clone();
            async move {
                if store.known_down() {
                    return Err("database known to be unavailable".to_owned());
                }
                store.ping().await.map_err(|e| {
                    store.note_error(&e);
                    e.to_string()
                })
            }
        })
        .report("database", move || database_report(&reported))
        .check("freeswitch", move || {
            let ready = crate::runtime::switch_readiness(&engine);
            async move { ready }
        });
    let live = http::live::router(rt.hub.clone(), rt.snapshot_fn(), rt.ids.clone());
    // Revocations, disabled tenants and narrowed grants written elsewhere (the admin CLI,
    // another server) hold here within `access::EVERY`; the task ends with the runtime.
    let _access = routes::access::follow(&rt, kit.clone());
    let state = AppState {
        rt,
        kit: kit.clone(),
    };
    let app = Router::new()
        .merge(routes::web::router(state.clone()))
        .merge(routes::router(state))
        .merge(live)
        .merge(metrics.router())
        .merge(probes.router())
        // GET /openapi.json (no key) and Swagger UI under /docs.
        .merge(openapi::router(openapi::document()));
    (http::layers(app, &kit), kit)
}
