//! The store against both backends: SQLite in memory always, PostgreSQL too when
//! `DATABASE_URL` is set (`store_common::each_backend`). One file database test covers what
//! only a file has (reconnecting, WAL, concurrent writers).

mod store_common;

use std::collections::HashSet;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard_api::model::{Principal, Role, TenantId};
use switchyard_api::store::{
    AuditEntry, Backend, CallFilter, CallRow, CdrRow, CheckpointRow, IntervalRow, IntervalScope,
    Pools, Store, StoreError, TraceRow, now_ms,
};
use uuid::Uuid;

use store_common::{each_backend, each_unmigrated_backend};

fn audit(action: &'static str, kind: &'static str, id: impl Into<String>) -> AuditEntry<'static> {
    AuditEntry {
        tenant: None,
        key_id: None,
        action,
        object_kind: kind,
        object_id: id.into(),
        detail: json!({"by": "test"}),
    }
}

fn audit_as(tenant: TenantId, action: &'static str, id: impl Into<String>) -> AuditEntry<'static> {
    AuditEntry {
        tenant: Some(tenant),
        ..audit(action, "test", id)
    }
}

async fn tenant(store: &Store, name: &str) -> TenantId {
    store
        .create_tenant(name, &audit("tenant.create", "tenant", ""))
        .await
        .expect("create tenant")
        .id
}

async fn audit_count(store: &Store, tenant: Option<TenantId>) -> usize {
    store
        .list_audit(tenant, 1000)
        .await
        .expect("list audit")
        .len()
}

fn is_conflict(r: Result<impl std::fmt::Debug, StoreError>, what: &str) -> bool {
    matches!(r, Err(StoreError::Conflict { what: w }) if w == what)
}

/// Four text columns of one row, read behind the store's back.
async fn raw_strings(store: &Store, sql: &'static str, id: &str) -> Vec<String> {
    let row: (String, String, String, String) = match store.pools() {
        Pools::Sqlite { reader, .. } => sqlx::query_as(sql)
            .bind(id)
            .fetch_one(reader)
            .await
            .expect("raw sqlite"),
        Pools::Postgres(pg) => sqlx::query_as(sql)
            .bind(id)
            .fetch_one(pg)
            .await
            .expect("raw pg"),
    };
    vec![row.0, row.1, row.2, row.3]
}

/// One statement behind the store's back (on SQLite through its one writer).
async fn raw_execute(store: &Store, sql: String) -> Result<u64, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(sql);
    Ok(match store.pools() {
        Pools::Sqlite { writer, .. } => sqlx::query(sql).execute(writer).await?.rows_affected(),
        Pools::Postgres(pg) => sqlx::query(sql).execute(pg).await?.rows_affected(),
    })
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn migrations_apply_and_reapply_as_a_no_op() {
    each_backend(|store| async move {
        // each_backend already migrated once
        store.migrate().await.expect("second run");
        store.migrate().await.expect("third run");
        store.ping().await.expect("ping");
        assert!(store.list_tenants().await.unwrap().is_empty());
        assert!(store.all_queues().await.unwrap().is_empty());
        assert!(store.all_agents().await.unwrap().is_empty());
        assert!(store.all_members().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn connect_refuses_unknown_urls() {
    for url in ["mysql://x/y", "", "switchyard.db"] {
        let r = Store::connect(url).await;
        assert!(
            matches!(
                r,
                Err(StoreError::Invalid {
                    field: "database_url",
                    ..
                })
            ),
            "{url:?}"
        );
    }
    let mem = Store::connect("sqlite::memory:").await.expect("memory url");
    mem.migrate().await.expect("migrate");
    assert!(mem.list_tenants().await.unwrap().is_empty());
}

#[tokio::test]
async fn tenants_create_read_disable_with_audit() {
    each_backend(|store| async move {
        let t = store
            .create_tenant("acme", &audit("tenant.create", "tenant", "ignored"))
            .await
            .unwrap();
        assert_eq!(t.name, "acme");
        assert!(!t.disabled);
        assert_eq!(store.get_tenant(t.id).await.unwrap(), Some(t.clone()));
        assert_eq!(store.tenant_by_name("acme").await.unwrap(), Some(t.clone()));
        assert_eq!(store.tenant_by_name("nope").await.unwrap(), None);
        assert_eq!(
            store.get_tenant(TenantId(Uuid::new_v4())).await.unwrap(),
            None
        );

        // The audit row names the new tenant, whatever object_id the caller passed.
        let log = store.list_audit(None, 10).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].action, "tenant.create");
        assert_eq!(log[0].object_kind, "tenant");
        assert_eq!(log[0].object_id, t.id.0.to_string());
        assert_eq!(log[0].detail, json!({"by": "test"}));
        assert_eq!(log[0].tenant, None);

        // A taken name: Conflict, and no audit row.
        let dup = store
            .create_tenant("acme", &audit("tenant.create", "tenant", ""))
            .await;
        assert!(is_conflict(dup, "tenant name"));
        assert_eq!(audit_count(&store, None).await, 1);
        for bad in ["", "   ", "a\nb", &"x".repeat(201)] {
            let r = store
                .create_tenant(bad, &audit("tenant.create", "tenant", ""))
                .await;
            assert!(
                matches!(r, Err(StoreError::Invalid { field: "name", .. })),
                "{bad:?}"
            );
        }

        let other = tenant(&store, "globex").await;
        let names: Vec<String> = store
            .list_tenants()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["acme", "globex"]);

        let off = audit("tenant.disable", "tenant", t.id.0.to_string());
        assert!(store.set_tenant_disabled(t.id, true, &off).await.unwrap());
        assert!(store.get_tenant(t.id).await.unwrap().unwrap().disabled);
        assert!(!store.get_tenant(other).await.unwrap().unwrap().disabled);
        let before = audit_count(&store, None).await;
        let ghost = TenantId(Uuid::new_v4());
        assert!(!store.set_tenant_disabled(ghost, true, &off).await.unwrap());
        assert_eq!(
            audit_count(&store, None).await,
            before,
            "failed change wrote audit"
        );
        let log = store.list_audit(None, 1).await.unwrap();
        assert_eq!(log[0].action, "tenant.disable");
        assert_eq!(log[0].object_id, t.id.0.to_string());
    })
    .await;
}

#[tokio::test]
async fn api_keys_authenticate_until_expired_revoked_or_tenant_disabled() {
    each_backend(|store| async move {
        let acme = tenant(&store, "acme").await;
        let globex = tenant(&store, "globex").await;
        let now = now_ms();

        let (listed, key) = store
            .create_api_key(
                Some(acme),
                Role::Admin,
                None,
                "ci",
                None,
                &audit_as(acme, "key.create", ""),
            )
            .await
            .unwrap();
        // sy_ + 12 hex prefix + 52 hex secret
        assert_eq!(key.len(), 67);
        assert!(key.starts_with("sy_"));
        assert!(
            key[3..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(listed.prefix, key[3..15]);
        assert_eq!(listed.role, Role::Admin);
        assert_eq!(listed.tenant, Some(acme));

        let me = Principal {
            key_id: listed.id,
            tenant: Some(acme),
            role: Role::Admin,
            agent_id: None,
        };
        assert_eq!(store.authenticate(&key, now).await.unwrap(), Some(me));
        // Same prefix, wrong secret; malformed; unknown.
        let mut wrong = key.clone();
        let last = if wrong.ends_with('0') { "1" } else { "0" };
        wrong.replace_range(66..67, last);
        assert_eq!(store.authenticate(&wrong, now).await.unwrap(), None);
        for bad in [
            "",
            "sy_",
            "Bearer x",
            &key[..66],
            &format!("{key}0"),
            &key.to_uppercase(),
        ] {
            assert_eq!(store.authenticate(bad, now).await.unwrap(), None, "{bad:?}");
        }
        let unknown = format!("sy_{}", "0".repeat(64));
        assert_eq!(store.authenticate(&unknown, now).await.unwrap(), None);

        // Expiry, judged at the time given.
        let expires = now + 60_000;
        let (short, short_key) = store
            .create_api_key(
                Some(acme),
                Role::ReadOnly,
                None,
                "short",
                Some(expires),
                &audit_as(acme, "key.create", ""),
            )
            .await
            .unwrap();
        assert_eq!(short.expires_at_ms, Some(expires));
        assert!(
            store
                .authenticate(&short_key, expires - 1)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(store.authenticate(&short_key, expires).await.unwrap(), None);
        let past = store
            .create_api_key(
                Some(acme),
                Role::ReadOnly,
                None,
                "old",
                Some(now - 1),
                &audit("k", "k", ""),
            )
            .await;
        assert!(matches!(
            past,
            Err(StoreError::Invalid {
                field: "expires_at",
                ..
            })
        ));

        // Revocation: only within the key's tenant; audited only when it happens.
        let before = audit_count(&store, Some(acme)).await;
        let by_other = audit_as(globex, "key.revoke", listed.id.to_string());
        assert!(
            !store
                .revoke_api_key(Some(globex), listed.id, &by_other)
                .await
                .unwrap()
        );
        assert!(
            !store
                .revoke_api_key(None, listed.id, &by_other)
                .await
                .unwrap()
        );
        assert_eq!(audit_count(&store, Some(globex)).await, 0);
        let revoke = audit_as(acme, "key.revoke", listed.id.to_string());
        assert!(
            store
                .revoke_api_key(Some(acme), listed.id, &revoke)
                .await
                .unwrap()
        );
        assert_eq!(audit_count(&store, Some(acme)).await, before + 1);
        assert_eq!(store.authenticate(&key, now).await.unwrap(), None);
        let keys = store.list_api_keys(Some(acme)).await.unwrap();
        assert_eq!(keys.len(), 2);
        assert!(
            keys.iter()
                .find(|k| k.id == listed.id)
                .unwrap()
                .revoked_at_ms
                .is_some()
        );
        assert!(store.list_api_keys(Some(globex)).await.unwrap().is_empty());

        // A disabled tenant's keys stop working, and work again when it is re-enabled.
        let (_, live_key) = store
            .create_api_key(
                Some(acme),
                Role::Supervisor,
                None,
                "sup",
                None,
                &audit("k", "k", ""),
            )
            .await
            .unwrap();
        assert!(store.authenticate(&live_key, now).await.unwrap().is_some());
        store
            .set_tenant_disabled(acme, true, &audit("t", "t", ""))
            .await
            .unwrap();
        assert_eq!(store.authenticate(&live_key, now).await.unwrap(), None);
        store
            .set_tenant_disabled(acme, false, &audit("t", "t", ""))
            .await
            .unwrap();
        assert!(store.authenticate(&live_key, now).await.unwrap().is_some());

        // Platform-admin keys: no tenant; every other role: a tenant that exists.
        let (admin, admin_key) = store
            .create_api_key(
                None,
                Role::PlatformAdmin,
                None,
                "root",
                None,
                &audit("k", "k", ""),
            )
            .await
            .unwrap();
        let p = store.authenticate(&admin_key, now).await.unwrap().unwrap();
        assert_eq!(
            (p.tenant, p.role, p.key_id),
            (None, Role::PlatformAdmin, admin.id)
        );
        assert_eq!(
            store.list_api_keys(None).await.unwrap(),
            vec![admin.clone()]
        );
        let r = store
            .create_api_key(
                Some(acme),
                Role::PlatformAdmin,
                None,
                "x",
                None,
                &audit("k", "k", ""),
            )
            .await;
        assert!(matches!(
            r,
            Err(StoreError::Invalid {
                field: "tenant",
                ..
            })
        ));
        let r = store
            .create_api_key(None, Role::Admin, None, "x", None, &audit("k", "k", ""))
            .await;
        assert!(matches!(
            r,
            Err(StoreError::Invalid {
                field: "tenant",
                ..
            })
        ));
        let ghost = TenantId(Uuid::new_v4());
        let before = audit_count(&store, None).await;
        let r = store
            .create_api_key(
                Some(ghost),
                Role::Admin,
                None,
                "x",
                None,
                &audit("k", "k", ""),
            )
            .await;
        assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
        assert_eq!(audit_count(&store, None).await, before);

        // touch: sets last_used_at, then at most once a minute.
        store.touch_api_key(admin.id, now).await.unwrap();
        store.touch_api_key(admin.id, now + 1000).await.unwrap();
        let used = |keys: Vec<switchyard_api::store::ApiKey>| keys[0].last_used_at_ms;
        assert_eq!(used(store.list_api_keys(None).await.unwrap()), Some(now));
        store.touch_api_key(admin.id, now + 61_000).await.unwrap();
        assert_eq!(
            used(store.list_api_keys(None).await.unwrap()),
            Some(now + 61_000)
        );
    })
    .await;
}

#[tokio::test]
async fn api_keys_store_a_hash_not_the_key() {
    each_backend(|store| async move {
        let acme = tenant(&store, "acme").await;
        let ana = store
            .create_agent(acme, "Ana", json!({}), &audit("a", "a", ""))
            .await
            .unwrap();
        let (listed, key) = store
            .create_api_key(
                Some(acme),
                Role::Agent,
                Some(ana.id),
                "desk",
                None,
                &audit("k", "k", ""),
            )
            .await
            .unwrap();
        let stored = raw_strings(
            &store,
            "SELECT name, role, prefix, hash FROM api_keys WHERE id = $1",
            &listed.id.to_string(),
        )
        .await;
        let expected_hash = hex::encode(Sha256::digest(key.as_bytes()));
        assert_eq!(stored[2], key[3..15]);
        assert_eq!(stored[3], expected_hash);
        let secret = &key[15..];
        for column in &stored {
            assert!(!column.contains(secret), "secret stored in {column:?}");
        }
        // The audit trail does not carry it either.
        for entry in store.list_audit(None, 100).await.unwrap() {
            assert!(!entry.detail.to_string().contains(secret));
            assert!(!entry.object_id.contains(secret));
        }
    })
    .await;
}

#[tokio::test]
async fn agent_keys_act_for_one_agent_of_their_own_tenant() {
    each_backend(|store| async move {
        let acme = tenant(&store, "acme").await;
        let globex = tenant(&store, "globex").await;
        let ana = store
            .create_agent(acme, "Ana", json!({}), &audit("a", "a", ""))
            .await
            .unwrap();
        let bob = store
            .create_agent(acme, "Bob", json!({}), &audit("a", "a", ""))
            .await
            .unwrap();
        let gus = store
            .create_agent(globex, "Gus", json!({}), &audit("a", "a", ""))
            .await
            .unwrap();
        let before = audit_count(&store, Some(acme)).await;
        for (tenant, role, agent, why) in [
            (
                Some(acme),
                Role::Agent,
                None,
                "an agent key names its agent",
            ),
            (
                Some(acme),
                Role::Agent,
                Some(gus.id),
                "another tenant's agent",
            ),
            (Some(acme), Role::Agent, Some(999_999), "no such agent"),
            (Some(acme), Role::Admin, Some(ana.id), "only agent keys"),
            (Some(acme), Role::ReadOnly, Some(ana.id), "only agent keys"),
            (None, Role::PlatformAdmin, Some(ana.id), "only agent keys"),
        ] {
            let r = store
                .create_api_key(tenant, role, agent, "k", None, &audit_as(acme, "k", ""))
                .await;
            assert!(
                matches!(
                    r,
                    Err(StoreError::Invalid {
                        field: "agent_id",
                        ..
                    })
                ),
                "{why}: {r:?}"
            );
        }
        assert_eq!(
            audit_count(&store, Some(acme)).await,
            before,
            "nothing written"
        );

        let (listed, key) = store
            .create_api_key(
                Some(acme),
                Role::Agent,
                Some(ana.id),
                "desk",
                None,
                &audit_as(acme, "k", ""),
            )
            .await
            .unwrap();
        assert_eq!(listed.agent_id, Some(ana.id));
        let (_, bobs_key) = store
            .create_api_key(
                Some(acme),
                Role::Agent,
                Some(bob.id),
                "bob",
                None,
                &audit_as(acme, "k", ""),
            )
            .await
            .unwrap();
        let me = store.authenticate(&key, now_ms()).await.unwrap().unwrap();
        assert_eq!((me.role, me.agent_id), (Role::Agent, Some(ana.id)));
        let (admin, admin_key) = store
            .create_api_key(
                Some(acme),
                Role::Admin,
                None,
                "a",
                None,
                &audit_as(acme, "k", ""),
            )
            .await
            .unwrap();
        let listed_agents: Vec<(Role, Option<i64>)> = store
            .list_api_keys(Some(acme))
            .await
            .unwrap()
            .iter()
            .map(|k| (k.role, k.agent_id))
            .collect();
        assert_eq!(
            listed_agents,
            [
                (Role::Agent, Some(ana.id)),
                (Role::Agent, Some(bob.id)),
                (Role::Admin, None)
            ]
        );
        // The database itself refuses an agent on a key of another role.
        let bound_admin = raw_execute(
            &store,
            format!(
                "UPDATE api_keys SET agent_id = {} WHERE id = '{}'",
                ana.id, admin.id
            ),
        )
        .await;
        assert!(bound_admin.is_err(), "{bound_admin:?}");
        assert_eq!(
            store
                .authenticate(&admin_key, now_ms())
                .await
                .unwrap()
                .map(|p| p.agent_id),
            Some(None)
        );

        // Deleting the agent revokes its keys (audited one by one), and only its keys.
        let gone = audit_as(acme, "agent.delete", ana.id.to_string());
        assert!(store.delete_agent(acme, ana.id, &gone).await.unwrap());
        assert_eq!(store.authenticate(&key, now_ms()).await.unwrap(), None);
        assert!(
            store
                .authenticate(&bobs_key, now_ms())
                .await
                .unwrap()
                .is_some()
        );
        let keys = store.list_api_keys(Some(acme)).await.unwrap();
        let desk = keys.iter().find(|k| k.id == listed.id).unwrap();
        assert!(desk.revoked_at_ms.is_some(), "{desk:?}");
        assert_eq!(desk.agent_id, None, "the agent is gone");
        let log = store.list_audit(Some(acme), 2).await.unwrap();
        let actions: HashSet<(&str, &str)> = log
            .iter()
            .map(|e| (e.action.as_str(), e.object_id.as_str()))
            .collect();
        let ana_id = ana.id.to_string();
        let key_id = listed.id.to_string();
        assert_eq!(
            actions,
            HashSet::from([
                ("agent.delete", ana_id.as_str()),
                ("api_key.revoke", key_id.as_str())
            ])
        );
        // An agent of the tenant that is not there: false, and no key revoked.
        assert!(!store.delete_agent(acme, ana.id, &gone).await.unwrap());
        assert!(!store.delete_agent(globex, bob.id, &gone).await.unwrap());
        assert!(
            store
                .authenticate(&bobs_key, now_ms())
                .await
                .unwrap()
                .is_some()
        );
    })
    .await;
}

/// The embedded migrations up to and including `version`, for a database as an older build
/// left it.
fn migrator_up_to(backend: Backend, version: i64) -> sqlx::migrate::Migrator {
    use sqlx::SqlStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let all: [(&'static str, &'static str, &'static str); 2] = [
        (
            "init",
            include_str!("../../migrations/sqlite/0001_init.sql"),
            include_str!("../../migrations/postgres/0001_init.sql"),
        ),
        (
            "campaigns",
            include_str!("../../migrations/sqlite/0002_campaigns.sql"),
            include_str!("../../migrations/postgres/0002_campaigns.sql"),
        ),
    ];
    Migrator::with_migrations(
        (1..)
            .zip(all)
            .take_while(|(v, _)| *v <= version)
            .map(|(v, (name, sqlite, pg))| {
                let sql = if backend == Backend::Sqlite {
                    sqlite
                } else {
                    pg
                };
                Migration::new(
                    v,
                    name.into(),
                    MigrationType::Simple,
                    SqlStr::from_static(sql),
                    false,
                )
            })
            .collect(),
    )
}

#[tokio::test]
async fn migration_3_leaves_existing_keys_unbound_and_working() {
    each_unmigrated_backend(|store| async move {
        let old = migrator_up_to(store.backend(), 2);
        match store.pools() {
            Pools::Sqlite { writer, .. } => old.run(writer).await.expect("sqlite 0001-0002"),
            Pools::Postgres(pg) => old.run(pg).await.expect("postgres 0001-0002"),
        }
        // Keys as the version-2 schema stored them (no agent column).
        let t = Uuid::new_v4();
        raw_execute(
            &store,
            format!("INSERT INTO tenants (id, name, disabled, created_at) VALUES ('{t}', 'acme', FALSE, 1)"),
        )
        .await
        .unwrap();
        let mut keys = Vec::new();
        for (i, role) in ["admin", "agent"].into_iter().enumerate() {
            let key = format!(
                "sy_{}{}",
                Uuid::new_v4().simple(),
                Uuid::new_v4().simple()
            );
            let hash = hex::encode(Sha256::digest(key.as_bytes()));
            let id = Uuid::new_v4();
            raw_execute(
                &store,
                format!(
                    "INSERT INTO api_keys (id, tenant_id, name, role, prefix, hash, created_at) \
                     VALUES ('{id}', '{t}', 'k{i}', '{role}', '{}', '{hash}', {i})",
                    &key[3..15]
                ),
            )
            .await
            .unwrap();
            keys.push((id, key));
        }

        store.migrate().await.expect("0003 on top of 0002");
        store.migrate().await.expect("and then a no-op");
        let now = now_ms();
        for ((id, key), role) in keys.iter().zip([Role::Admin, Role::Agent]) {
            let p = store.authenticate(key, now).await.unwrap();
            assert_eq!(
                p,
                Some(Principal {
                    key_id: *id,
                    tenant: Some(TenantId(t)),
                    role,
                    agent_id: None,
                })
            );
        }
        let listed = store.list_api_keys(Some(TenantId(t))).await.unwrap();
        assert_eq!(
            listed.iter().map(|k| k.agent_id).collect::<Vec<_>>(),
            [None, None]
        );
        // And the new column takes bound keys.
        let ana = store
            .create_agent(TenantId(t), "Ana", json!({}), &audit("a", "a", ""))
            .await
            .unwrap();
        let (bound, _) = store
            .create_api_key(
                Some(TenantId(t)),
                Role::Agent,
                Some(ana.id),
                "desk",
                None,
                &audit("k", "k", ""),
            )
            .await
            .unwrap();
        assert_eq!(bound.agent_id, Some(ana.id));
    })
    .await;
}

#[tokio::test]
async fn configuration_crud_and_tenant_isolation() {
    each_backend(|store| async move {
        let a = tenant(&store, "a").await;
        let b = tenant(&store, "b").await;

        let skill = store
            .create_skill(a, "french", &audit_as(a, "skill.create", ""))
            .await
            .unwrap();
        let queue = store
            .create_queue(
                a,
                "sales",
                json!({"strategy": "longest-idle"}),
                &audit_as(a, "queue.create", ""),
            )
            .await
            .unwrap();
        let agent = store
            .create_agent(
                a,
                "alice",
                json!({"skills": [skill.id]}),
                &audit_as(a, "agent.create", ""),
            )
            .await
            .unwrap();
        assert!(skill.id > 0 && queue.id > 0 && agent.id > 0);
        assert_eq!(agent.presence, Value::Null);
        assert!(
            store
                .set_member(
                    a,
                    queue.id,
                    agent.id,
                    1,
                    2,
                    3,
                    &audit_as(a, "member.set", "m")
                )
                .await
                .unwrap()
        );

        // Reads as A.
        assert_eq!(
            store.get_queue(a, queue.id).await.unwrap(),
            Some(queue.clone())
        );
        assert_eq!(store.list_queues(a).await.unwrap(), vec![queue.clone()]);
        assert_eq!(
            store.get_agent(a, agent.id).await.unwrap(),
            Some(agent.clone())
        );
        assert_eq!(store.list_agents(a).await.unwrap(), vec![agent.clone()]);
        assert_eq!(store.list_skills(a).await.unwrap(), vec![skill.clone()]);
        let members = store.list_members(a, queue.id).await.unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(
            (
                members[0].tenant,
                members[0].agent_id,
                members[0].level,
                members[0].position,
                members[0].weight
            ),
            (a, agent.id, 1, 2, 3)
        );

        // B sees nothing of A's and can change nothing of A's; its failed attempts leave no
        // audit rows.
        let as_b = audit_as(b, "attempt", "x");
        assert_eq!(store.get_queue(b, queue.id).await.unwrap(), None);
        assert!(store.list_queues(b).await.unwrap().is_empty());
        assert_eq!(store.get_agent(b, agent.id).await.unwrap(), None);
        assert!(store.list_agents(b).await.unwrap().is_empty());
        assert!(store.list_skills(b).await.unwrap().is_empty());
        assert!(store.list_members(b, queue.id).await.unwrap().is_empty());
        assert_eq!(
            store
                .update_queue(b, queue.id, Some("mine"), Some(json!({})), &as_b)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .update_agent(b, agent.id, Some("mine"), None, &as_b)
                .await
                .unwrap(),
            None
        );
        assert!(
            !store
                .set_agent_presence(b, agent.id, json!({"state": "x"}))
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_member(b, queue.id, agent.id, 9, 9, 9, &as_b)
                .await
                .unwrap()
        );
        assert!(
            !store
                .remove_member(b, queue.id, agent.id, &as_b)
                .await
                .unwrap()
        );
        assert!(!store.delete_queue(b, queue.id, &as_b).await.unwrap());
        assert!(!store.delete_agent(b, agent.id, &as_b).await.unwrap());
        assert!(!store.delete_skill(b, skill.id, &as_b).await.unwrap());
        assert_eq!(audit_count(&store, Some(b)).await, 0);

        // Nor can A link B's agent into its own queue.
        let b_agent = store
            .create_agent(b, "bob", json!({}), &as_b)
            .await
            .unwrap();
        let before = audit_count(&store, Some(a)).await;
        assert!(
            !store
                .set_member(a, queue.id, b_agent.id, 1, 1, 1, &audit_as(a, "m", "m"))
                .await
                .unwrap()
        );
        assert_eq!(audit_count(&store, Some(a)).await, before);

        // A's objects are untouched.
        assert_eq!(
            store.get_queue(a, queue.id).await.unwrap(),
            Some(queue.clone())
        );
        assert_eq!(
            store.get_agent(a, agent.id).await.unwrap(),
            Some(agent.clone())
        );
        assert_eq!(store.list_members(a, queue.id).await.unwrap(), members);
        assert_eq!(store.all_agents().await.unwrap().len(), 2);

        // Updates as A.
        let renamed = store
            .update_queue(
                a,
                queue.id,
                Some("sales-eu"),
                None,
                &audit_as(a, "queue.update", queue.id.to_string()),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(renamed.name, "sales-eu");
        assert_eq!(renamed.config, queue.config);
        assert_eq!(renamed.created_at_ms, queue.created_at_ms);
        assert!(renamed.updated_at_ms >= queue.updated_at_ms);
        let reconfigured = store
            .update_queue(
                a,
                queue.id,
                None,
                Some(json!({"strategy": "ring-all"})),
                &audit_as(a, "queue.update", ""),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reconfigured.name, "sales-eu");
        assert_eq!(reconfigured.config, json!({"strategy": "ring-all"}));
        let agent2 = store
            .update_agent(
                a,
                agent.id,
                None,
                Some(json!({"skills": []})),
                &audit_as(a, "agent.update", ""),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(agent2.config, json!({"skills": []}));

        // Presence is state: saved, no audit, updated_at unmoved.
        let before = audit_count(&store, Some(a)).await;
        assert!(
            store
                .set_agent_presence(a, agent.id, json!({"state": "available"}))
                .await
                .unwrap()
        );
        let now_agent = store.get_agent(a, agent.id).await.unwrap().unwrap();
        assert_eq!(now_agent.presence, json!({"state": "available"}));
        assert_eq!(now_agent.updated_at_ms, agent2.updated_at_ms);
        assert_eq!(audit_count(&store, Some(a)).await, before);

        // Deletes as A; memberships go with the queue.
        assert!(
            store
                .delete_skill(a, skill.id, &audit_as(a, "skill.delete", ""))
                .await
                .unwrap()
        );
        assert!(store.list_skills(a).await.unwrap().is_empty());
        assert!(
            store
                .delete_queue(a, queue.id, &audit_as(a, "queue.delete", ""))
                .await
                .unwrap()
        );
        assert_eq!(store.get_queue(a, queue.id).await.unwrap(), None);
        assert!(store.all_members().await.unwrap().is_empty());
        assert!(
            !store
                .delete_queue(a, queue.id, &audit_as(a, "queue.delete", ""))
                .await
                .unwrap()
        );
        assert!(
            store
                .delete_agent(a, agent.id, &audit_as(a, "agent.delete", ""))
                .await
                .unwrap()
        );
        assert!(store.list_agents(a).await.unwrap().is_empty());

        // Ids are not reused after a delete.
        let again = store
            .create_queue(a, "sales", json!({}), &audit_as(a, "queue.create", ""))
            .await
            .unwrap();
        assert!(again.id > queue.id);
    })
    .await;
}

#[tokio::test]
async fn duplicate_names_conflict_and_write_no_audit() {
    each_backend(|store| async move {
        let a = tenant(&store, "a").await;
        let b = tenant(&store, "b").await;
        let au = audit_as(a, "create", "");
        store
            .create_queue(a, "sales", json!({}), &au)
            .await
            .unwrap();
        let support = store
            .create_queue(a, "support", json!({}), &au)
            .await
            .unwrap();
        store
            .create_agent(a, "alice", json!({}), &au)
            .await
            .unwrap();
        let bob = store.create_agent(a, "bob", json!({}), &au).await.unwrap();
        store.create_skill(a, "french", &au).await.unwrap();
        let count = audit_count(&store, Some(a)).await;
        assert_eq!(count, 5);

        assert!(is_conflict(
            store.create_queue(a, "sales", json!({}), &au).await,
            "queue name"
        ));
        assert!(is_conflict(
            store.create_agent(a, "alice", json!({}), &au).await,
            "agent name"
        ));
        assert!(is_conflict(
            store.create_skill(a, "french", &au).await,
            "skill name"
        ));
        assert!(is_conflict(
            store
                .update_queue(a, support.id, Some("sales"), None, &au)
                .await,
            "queue name"
        ));
        assert!(is_conflict(
            store
                .update_agent(a, bob.id, Some("alice"), None, &au)
                .await,
            "agent name"
        ));
        assert_eq!(
            audit_count(&store, Some(a)).await,
            count,
            "a refused change wrote audit"
        );
        assert_eq!(
            store.get_queue(a, support.id).await.unwrap().unwrap().name,
            "support"
        );

        // Names are per tenant.
        let bu = audit_as(b, "create", "");
        store
            .create_queue(b, "sales", json!({}), &bu)
            .await
            .unwrap();
        store
            .create_agent(b, "alice", json!({}), &bu)
            .await
            .unwrap();
        store.create_skill(b, "french", &bu).await.unwrap();

        // An unknown tenant is NotFound, and audits nothing.
        let ghost = TenantId(Uuid::new_v4());
        let r = store.create_queue(ghost, "q", json!({}), &au).await;
        assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
        assert_eq!(audit_count(&store, Some(ghost)).await, 0);
    })
    .await;
}

#[tokio::test]
async fn every_change_writes_its_audit_row_for_the_objects_tenant() {
    each_backend(|store| async move {
        let a = tenant(&store, "a").await;
        let b = tenant(&store, "b").await;
        let key = Uuid::new_v4();
        // The entry claims tenant B: the row goes to A, the queue's owner.
        let entry = AuditEntry {
            tenant: Some(b),
            key_id: Some(key),
            action: "queue.create",
            object_kind: "queue",
            object_id: "whatever".into(),
            detail: json!({"name": "sales"}),
        };
        let q = store
            .create_queue(a, "sales", json!({}), &entry)
            .await
            .unwrap();
        let agent = store
            .create_agent(a, "alice", json!({}), &audit_as(a, "agent.create", ""))
            .await
            .unwrap();
        store
            .set_member(
                a,
                q.id,
                agent.id,
                0,
                0,
                0,
                &audit_as(a, "member.set", "q/a"),
            )
            .await
            .unwrap();
        store
            .remove_member(a, q.id, agent.id, &audit_as(a, "member.remove", "q/a"))
            .await
            .unwrap();
        assert!(
            !store
                .remove_member(a, q.id, agent.id, &audit_as(a, "member.remove", "q/a"))
                .await
                .unwrap()
        );
        store
            .delete_queue(a, q.id, &audit_as(a, "queue.delete", q.id.to_string()))
            .await
            .unwrap();

        assert_eq!(audit_count(&store, Some(b)).await, 0);
        let log = store.list_audit(Some(a), 100).await.unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "queue.delete",
                "member.remove",
                "member.set",
                "agent.create",
                "queue.create"
            ]
        );
        let created = log.last().unwrap();
        assert_eq!(created.tenant, Some(a));
        assert_eq!(created.key_id, Some(key));
        assert_eq!(created.object_kind, "queue");
        assert_eq!(created.object_id, q.id.to_string());
        assert_eq!(created.detail, json!({"name": "sales"}));
        assert!(created.at_ms > 0);
        assert_eq!(log[3].object_id, agent.id.to_string());
        assert_eq!(log[1].object_id, "q/a");
        assert!(log.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        assert_eq!(store.list_audit(Some(a), 2).await.unwrap().len(), 2);

        // An audit row on its own (supervision), written as given.
        store
            .insert_audit(&audit_as(b, "agent.monitor", "42"))
            .await
            .unwrap();
        let log = store.list_audit(Some(b), 10).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(
            (log[0].action.as_str(), log[0].object_id.as_str()),
            ("agent.monitor", "42")
        );
        assert_eq!(
            store.list_audit(Some(a), 0).await.unwrap().len(),
            1,
            "limit clamps to 1"
        );
    })
    .await;
}

#[tokio::test]
async fn members_upsert_order_validate_and_cascade() {
    each_backend(|store| async move {
        let t = tenant(&store, "t").await;
        let au = audit_as(t, "x", "x");
        let q = store.create_queue(t, "q", json!({}), &au).await.unwrap();
        let q2 = store.create_queue(t, "q2", json!({}), &au).await.unwrap();
        let x = store.create_agent(t, "x", json!({}), &au).await.unwrap();
        let y = store.create_agent(t, "y", json!({}), &au).await.unwrap();
        assert!(store.set_member(t, q.id, x.id, 2, 0, 1, &au).await.unwrap());
        assert!(store.set_member(t, q.id, y.id, 1, 5, 1, &au).await.unwrap());
        assert!(
            store
                .set_member(t, q2.id, x.id, 1, 1, 1, &au)
                .await
                .unwrap()
        );
        let order: Vec<i64> = store
            .list_members(t, q.id)
            .await
            .unwrap()
            .iter()
            .map(|m| m.agent_id)
            .collect();
        assert_eq!(order, [y.id, x.id]);
        // Upsert: a second set changes the tier, no second row.
        assert!(store.set_member(t, q.id, x.id, 0, 7, 9, &au).await.unwrap());
        let members = store.list_members(t, q.id).await.unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(
            (
                members[0].agent_id,
                members[0].level,
                members[0].position,
                members[0].weight
            ),
            (x.id, 0, 7, 9)
        );
        for (l, p, w, field) in [
            (-1, 0, 0, "level"),
            (0, -1, 0, "position"),
            (0, 0, -1, "weight"),
        ] {
            let r = store.set_member(t, q.id, x.id, l, p, w, &au).await;
            assert!(matches!(r, Err(StoreError::Invalid { field: f, .. }) if f == field));
        }
        assert!(
            !store
                .set_member(t, q.id, 999_999, 1, 1, 1, &au)
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_member(t, 999_999, x.id, 1, 1, 1, &au)
                .await
                .unwrap()
        );
        // Deleting an agent removes it from every queue.
        assert!(store.delete_agent(t, x.id, &au).await.unwrap());
        let all = store.all_members().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].queue_id, all[0].agent_id, all[0].tenant),
            (q.id, y.id, t)
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// History

fn call(tenant: TenantId, i: i64) -> CallRow {
    CallRow {
        id: Uuid::new_v4(),
        tenant,
        queue_id: 1 + i % 3,
        queues: vec![7, 1 + i % 3],
        agent_id: (i % 4 != 0).then_some(10 + i % 2),
        caller_number: format!("+1555000{:03}", i % 5),
        outcome: if i % 4 == 0 { "abandoned" } else { "answered" }.into(),
        // Several calls per millisecond: ties on arrived_at that only the id breaks.
        arrived_at_ms: 1_700_000_000_000 + (i / 3) * 1000,
        wait_ms: 1000 + i,
        talk_ms: 60_000 + i,
        offers: (i % 3) as i32,
        synthetic: i % 10 == 9,
        callback_leg: (i % 7 == 0).then(Uuid::new_v4),
    }
}

#[tokio::test]
async fn call_batches_are_idempotent() {
    each_backend(|store| async move {
        let a = tenant(&store, "a").await;
        let b = tenant(&store, "b").await;
        let rows: Vec<CallRow> = (0..3).map(|i| call(a, i)).collect();
        store.insert_calls(&rows).await.unwrap();
        store.insert_calls(&[]).await.unwrap();
        // Again (a batch retried after its commit), with one new row and the same record twice
        // inside the batch too: the saved rows stay as they were, the new one is added.
        let mut again = rows.clone();
        again.push(call(a, 3));
        again.push(again[1].clone());
        store.insert_calls(&again).await.unwrap();

        let (page, next) = store
            .list_calls(
                a,
                &CallFilter {
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.len(), 4);
        assert_eq!(next, None);
        for r in &rows {
            assert_eq!(
                store.get_call(a, r.id).await.unwrap().as_ref(),
                Some(r),
                "round trip"
            );
            assert_eq!(store.get_call(b, r.id).await.unwrap(), None, "other tenant");
        }
        let (page, _) = store
            .list_calls(
                b,
                &CallFilter {
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(page.is_empty());
    })
    .await;
}

#[tokio::test]
async fn list_calls_filters_and_pages_without_gaps_or_duplicates() {
    each_backend(|store| async move {
        let a = tenant(&store, "a").await;
        let b = tenant(&store, "b").await;
        // 520 rows: more than one INSERT chunk, more than the largest page.
        let mut rows: Vec<CallRow> = (0..520).map(|i| call(a, i)).collect();
        store.insert_calls(&rows).await.unwrap();
        store
            .insert_calls(&(0..5).map(|i| call(b, i)).collect::<Vec<_>>())
            .await
            .unwrap();

        // The whole list, newest first, in pages of 7.
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let filter = CallFilter {
                limit: 7,
                cursor: cursor.clone(),
                ..Default::default()
            };
            let (page, next) = store.list_calls(a, &filter).await.unwrap();
            assert!(page.len() <= 7);
            pages += 1;
            seen.extend(page);
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(pages, 520usize.div_ceil(7));
        assert_eq!(seen.len(), 520);
        let ids: HashSet<Uuid> = seen.iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            rows.iter().map(|c| c.id).collect::<HashSet<_>>(),
            "no gaps, no duplicates"
        );
        assert!(
            seen.windows(2)
                .all(|w| w[0].arrived_at_ms >= w[1].arrived_at_ms),
            "newest first"
        );

        // Pages agree with one big read; the limit clamps to 1..=500.
        let (big, next) = store
            .list_calls(
                a,
                &CallFilter {
                    limit: 10_000,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(big.len(), 500);
        assert!(next.is_some());
        assert_eq!(big[..], seen[..500]);
        let (one, next) = store
            .list_calls(
                a,
                &CallFilter {
                    limit: 0,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0], seen[0]);
        // A newer call arriving mid-paging does not shift the next page.
        let (_, next1) = store
            .list_calls(
                a,
                &CallFilter {
                    limit: 1,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut newer = call(a, 9999);
        newer.arrived_at_ms = i64::MAX / 2;
        store
            .insert_calls(std::slice::from_ref(&newer))
            .await
            .unwrap();
        let (p2, _) = store
            .list_calls(
                a,
                &CallFilter {
                    limit: 1,
                    cursor: next1.or(next),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(p2[0], seen[1]);
        rows.push(newer);

        // Filters, each against the same predicate applied here.
        let t0 = rows[100].arrived_at_ms;
        let t1 = rows[300].arrived_at_ms;
        type Keep = Box<dyn Fn(&CallRow) -> bool + Send>;
        let cases: Vec<(CallFilter, Keep)> = vec![
            (
                CallFilter {
                    from_ms: Some(t0),
                    to_ms: Some(t1),
                    ..Default::default()
                },
                Box::new(move |c: &CallRow| c.arrived_at_ms >= t0 && c.arrived_at_ms < t1),
            ),
            (
                CallFilter {
                    queue_id: Some(2),
                    ..Default::default()
                },
                Box::new(|c: &CallRow| c.queue_id == 2),
            ),
            (
                CallFilter {
                    agent_id: Some(11),
                    ..Default::default()
                },
                Box::new(|c: &CallRow| c.agent_id == Some(11)),
            ),
            (
                CallFilter {
                    caller_number: Some("+1555000003".into()),
                    ..Default::default()
                },
                Box::new(|c: &CallRow| c.caller_number == "+1555000003"),
            ),
            (
                CallFilter {
                    outcome: Some("abandoned".into()),
                    queue_id: Some(1),
                    ..Default::default()
                },
                Box::new(|c: &CallRow| c.outcome == "abandoned" && c.queue_id == 1),
            ),
        ];
        for (mut filter, keep) in cases {
            let expected: HashSet<Uuid> = rows.iter().filter(|c| keep(c)).map(|c| c.id).collect();
            assert!(!expected.is_empty());
            let mut got = HashSet::new();
            filter.limit = 50;
            loop {
                let (page, next) = store.list_calls(a, &filter).await.unwrap();
                for c in page {
                    assert!(keep(&c), "{filter:?} returned {c:?}");
                    assert!(got.insert(c.id), "duplicate");
                }
                match next {
                    Some(n) => filter.cursor = Some(n),
                    None => break,
                }
            }
            assert_eq!(got, expected, "{filter:?}");
        }

        // Cursors that are not ours.
        for bad in [
            "",
            "x",
            "01",
            &"00".repeat(25),
            &format!("{}00", cursor.clone().unwrap_or_default()),
        ] {
            let filter = CallFilter {
                limit: 5,
                cursor: Some(bad.to_owned()),
                ..Default::default()
            };
            let r = store.list_calls(a, &filter).await;
            assert!(
                matches!(
                    r,
                    Err(StoreError::Invalid {
                        field: "cursor",
                        ..
                    })
                ),
                "{bad:?}: {r:?}"
            );
        }
    })
    .await;
}

fn cdr(tenant: TenantId, call_id: Uuid, leg: Uuid, synthetic: bool, cause: &str) -> CdrRow {
    CdrRow {
        leg,
        tenant: Some(tenant),
        call_id: Some(call_id),
        direction: "inbound".into(),
        caller_number: "+15550001".into(),
        destination: "sales".into(),
        hangup_cause: cause.into(),
        started_at_ms: 1_000,
        answered_at_ms: (!synthetic).then_some(2_000),
        ended_at_ms: 9_000,
        billsec_ms: 7_000,
        synthetic,
    }
}

#[tokio::test]
async fn cdrs_traces_and_intervals() {
    each_backend(|store| async move {
        let a = tenant(&store, "a").await;
        let b = tenant(&store, "b").await;
        let call_id = Uuid::new_v4();

        // CDRs: a real record replaces a synthetic one, never the other way round.
        let leg1 = Uuid::new_v4();
        let leg2 = Uuid::new_v4();
        store
            .insert_cdrs(&[cdr(a, call_id, leg1, true, "RECOVERY")])
            .await
            .unwrap();
        store
            .insert_cdrs(&[
                cdr(a, call_id, leg1, false, "NORMAL_CLEARING"),
                cdr(a, call_id, leg2, false, "NORMAL_CLEARING"),
                cdr(a, call_id, leg2, true, "RECOVERY"),
            ])
            .await
            .unwrap();
        store
            .insert_cdrs(&[cdr(a, call_id, leg1, true, "RECOVERY")])
            .await
            .unwrap();
        let cdrs = store.cdrs_for_call(a, call_id).await.unwrap();
        assert_eq!(cdrs.len(), 2);
        assert!(
            cdrs.iter()
                .all(|c| !c.synthetic && c.hangup_cause == "NORMAL_CLEARING")
        );
        assert_eq!(
            cdrs.iter().find(|c| c.leg == leg1).unwrap(),
            &cdr(a, call_id, leg1, false, "NORMAL_CLEARING")
        );
        assert!(store.cdrs_for_call(b, call_id).await.unwrap().is_empty());
        // A leg with no tenant is stored, and listed for no tenant.
        let mut orphan = cdr(a, call_id, Uuid::new_v4(), false, "NORMAL_CLEARING");
        orphan.tenant = None;
        orphan.call_id = None;
        store.insert_cdrs(&[orphan]).await.unwrap();
        assert_eq!(store.cdrs_for_call(a, call_id).await.unwrap().len(), 2);

        // Traces: idempotent by id, in time order, tenant-scoped.
        let traces: Vec<TraceRow> = (0..3)
            .map(|n| TraceRow {
                id: format!("{call_id}:{n}"),
                tenant: a,
                call_id,
                at_ms: 5_000 - n,
                queue_id: 1,
                agent_id: (n > 0).then_some(n),
                trace: json!({"offer": n, "candidates": [1, 2]}),
            })
            .collect();
        store.insert_traces(&traces).await.unwrap();
        store.insert_traces(&traces).await.unwrap();
        let got = store.traces_for_call(a, call_id).await.unwrap();
        let want: Vec<TraceRow> = traces.iter().rev().cloned().collect();
        assert_eq!(got, want);
        assert!(store.traces_for_call(b, call_id).await.unwrap().is_empty());

        // Intervals: a re-write replaces the figures; scopes and tenants are apart.
        let iv = |tenant, scope, start, n: i64| IntervalRow {
            tenant,
            scope,
            start_ms: start,
            end_ms: start + 900_000,
            figures: json!({"offered": n}),
        };
        store
            .insert_intervals(&[
                iv(Some(a), IntervalScope::Queue(1), 0, 1),
                iv(Some(a), IntervalScope::Queue(1), 900_000, 2),
                iv(Some(a), IntervalScope::Agent(1), 0, 3),
                iv(Some(a), IntervalScope::Total, 0, 4),
                iv(None, IntervalScope::Total, 0, 5),
                iv(Some(b), IntervalScope::Queue(1), 0, 6),
            ])
            .await
            .unwrap();
        store
            .insert_intervals(&[
                iv(Some(a), IntervalScope::Queue(1), 0, 10),
                iv(Some(a), IntervalScope::Queue(1), 0, 11),
            ])
            .await
            .unwrap();
        let q = store
            .list_intervals(Some(a), IntervalScope::Queue(1), 0, 10_000_000)
            .await
            .unwrap();
        assert_eq!(
            q,
            vec![
                iv(Some(a), IntervalScope::Queue(1), 0, 11),
                iv(Some(a), IntervalScope::Queue(1), 900_000, 2)
            ]
        );
        let q = store
            .list_intervals(Some(a), IntervalScope::Queue(1), 1, 10_000_000)
            .await
            .unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(
            store
                .list_intervals(Some(a), IntervalScope::Agent(1), 0, 1)
                .await
                .unwrap()[0]
                .figures,
            json!({"offered": 3})
        );
        assert_eq!(
            store
                .list_intervals(Some(a), IntervalScope::Total, 0, 1)
                .await
                .unwrap()[0]
                .figures,
            json!({"offered": 4})
        );
        assert_eq!(
            store
                .list_intervals(None, IntervalScope::Total, 0, 1)
                .await
                .unwrap(),
            vec![iv(None, IntervalScope::Total, 0, 5)]
        );
        assert_eq!(
            store
                .list_intervals(Some(b), IntervalScope::Queue(1), 0, 1)
                .await
                .unwrap()[0]
                .figures,
            json!({"offered": 6})
        );
        assert!(
            store
                .list_intervals(Some(b), IntervalScope::Queue(2), 0, 1)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

fn is_duplicate(r: Result<(), StoreError>, kind: &str, want: &[String]) -> bool {
    matches!(&r, Err(StoreError::Duplicate { what, ids }) if *what == kind && ids == want)
}

#[tokio::test]
async fn another_call_under_a_stored_id_is_refused_and_the_stored_one_kept() {
    each_backend(|store| async move {
        let a = tenant(&store, "a").await;
        let first = call(a, 1);
        store
            .insert_calls(std::slice::from_ref(&first))
            .await
            .unwrap();
        // Another call under the same uuid (a switch that reuses them), with a new one.
        let mut other = call(a, 2);
        other.id = first.id;
        let fresh = call(a, 3);
        let r = store.insert_calls(&[fresh.clone(), other]).await;
        assert!(is_duplicate(r, "call", &[first.id.to_string()]));
        assert_eq!(
            store.get_call(a, first.id).await.unwrap().as_ref(),
            Some(&first)
        );
        assert_eq!(
            store.get_call(a, fresh.id).await.unwrap(),
            None,
            "nothing written"
        );
        // Without it the rest lands; the stored record written again is still a no-op.
        store
            .insert_calls(&[fresh.clone(), first.clone()])
            .await
            .unwrap();
        assert_eq!(
            store.get_call(a, fresh.id).await.unwrap().as_ref(),
            Some(&fresh)
        );
        // Two calls under one id inside one batch: the same refusal, nothing written.
        let twin = call(a, 4);
        let mut twin2 = call(a, 5);
        twin2.id = twin.id;
        let r = store.insert_calls(&[twin.clone(), twin2]).await;
        assert!(is_duplicate(r, "call", &[twin.id.to_string()]));
        assert_eq!(store.get_call(a, twin.id).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn a_cdr_is_never_overwritten_by_another_legs_record() {
    each_backend(|store| async move {
        let a = tenant(&store, "a").await;
        let call_id = Uuid::new_v4();
        let leg = Uuid::new_v4();
        let real = cdr(a, call_id, leg, false, "NORMAL_CLEARING");
        store
            .insert_cdrs(std::slice::from_ref(&real))
            .await
            .unwrap();
        store
            .insert_cdrs(std::slice::from_ref(&real))
            .await
            .unwrap();
        // A later leg under the same uuid (another run of a switch that reuses them).
        let mut later = cdr(a, call_id, leg, false, "USER_BUSY");
        later.started_at_ms = 50_000;
        later.ended_at_ms = 60_000;
        let r = store.insert_cdrs(&[later]).await;
        assert!(is_duplicate(r, "cdr", &[leg.to_string()]));
        assert_eq!(
            store.cdrs_for_call(a, call_id).await.unwrap(),
            vec![real.clone()]
        );
        // A synthetic record is replaced only by its own leg's real one: not by a leg that
        // began after it ended, nor by a leg of another call.
        let guessed = Uuid::new_v4();
        let guess = cdr(a, call_id, guessed, true, "RECOVERY");
        store
            .insert_cdrs(std::slice::from_ref(&guess))
            .await
            .unwrap();
        let mut next_run = cdr(a, call_id, guessed, false, "NORMAL_CLEARING");
        next_run.started_at_ms = guess.ended_at_ms + 1;
        next_run.ended_at_ms = guess.ended_at_ms + 9_000;
        let r = store.insert_cdrs(&[next_run]).await;
        assert!(is_duplicate(r, "cdr", &[guessed.to_string()]));
        let elsewhere = cdr(a, Uuid::new_v4(), guessed, false, "NORMAL_CLEARING");
        let r = store.insert_cdrs(&[elsewhere]).await;
        assert!(is_duplicate(r, "cdr", &[guessed.to_string()]));
        // Both start at the same millisecond: listed by leg then.
        let by_leg = |mut v: Vec<CdrRow>| {
            v.sort_by_key(|c| c.leg.to_string());
            v
        };
        let stored = store.cdrs_for_call(a, call_id).await.unwrap();
        assert_eq!(stored, by_leg(vec![real.clone(), guess.clone()]));
        // Its own leg's real record does replace it.
        let own = cdr(a, call_id, guessed, false, "NORMAL_CLEARING");
        store.insert_cdrs(std::slice::from_ref(&own)).await.unwrap();
        let stored = store.cdrs_for_call(a, call_id).await.unwrap();
        assert_eq!(stored, by_leg(vec![real, own]));
    })
    .await;
}

#[tokio::test]
async fn another_trace_under_a_stored_id_is_refused() {
    each_backend(|store| async move {
        let a = tenant(&store, "a").await;
        let call_id = Uuid::new_v4();
        let trace = TraceRow {
            id: format!("{call_id}:1"),
            tenant: a,
            call_id,
            at_ms: 5_000,
            queue_id: 1,
            agent_id: Some(2),
            trace: json!({"offer": 1, "score": 0.25}),
        };
        store
            .insert_traces(std::slice::from_ref(&trace))
            .await
            .unwrap();
        store
            .insert_traces(std::slice::from_ref(&trace))
            .await
            .unwrap();
        let mut other = trace.clone();
        other.at_ms = 90_000;
        other.agent_id = Some(3);
        let r = store.insert_traces(&[other]).await;
        assert!(is_duplicate(r, "trace", std::slice::from_ref(&trace.id)));
        assert_eq!(
            store.traces_for_call(a, call_id).await.unwrap(),
            vec![trace]
        );
    })
    .await;
}

#[tokio::test]
async fn another_attempt_under_a_stored_leg_is_refused_and_its_contact_left_alone() {
    use switchyard_api::store::{AttemptRow, ContactInput};
    each_backend(|store| async move {
        let a = tenant(&store, "a").await;
        let q = store
            .create_queue(a, "q", json!({}), &audit("queue.create", "queue", ""))
            .await
            .unwrap();
        let c = store
            .create_campaign(a, "c", json!({"queue": q.id}), &audit("c", "campaign", ""))
            .await
            .unwrap();
        let input = |n: &str| ContactInput {
            number: n.into(),
            zone: "America/New_York".into(),
            fields: serde_json::Map::new(),
        };
        let batch = store
            .import_contacts(a, c.id, vec![input("+12015550123"), input("+12015550124")])
            .await
            .unwrap();
        let (first, second) = (batch.pending[0].id, batch.pending[1].id);
        let leg = Uuid::new_v4().to_string();
        let attempt = |contact: i64, outcome: &str, status: &str| AttemptRow {
            tenant: a,
            campaign_id: c.id,
            contact_id: contact,
            leg: leg.clone(),
            attempt: 1,
            outcome: outcome.into(),
            call_id: None,
            agent_id: None,
            dialed_at_ms: 1_000,
            answered_at_ms: None,
            ended_at_ms: 2_000,
            contact_status: status.into(),
            contact_next_attempt_at_ms: 900_000,
            contact_attempts: 1,
            machine: false,
        };
        let busy = attempt(first, "busy", "pending");
        store
            .insert_attempts(std::slice::from_ref(&busy))
            .await
            .unwrap();
        // The same attempt again: one row, its contact updated once.
        store
            .insert_attempts(std::slice::from_ref(&busy))
            .await
            .unwrap();
        assert_eq!(store.list_attempts(a, c.id, 0, 10).await.unwrap().len(), 1);
        // Another dial under that leg, for the other contact: refused, nothing touched.
        let r = store
            .insert_attempts(&[attempt(second, "connected", "done")])
            .await;
        assert!(is_duplicate(r, "attempt", std::slice::from_ref(&leg)));
        let page = store.list_attempts(a, c.id, 0, 10).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].1.outcome, "busy");
        let contacts = store.list_contacts(a, c.id, None, 0, 10).await.unwrap();
        let other = contacts.iter().find(|k| k.id == second).unwrap();
        assert_eq!((other.attempts, other.status.as_str()), (0, "pending"));
        assert_eq!(store.ledger_attempts(0).await.unwrap().len(), 1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// SQLite on a file

/// Removes the database and its WAL files when dropped.
struct TempDb(std::path::PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

#[tokio::test]
async fn sqlite_file_survives_reconnect_and_takes_concurrent_writes() {
    let db = TempDb(
        std::env::temp_dir().join(format!("switchyard-store-{}.db", Uuid::new_v4().simple())),
    );
    let url = format!("sqlite://{}?mode=rwc", db.0.display());

    let store = Store::connect(&url).await.expect("open file db");
    store.migrate().await.unwrap();
    let t = tenant(&store, "acme").await;
    let au = audit_as(t, "queue.create", "");
    // Many writers at once: the one writer connection queues them, none sees SQLITE_BUSY.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let au = au.clone();
            tokio::spawn(async move {
                store
                    .create_queue(t, &format!("q{i}"), json!({"n": i}), &au)
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let (_, key) = store
        .create_api_key(Some(t), Role::Admin, None, "k", None, &au)
        .await
        .unwrap();
    store.insert_calls(&[call(t, 1)]).await.unwrap();
    let before = store.list_queues(t).await.unwrap();
    assert_eq!(before.len(), 20);
    if let Pools::Sqlite { reader, writer } = store.pools() {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(reader)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(writer)
            .await
            .unwrap();
        assert_eq!(fk, 1);
    }
    store.close().await;
    assert!(store.list_queues(t).await.is_err(), "closed");

    // Neither file holds the key itself.
    let secret = &key[15..];
    for suffix in ["", "-wal"] {
        let mut path = db.0.clone().into_os_string();
        path.push(suffix);
        if let Ok(bytes) = std::fs::read(&path) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "key in {path:?}"
            );
        }
    }

    let store = Store::connect(&url).await.expect("reopen");
    store.migrate().await.expect("no-op migrate");
    assert_eq!(store.list_queues(t).await.unwrap(), before);
    assert_eq!(
        store.tenant_by_name("acme").await.unwrap().map(|x| x.id),
        Some(t)
    );
    assert!(store.authenticate(&key, now_ms()).await.unwrap().is_some());
    let (calls, _) = store
        .list_calls(
            t,
            &CallFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(store.list_audit(Some(t), 100).await.unwrap().len(), 21);
    store.close().await;
}

#[tokio::test]
async fn absorbing_checkpoints_fills_only_the_passed_intervals_nobody_wrote_and_keeps_one_row() {
    each_backend(|store| async move {
        let t = TenantId(Uuid::new_v4());
        let iv = |start: i64, n: i64| IntervalRow {
            tenant: Some(t),
            scope: IntervalScope::Queue(1),
            start_ms: start,
            end_ms: start + 900_000,
            figures: json!({"offered": n}),
        };
        let checkpoint = |run: &str, start: i64, n: i64| CheckpointRow {
            run_id: run.to_owned(),
            start_ms: start,
            saved_at: now_ms(),
            counters: json!({"n": n}),
        };
        // A run closed 0-15 (its row is whole) and was killed in 15-30, saving twice.
        store.insert_intervals(&[iv(0, 7)]).await.unwrap();
        store
            .save_interval_checkpoint(&checkpoint("a", 900_000, 1))
            .await
            .unwrap();
        store
            .save_interval_checkpoint(&checkpoint("a", 900_000, 2))
            .await
            .unwrap();
        store
            .save_interval_checkpoint(&checkpoint("b", 0, 3))
            .await
            .unwrap();
        let saved = store.interval_checkpoints().await.unwrap();
        assert_eq!(
            saved
                .iter()
                .map(|r| (r.run_id.as_str(), r.counters["n"].as_i64()))
                .collect::<Vec<_>>(),
            [("a", Some(2)), ("b", Some(3))],
            "one row per run, its last save"
        );
        // The next start: both passed; 0-15 has its row already, 15-30 none.
        store
            .absorb_interval_checkpoints(
                &[iv(0, 3), iv(900_000, 2)],
                &checkpoint("c", 1_800_000, 0),
                &["a".to_owned(), "b".to_owned()],
            )
            .await
            .unwrap();
        let rows = store
            .list_intervals(Some(t), IntervalScope::Queue(1), 0, 10_000_000)
            .await
            .unwrap();
        assert_eq!(rows, vec![iv(0, 7), iv(900_000, 2)]);
        let saved = store.interval_checkpoints().await.unwrap();
        assert_eq!(
            saved.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
    })
    .await;
}
