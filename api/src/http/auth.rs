//! Bearer API keys: `Authorization: Bearer <key>`.
//!
//! [`middleware::authenticate`](super::middleware::authenticate) resolves the key once per
//! request through the [`AuthCache`] (so a busy key does not reach the store on every request)
//! and leaves the outcome in the request; the [`Auth`] extractor reads it. A handler that takes
//! `Auth` answers 401 to a missing, malformed, unknown, revoked or expired key; the `require_*`
//! helpers answer 403 for a valid key that may not do what it asks.
//!
//! ```text
//! async fn pause_queue(Auth(who): Auth, ApiPath(id): ApiPath<Uuid>, ..) -> Result<.., ApiError> {
//!     let tenant = require_tenant(&who)?;                       // platform-admin key: 403
//!     require_role(&who, &[Role::Admin, Role::Supervisor])?;     // agent key: 403
//!     ..
//! }
//! async fn set_agent_state(Auth(who): Auth, ApiPath(id): ApiPath<i64>, ..) -> .. {
//!     require_role(&who, &[Role::Admin, Role::Supervisor, Role::Agent])?;
//!     require_acts_for(&who, id)?;                  // an agent key bound to another agent: 403
//!     ..
//! }
//! ```
//!
//! Agent keys are bound to the one agent they act for ([`Principal::agent_id`]); agent-scoped
//! writes check it with [`require_acts_for`], or with [`acting_agent`] when the agent is only
//! known later (the agent on a call).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::BoxFuture;
use super::error::ApiError;
use crate::model::{Principal, Role, TenantId};

/// What a [`KeyVerifier`] says of a key, and what the [`AuthCache`] remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    /// A current key. `expires`: when it stops (None: never); the cache keeps the verdict no
    /// longer than that, whatever its own time to live.
    Valid {
        principal: Principal,
        expires: Option<SystemTime>,
    },
    /// Unknown, malformed, revoked or expired (401).
    Invalid,
    /// A good key of a disabled tenant (403 `tenant_disabled`, so the holder knows why).
    TenantDisabled(TenantId),
}

impl KeyVerdict {
    /// A verdict of a key that never expires.
    pub fn valid(principal: Principal) -> KeyVerdict {
        KeyVerdict::Valid {
            principal,
            expires: None,
        }
    }

    pub fn principal(&self) -> Option<Principal> {
        match self {
            KeyVerdict::Valid { principal, .. } => Some(*principal),
            KeyVerdict::Invalid | KeyVerdict::TenantDisabled(_) => None,
        }
    }
}

/// Looks a presented key up in the store. `Err`: the store could not answer (the error is
/// answered as is, typically 500 or 503).
pub trait KeyVerifier: Send + Sync + 'static {
    fn verify<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyVerdict, ApiError>>;

    /// False while the verifier is known unable to answer (its database is down): the cache
    /// then answers from what it knows without asking (see [`AuthCache::resolve`]).
    fn available(&self) -> bool {
        true
    }
}

/// A fixed key table, for tests and demos.
#[derive(Clone, Debug, Default)]
pub struct StaticKeys {
    keys: HashMap<String, Principal>,
}

impl StaticKeys {
    pub fn new() -> StaticKeys {
        StaticKeys::default()
    }

    pub fn with(mut self, key: impl Into<String>, principal: Principal) -> StaticKeys {
        self.keys.insert(key.into(), principal);
        self
    }
}

impl KeyVerifier for StaticKeys {
    fn verify<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyVerdict, ApiError>> {
        let found = self
            .keys
            .get(key)
            .map_or(KeyVerdict::Invalid, |p| KeyVerdict::valid(*p));
        Box::pin(async move { Ok(found) })
    }
}

/// `Retry-After` of a key that cannot be verified while the store is away.
const UNVERIFIABLE_RETRY_AFTER: Duration = Duration::from_secs(2);

/// Keys longer than this are refused without asking the store (and never cached).
const MAX_KEY_LEN: usize = 512;
const SHARDS: usize = 16;

/// A bounded, short-lived cache in front of a [`KeyVerifier`].
///
/// Entries are keyed by the SHA-256 of the key (the cache never holds a key in clear) and live
/// `ttl`, or until the key's own expiry if that comes first: an expired key is refused from
/// its expiry on, never answered from the cache after it (not even from a stale entry during
/// an outage). During an outage of the verifier's store (it answers 503, or says it is unavailable)
/// a key verified before keeps working from its expired entry (known good stays good: the
/// requests that need no database go on), and a key the cache does not know answers 503 at
/// once, neither 401 nor a wait. Revocation goes through the store, so it cannot happen during
/// an outage; after one, [`AuthCache::invalidate`] drops the revoked keys' entries. Unknown keys are cached too, so a client retrying a revoked key does not hammer the
/// store, but only while their shard is less than half full: a flood of made-up keys cannot
/// push the valid ones out. At the bound, expired entries go first, then arbitrary ones.
pub struct AuthCache {
    core: Arc<CacheCore>,
}

/// The cache's state, shared with the background revalidations it starts.
struct CacheCore {
    verifier: Arc<dyn KeyVerifier>,
    shards: Box<[Shard]>,
    per_shard: usize,
    ttl: Duration,
    /// Bumped by [`AuthCache::invalidate_all`]; a verification that started before the bump
    /// is not cached, so a revoked key cannot come back through a lookup already in flight.
    generation: AtomicU64,
    hasher: RandomState,
    /// Keys (by digest) whose expired entry is being revalidated in the background: at most
    /// one lookup per key at a time, so at most one per cached key.
    refreshing: Mutex<std::collections::HashSet<[u8; 32]>>,
}

type Shard = Mutex<HashMap<[u8; 32], CacheEntry>>;

#[derive(Clone, Copy, Debug)]
struct CacheEntry {
    verdict: KeyVerdict,
    /// When the cache asks again.
    expires: Instant,
    /// When the key itself stops working (a valid verdict with an expiry only).
    key_expires: Option<Instant>,
}

impl CacheEntry {
    fn principal(&self) -> Option<Principal> {
        self.verdict.principal()
    }
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field("entries", &self.len())
            .field("ttl", &self.core.ttl)
            .finish_non_exhaustive()
    }
}

impl AuthCache {
    pub fn new(verifier: Arc<dyn KeyVerifier>, capacity: usize, ttl: Duration) -> AuthCache {
        AuthCache {
            core: Arc::new(CacheCore {
                verifier,
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                per_shard: capacity.div_ceil(SHARDS).max(1),
                ttl,
                generation: AtomicU64::new(0),
                hasher: RandomState::new(),
                refreshing: Mutex::new(std::collections::HashSet::new()),
            }),
        }
    }

    /// Forget every cached verification; the next request of each key asks the store. Call it
    /// after revoking, deleting or changing the role of a key.
    pub fn invalidate_all(&self) {
        self.core.generation.fetch_add(1, Ordering::AcqRel);
        for shard in self.core.shards.iter() {
            shard.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// Cached entries (expired ones included until they are swept).
    pub fn len(&self) -> usize {
        self.core
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forget the cached verifications of the keys `revoked` says (by their principal), and
    /// of every unknown key; the rest stay, so that an outage right after a revocation does
    /// not lock out every other key. A lookup in flight is not cached (as with
    /// [`AuthCache::invalidate_all`]).
    pub fn invalidate(&self, revoked: impl Fn(&Principal) -> bool) {
        self.core.generation.fetch_add(1, Ordering::AcqRel);
        for shard in self.core.shards.iter() {
            shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, e| e.principal().is_some_and(|p| !revoked(&p)));
        }
    }

    /// Forget the cached verification of `key` alone (a session just ended); a lookup of it
    /// in flight is not cached (as with [`AuthCache::invalidate_all`]).
    pub fn forget(&self, key: &str) {
        self.core.generation.fetch_add(1, Ordering::AcqRel);
        let digest = digest(key);
        self.core
            .shard(&digest)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&digest);
    }

    /// Verifies `key`, from the cache when it can.
    pub async fn resolve(&self, key: &str) -> Result<KeyVerdict, ApiError> {
        if let Some(hit) = self.cached(key, Instant::now()) {
            return Ok(hit);
        }
        self.verify_and_cache(key).await
    }

    /// The cached verdict, if fresh at `now` (and its key not expired by then).
    pub fn cached(&self, key: &str, now: Instant) -> Option<KeyVerdict> {
        if key.len() > MAX_KEY_LEN {
            return Some(KeyVerdict::Invalid);
        }
        let digest = digest(key);
        let shard = self
            .core
            .shard(&digest)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shard
            .get(&digest)
            .filter(|e| e.expires > now)
            .map(|e| e.verdict)
    }

    /// Asks the verifier (skipping the fresh cache) and caches a definite answer. While the
    /// verifier is unavailable (see the type's doc) a key verified good before is answered
    /// from its expired entry, and any other key with 503 without asking.
    pub async fn verify_and_cache(&self, key: &str) -> Result<KeyVerdict, ApiError> {
        if key.len() > MAX_KEY_LEN {
            return Ok(KeyVerdict::Invalid);
        }
        let stale = self.core.known_good(key, Instant::now());
        if let Some(p) = stale
            && tokio::runtime::Handle::try_current().is_ok()
        {
            // Known good, expired: answered at once and revalidated in the background, so a
            // busy key never waits for the store (nor for an outage's acquire timeout). A key
            // revoked behind the API's back stops once the revalidation lands; one revoked
            // through the API was already dropped from the cache.
            self.revalidate(key);
            return Ok(p);
        }
        if !self.core.verifier.available() {
            return match stale {
                Some(p) => Ok(p),
                None => Err(ApiError::unavailable(
                    "the key store is unavailable and this key is not known here; retry \
                     after Retry-After",
                )
                .with_retry_after(UNVERIFIABLE_RETRY_AFTER)),
            };
        }
        let generation = self.core.generation.load(Ordering::Acquire);
        match self.core.verifier.verify(key).await {
            Ok(verdict) => {
                self.core
                    .insert(digest(key), verdict, generation, Instant::now());
                Ok(verdict)
            }
            Err(e) if e.status == axum::http::StatusCode::SERVICE_UNAVAILABLE => match stale {
                Some(p) => Ok(p),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Verifies `key` again on a task of its own and caches the verdict (an error leaves the
    /// expired entry as it is).
    fn revalidate(&self, key: &str) {
        let digest = digest(key);
        if !self
            .core
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest)
        {
            return;
        }
        let core = self.core.clone();
        let key = key.to_owned();
        tokio::spawn(async move {
            let generation = core.generation.load(Ordering::Acquire);
            if let Ok(verdict) = core.verifier.verify(&key).await {
                core.insert(digest, verdict, generation, Instant::now());
            }
            core.refreshing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&digest);
        });
    }
}

impl CacheCore {
    /// The valid verdict of a key verified good before, even if its entry has expired; never
    /// once the key itself has expired at `now`.
    fn known_good(&self, key: &str, now: Instant) -> Option<KeyVerdict> {
        if key.len() > MAX_KEY_LEN {
            return None;
        }
        let digest = digest(key);
        let shard = self
            .shard(&digest)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shard
            .get(&digest)
            .filter(|e| e.principal().is_some() && e.key_expires.is_none_or(|at| at > now))
            .map(|e| e.verdict)
    }

    fn shard(&self, digest: &[u8; 32]) -> &Shard {
        let i = self.hasher.hash_one(digest) as usize % self.shards.len();
        &self.shards[i]
    }

    /// Caches `verdict` as of `now`; its key's expiry (wall clock) is turned into an instant
    /// against the wall clock now, and bounds the entry's life.
    fn insert(&self, digest: [u8; 32], verdict: KeyVerdict, generation: u64, now: Instant) {
        let key_expires = match verdict {
            KeyVerdict::Valid {
                expires: Some(at), ..
            } => Some(
                now + at
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            ),
            _ => None,
        };
        let mut shard = self
            .shard(&digest)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        let limit = if verdict.principal().is_some() {
            self.per_shard
        } else {
            self.per_shard / 2
        };
        if shard.len() >= limit && !shard.contains_key(&digest) {
            shard.retain(|_, e| e.expires > now);
            if shard.len() >= limit {
                if verdict.principal().is_none() {
                    return;
                }
                if let Some(victim) = shard.keys().next().copied() {
                    shard.remove(&victim);
                }
            }
        }
        let ttl_end = now + self.ttl;
        shard.insert(
            digest,
            CacheEntry {
                verdict,
                expires: key_expires.map_or(ttl_end, |at| at.min(ttl_end)),
                key_expires,
            },
        );
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// What the `Authorization` header says, before asking anyone.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Presented<'a> {
    None,
    Malformed,
    Key(&'a str),
}

/// `Bearer <key>`, scheme case-insensitive, one header only, a visible-ASCII key.
pub(crate) fn presented_key(headers: &HeaderMap) -> Presented<'_> {
    let mut values = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Presented::None;
    };
    if values.next().is_some() {
        return Presented::Malformed;
    }
    let Ok(value) = value.to_str() else {
        return Presented::Malformed;
    };
    let Some((scheme, key)) = value.trim().split_once(' ') else {
        return Presented::Malformed;
    };
    let key = key.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || key.is_empty()
        || key.len() > MAX_KEY_LEN
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Presented::Malformed;
    }
    Presented::Key(key)
}

/// The cookie that carries a browser session's token (see `routes::web`).
pub const SESSION_COOKIE: &str = "sy_session";

/// The header a cookie-authenticated request that is not GET or HEAD must carry: the
/// session's CSRF token ([`csrf_token`]).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session token of the request's `sy_session` cookie, if there is one that could be a
/// token (visible ASCII, at most 512 characters). The first one wins: a browser sends the
/// most specific path first.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| {
            !v.is_empty() && v.len() <= MAX_KEY_LEN && v.bytes().all(|b| b.is_ascii_graphic())
        })
}

/// The CSRF token of a session: derived from its token (SHA-256 with a purpose of its own),
/// so it needs no storage and cannot drift from the session, and knowing it tells nothing of
/// the cookie. A page reads it from `POST`/`GET /web/session` and sends it back in
/// [`CSRF_HEADER`]; a cross-site form or `fetch` cannot read it, nor set the header.
pub fn csrf_token(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"switchyard csrf v1\0");
    h.update(session_token.as_bytes());
    hex::encode(h.finalize())
}

/// True if `presented` is the CSRF token of `session_token`, compared in constant time.
pub(crate) fn csrf_matches(session_token: &str, presented: &[u8]) -> bool {
    let expected = csrf_token(session_token);
    expected.len() == presented.len()
        && expected
            .bytes()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The authentication outcome the middleware leaves in the request's extensions.
#[derive(Clone, Debug)]
pub(crate) enum AuthOutcome {
    Missing,
    Invalid,
    Authenticated(Principal),
    /// A good key of a disabled tenant.
    TenantDisabled(TenantId),
    /// The verifier failed (store down): answered as the verifier said.
    Failed(ApiError),
}

impl From<KeyVerdict> for AuthOutcome {
    fn from(v: KeyVerdict) -> AuthOutcome {
        match v {
            KeyVerdict::Valid { principal, .. } => AuthOutcome::Authenticated(principal),
            KeyVerdict::Invalid => AuthOutcome::Invalid,
            KeyVerdict::TenantDisabled(t) => AuthOutcome::TenantDisabled(t),
        }
    }
}

impl AuthOutcome {
    pub(crate) fn principal(&self) -> Option<&Principal> {
        match self {
            AuthOutcome::Authenticated(p) => Some(p),
            _ => None,
        }
    }
}

/// The authenticated caller. Extracting it answers 401 when there is no valid key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Auth(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        match parts.extensions.get::<AuthOutcome>() {
            Some(AuthOutcome::Authenticated(p)) => Ok(Auth(*p)),
            Some(AuthOutcome::Missing) => Err(ApiError::unauthorized(
                "an API key is required (Authorization: Bearer <key>)",
            )),
            Some(AuthOutcome::Invalid) => Err(ApiError::unauthorized(
                "the API key is invalid, revoked or expired",
            )),
            Some(AuthOutcome::TenantDisabled(t)) => Err(tenant_disabled(*t)),
            Some(AuthOutcome::Failed(e)) => Err(e.clone()),
            // Fail closed, and loudly: a route mounted outside `http::layers`.
            None => Err(ApiError::internal(
                "Auth extracted on a route without http::layers",
            )),
        }
    }
}

/// The 403 of a good key of a disabled tenant: the holder learns it is no typo of theirs and
/// whom to ask, and nothing else of the tenant.
pub(crate) fn tenant_disabled(tenant: TenantId) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "tenant_disabled",
        format!(
            "tenant {} is disabled: its keys are refused until a platform admin enables it again",
            tenant.0
        ),
    )
}

/// `Option<Auth>`: `None` without an `Authorization` header; a bad key still answers 401.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, ApiError> {
        match parts.extensions.get::<AuthOutcome>() {
            Some(AuthOutcome::Missing) => Ok(None),
            _ => <Auth as FromRequestParts<S>>::from_request_parts(parts, state)
                .await
                .map(Some),
        }
    }
}

/// 403 unless the key has one of `roles`. Platform-admin keys pass only if listed.
pub fn require_role(principal: &Principal, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&principal.role) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "a key with role {} may not do this",
            principal.role.as_str()
        )))
    }
}

/// The key's tenant; 403 for a platform-admin key on a tenant route.
pub fn require_tenant(principal: &Principal) -> Result<TenantId, ApiError> {
    principal
        .tenant
        .ok_or_else(|| ApiError::forbidden("a platform-admin key cannot act within a tenant"))
}

/// Which agent the key may act for in agent-scoped writes (an agent's state, the disposition of
/// a call), once [`require_role`] has let it in: `None` for admin and supervisor keys, which act
/// for every agent of the tenant; the key's own agent for an agent key. 403 for an agent key
/// bound to no agent (issued before keys were bound to agents): it may still read, never write.
pub fn acting_agent(principal: &Principal) -> Result<Option<i64>, ApiError> {
    match (principal.role, principal.agent_id) {
        (Role::Agent, Some(agent)) => Ok(Some(agent)),
        (Role::Agent, None) => Err(ApiError::forbidden(
            "this agent key is not bound to an agent, so it may only read; an admin must issue \
             a new agent key naming the agent it acts for (agent_id)",
        )),
        _ => Ok(None),
    }
}

/// 403 unless the key may act for agent `agent`: admin and supervisor keys for any agent, an
/// agent key only for its own (see [`acting_agent`]).
pub fn require_acts_for(principal: &Principal, agent: i64) -> Result<(), ApiError> {
    match acting_agent(principal)? {
        Some(own) if own != agent => Err(forbidden_for()),
        _ => Ok(()),
    }
}

/// The 403 of an agent key acting for an agent, or on a call, not its own.
pub(crate) fn forbidden_for() -> ApiError {
    // No number: the key's agent as the store numbers it is not what the API shows.
    ApiError::forbidden("this key acts for its own agent only: its own state and its own calls")
}

/// 403 unless the key is a platform-admin key.
pub fn require_platform_admin(principal: &Principal) -> Result<(), ApiError> {
    if principal.role == Role::PlatformAdmin && principal.tenant.is_none() {
        Ok(())
    } else {
        Err(ApiError::forbidden("this needs a platform-admin key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use uuid::Uuid;

    fn principal(role: Role) -> Principal {
        Principal {
            key_id: Uuid::new_v4(),
            tenant: Some(TenantId(Uuid::new_v4())),
            role,
            agent_id: (role == Role::Agent).then_some(7),
        }
    }

    /// Counts calls; answers from a table that tests can change.
    #[derive(Default)]
    struct Counting {
        calls: AtomicUsize,
        keys: Mutex<HashMap<String, Principal>>,
    }

    impl KeyVerifier for Counting {
        fn verify<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyVerdict, ApiError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let found = self
                .keys
                .lock()
                .unwrap()
                .get(key)
                .map_or(KeyVerdict::Invalid, |p| KeyVerdict::valid(*p));
            Box::pin(async move { Ok(found) })
        }
    }

    /// A verifier whose store is down: every lookup fails with 503, and it says so.
    struct Down;

    impl KeyVerifier for Down {
        fn verify<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Result<KeyVerdict, ApiError>> {
            Box::pin(async { Err(ApiError::unavailable("store down")) })
        }

        fn available(&self) -> bool {
            false
        }
    }

    /// Switches between a working table and a store that is down.
    struct Flaky {
        table: Counting,
        down: std::sync::atomic::AtomicBool,
    }

    impl KeyVerifier for Flaky {
        fn verify<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyVerdict, ApiError>> {
            if self.down.load(Ordering::SeqCst) {
                return Down.verify(key);
            }
            self.table.verify(key)
        }

        fn available(&self) -> bool {
            !self.down.load(Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn during_an_outage_known_keys_work_from_expired_entries_and_unknown_keys_get_503() {
        let p = principal(Role::Supervisor);
        let verifier = Arc::new(Flaky {
            table: Counting::default(),
            down: false.into(),
        });
        verifier.table.keys.lock().unwrap().insert("k1".into(), p);
        let cache = AuthCache::new(verifier.clone(), 100, Duration::from_millis(1));
        assert_eq!(cache.resolve("k1").await.unwrap().principal(), Some(p));
        verifier.down.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await; // the entry has expired
        for _ in 0..3 {
            assert_eq!(cache.resolve("k1").await.unwrap().principal(), Some(p));
        }
        let err = cache.resolve("k2").await.unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(err.retry_after.is_some());
        // Without any entry and a store that is down, nothing passes.
        let cold = AuthCache::new(Arc::new(Down), 100, Duration::from_secs(60));
        assert!(cold.resolve("k1").await.is_err());
    }

    #[tokio::test]
    async fn an_expired_known_key_is_answered_at_once_and_revalidated_in_the_background() {
        let verifier = Arc::new(Counting::default());
        let p = principal(Role::Admin);
        verifier.keys.lock().unwrap().insert("k1".into(), p);
        let cache = AuthCache::new(verifier.clone(), 100, Duration::from_millis(1));
        assert_eq!(cache.resolve("k1").await.unwrap().principal(), Some(p));
        verifier.keys.lock().unwrap().clear(); // revoked behind the API's back
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            cache.resolve("k1").await.unwrap().principal(),
            Some(p),
            "stale, once"
        );
        // The revalidation lands: the key is then refused.
        let deadline = Instant::now() + Duration::from_secs(5);
        while cache.resolve("k1").await.unwrap().principal().is_some() {
            assert!(Instant::now() < deadline, "revalidation never landed");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn invalidate_drops_only_the_revoked_keys() {
        let verifier = Arc::new(Counting::default());
        let (a, b) = (principal(Role::Admin), principal(Role::Agent));
        verifier.keys.lock().unwrap().insert("a".into(), a);
        verifier.keys.lock().unwrap().insert("b".into(), b);
        let cache = AuthCache::new(verifier.clone(), 100, Duration::from_secs(60));
        cache.resolve("a").await.unwrap().principal();
        cache.resolve("b").await.unwrap().principal();
        verifier.keys.lock().unwrap().remove("a");
        cache.invalidate(|p| p.key_id == a.key_id);
        assert_eq!(cache.resolve("a").await.unwrap().principal(), None);
        assert_eq!(
            cache.cached("b", Instant::now()).map(|v| v.principal()),
            Some(Some(b)),
            "b stays cached"
        );
    }

    #[tokio::test]
    async fn cache_serves_a_busy_key_without_asking_again_within_the_ttl() {
        let verifier = Arc::new(Counting::default());
        let p = principal(Role::Admin);
        verifier.keys.lock().unwrap().insert("k1".into(), p);
        let cache = AuthCache::new(verifier.clone(), 100, Duration::from_secs(60));
        for _ in 0..10 {
            assert_eq!(cache.resolve("k1").await.unwrap().principal(), Some(p));
        }
        assert_eq!(verifier.calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.resolve("nope").await.unwrap().principal(), None);
        assert_eq!(cache.resolve("nope").await.unwrap().principal(), None);
        assert_eq!(
            verifier.calls.load(Ordering::SeqCst),
            2,
            "unknown keys are cached too"
        );
    }

    #[tokio::test]
    async fn cache_entries_expire_after_the_ttl() {
        let verifier = Arc::new(Counting::default());
        verifier
            .keys
            .lock()
            .unwrap()
            .insert("k1".into(), principal(Role::Agent));
        let cache = AuthCache::new(verifier.clone(), 100, Duration::from_millis(50));
        cache.resolve("k1").await.unwrap().principal();
        let later = Instant::now() + Duration::from_millis(51);
        assert_eq!(cache.cached("k1", later), None);
        assert!(
            cache
                .cached("k1", Instant::now())
                .map(|v| v.principal())
                .is_some()
        );
    }

    /// Answers one key as valid until `expires` (wall clock), as the store does.
    struct Expiring {
        principal: Principal,
        expires: SystemTime,
        down: std::sync::atomic::AtomicBool,
    }

    impl KeyVerifier for Expiring {
        fn verify<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyVerdict, ApiError>> {
            if self.down.load(Ordering::SeqCst) {
                return Down.verify(key);
            }
            let v = KeyVerdict::Valid {
                principal: self.principal,
                expires: Some(self.expires),
            };
            Box::pin(async move { Ok(v) })
        }

        fn available(&self) -> bool {
            !self.down.load(Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn a_cached_key_stops_at_its_own_expiry_not_at_the_end_of_the_cache_ttl() {
        let p = principal(Role::Admin);
        let verifier = Arc::new(Expiring {
            principal: p,
            expires: SystemTime::now() + Duration::from_secs(2),
            down: false.into(),
        });
        let cache = AuthCache::new(verifier, 100, Duration::from_secs(3600));
        let before = Instant::now();
        assert_eq!(cache.resolve("k").await.unwrap().principal(), Some(p));
        let after = Instant::now();
        // Time is the argument: just before the key's expiry the entry answers, from it on
        // (two seconds, an hour before the cache's own time to live) it does not.
        assert_eq!(
            cache
                .cached("k", before + Duration::from_millis(1500))
                .and_then(|v| v.principal()),
            Some(p)
        );
        assert_eq!(cache.cached("k", after + Duration::from_secs(2)), None);
    }

    #[tokio::test]
    async fn an_expired_key_is_never_answered_from_a_stale_entry_even_during_an_outage() {
        let p = principal(Role::Admin);
        let verifier = Arc::new(Expiring {
            principal: p,
            // Already past when the answer is cached: the entry is born expired.
            expires: SystemTime::now() - Duration::from_secs(1),
            down: false.into(),
        });
        let cache = AuthCache::new(verifier.clone(), 100, Duration::from_secs(3600));
        cache.resolve("k").await.unwrap();
        assert_eq!(cache.cached("k", Instant::now()), None);
        verifier.down.store(true, Ordering::SeqCst);
        // A known-good key would ride out the outage from its entry; an expired one is 503,
        // never let in.
        assert!(cache.resolve("k").await.is_err());
    }

    #[tokio::test]
    async fn invalidate_all_makes_a_revoked_key_fail_at_once() {
        let verifier = Arc::new(Counting::default());
        verifier
            .keys
            .lock()
            .unwrap()
            .insert("k1".into(), principal(Role::Admin));
        let cache = AuthCache::new(verifier.clone(), 100, Duration::from_secs(60));
        assert!(cache.resolve("k1").await.unwrap().principal().is_some());
        verifier.keys.lock().unwrap().clear(); // revoked in the store
        assert!(
            cache.resolve("k1").await.unwrap().principal().is_some(),
            "still cached"
        );
        cache.invalidate_all();
        assert_eq!(cache.resolve("k1").await.unwrap().principal(), None);
    }

    #[tokio::test]
    async fn a_verification_in_flight_during_invalidate_all_is_not_cached() {
        let verifier = Arc::new(Counting::default());
        let p = principal(Role::Admin);
        let cache = AuthCache::new(verifier.clone(), 100, Duration::from_secs(60));
        let before = cache.core.generation.load(Ordering::Acquire);
        cache.invalidate_all();
        cache
            .core
            .insert(digest("k1"), KeyVerdict::valid(p), before, Instant::now());
        assert_eq!(
            cache.cached("k1", Instant::now()).map(|v| v.principal()),
            None
        );
    }

    #[tokio::test]
    async fn cache_stays_within_capacity_and_unknown_keys_cannot_evict_valid_ones() {
        let verifier = Arc::new(Counting::default());
        let p = principal(Role::Admin);
        verifier.keys.lock().unwrap().insert("good".into(), p);
        let cache = AuthCache::new(verifier.clone(), 64, Duration::from_secs(60));
        cache.resolve("good").await.unwrap().principal();
        for i in 0..10_000 {
            cache.resolve(&format!("made-up-{i}")).await.unwrap();
        }
        assert!(cache.len() <= 64, "{}", cache.len());
        assert_eq!(
            cache.cached("good", Instant::now()).map(|v| v.principal()),
            Some(Some(p))
        );
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_refused_when_it_cannot_be_a_token() {
        let mut h = HeaderMap::new();
        assert_eq!(session_cookie(&h), None);
        h.insert("cookie", "a=1; sy_session=sys_abc; b=2".parse().unwrap());
        assert_eq!(session_cookie(&h), Some("sys_abc"));
        h.insert(
            "cookie",
            "sy_sessionx=1;sy_session= sys_def ".parse().unwrap(),
        );
        assert_eq!(session_cookie(&h), Some("sys_def"));
        h.insert("cookie", "sy_session=first".parse().unwrap());
        h.append("cookie", "sy_session=second".parse().unwrap());
        assert_eq!(session_cookie(&h), Some("first"), "the first one wins");
        for bad in ["sy_session=", "other=sys_abc", "sy_session"] {
            h.insert("cookie", bad.parse().unwrap());
            assert_eq!(session_cookie(&h), None, "{bad}");
        }
        h.insert(
            "cookie",
            format!("sy_session={}", "a".repeat(MAX_KEY_LEN + 1))
                .parse()
                .unwrap(),
        );
        assert_eq!(session_cookie(&h), None, "too long");
    }

    #[test]
    fn a_csrf_token_matches_only_its_own_session() {
        let t = csrf_token("sys_one");
        assert_eq!(t.len(), 64);
        assert_ne!(t, csrf_token("sys_two"));
        assert!(csrf_matches("sys_one", t.as_bytes()));
        assert!(!csrf_matches("sys_two", t.as_bytes()));
        assert!(!csrf_matches("sys_one", &t.as_bytes()[..63]));
        assert!(!csrf_matches("sys_one", b""));
    }

    #[test]
    fn bearer_header_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), Presented::None);
        h.insert("authorization", "Bearer abc.DEF-123".parse().unwrap());
        assert_eq!(presented_key(&h), Presented::Key("abc.DEF-123"));
        h.insert("authorization", "bearer   abc ".parse().unwrap());
        assert_eq!(presented_key(&h), Presented::Key("abc"));
        for bad in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Bearerabc",
            "Bearer a b",
        ] {
            h.insert("authorization", bad.parse().unwrap());
            assert_eq!(presented_key(&h), Presented::Malformed, "{bad}");
        }
        h.insert("authorization", "Bearer a".parse().unwrap());
        h.append("authorization", "Bearer b".parse().unwrap());
        assert_eq!(presented_key(&h), Presented::Malformed, "two headers");
    }

    #[test]
    fn role_and_tenant_checks() {
        let agent = principal(Role::Agent);
        assert!(require_role(&agent, &[Role::Agent, Role::Admin]).is_ok());
        let e = require_role(&agent, &[Role::Admin]).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::FORBIDDEN);
        assert_eq!(require_tenant(&agent).unwrap(), agent.tenant.unwrap());
        assert_eq!(
            require_platform_admin(&agent).unwrap_err().status,
            axum::http::StatusCode::FORBIDDEN
        );

        let root = Principal {
            key_id: Uuid::new_v4(),
            tenant: None,
            role: Role::PlatformAdmin,
            agent_id: None,
        };
        assert_eq!(
            require_tenant(&root).unwrap_err().status,
            axum::http::StatusCode::FORBIDDEN
        );
        assert!(require_platform_admin(&root).is_ok());
    }

    #[test]
    fn agent_keys_act_for_their_own_agent_only_and_unbound_ones_for_none() {
        let bound = principal(Role::Agent);
        assert_eq!(acting_agent(&bound).unwrap(), Some(7));
        assert!(require_acts_for(&bound, 7).is_ok());
        let e = require_acts_for(&bound, 8).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::FORBIDDEN);
        assert!(e.message.contains("its own agent"), "{}", e.message);

        let legacy = Principal {
            agent_id: None,
            ..bound
        };
        for e in [
            acting_agent(&legacy).unwrap_err(),
            require_acts_for(&legacy, 7).unwrap_err(),
        ] {
            assert_eq!(e.status, axum::http::StatusCode::FORBIDDEN);
            assert!(e.message.contains("agent_id"), "{}", e.message);
        }

        for role in [Role::Admin, Role::Supervisor] {
            let p = principal(role);
            assert_eq!(acting_agent(&p).unwrap(), None);
            assert!(require_acts_for(&p, 8).is_ok());
        }
    }
}
