//! `switchyard serve` stopped mid-traffic (kill -9, or SIGINT) and started again on the same
//! database, against a fake switch that lives on: inbound callers talking to agents and a
//! predictive campaign dialling at full rate. Afterwards nothing is lost: the campaign dials
//! again within seconds, every call that existed has exactly one final record, no contact is
//! dialled twice for one attempt, agents whose calls were still up are on those calls, and the
//! campaign's abandon rate is what its stored attempts say.

mod process_common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use process_common::{Api, free_port, serve_ready, tenant_with_admin_key};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_esl::sim::{Dist, InboundCall, Scenario, SimConfig, SimHandle};

/// Inbound agents (extensions 1000..) and campaign agents (1010..).
const INBOUND_AGENTS: u32 = 6;
const CAMPAIGN_AGENTS: u32 = 4;
const CONTACTS: u32 = 400;

/// A database for one run: a SQLite file, or a PostgreSQL database of its own (dropped after).
struct Db {
    url: String,
    dir: std::path::PathBuf,
    pg: Option<(String, String)>,
}

impl Db {
    fn sqlite(tag: &str) -> Db {
        let dir = std::env::temp_dir().join(format!(
            "switchyard-{tag}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Db {
            url: format!("sqlite://{}?mode=rwc", dir.join("s.db").display()),
            dir,
            pg: None,
        }
    }

    async fn postgres(tag: &str) -> Option<Db> {
        let admin_url = std::env::var("DATABASE_URL").ok()?;
        let name = format!("sy_{tag}_{}", uuid::Uuid::new_v4().simple());
        let pool = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("DATABASE_URL");
        // Hex digits and underscores only: safe to splice into DDL.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .expect("create a database");
        pool.close().await;
        let (head, _) = admin_url.rsplit_once('/').expect("a database in the URL");
        let dir = std::env::temp_dir().join(format!("switchyard-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        Some(Db {
            url: format!("{head}/{name}"),
            dir,
            pg: Some((admin_url, name)),
        })
    }

    async fn drop_it(self) {
        if let Some((admin_url, name)) = self.pg {
            let pool = sqlx::PgPool::connect(&admin_url)
                .await
                .expect("DATABASE_URL");
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&pool)
            .await;
            pool.close().await;
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// A fake switch on a free loopback port following `scenario`, sending its callers to a free
/// port for `serve`'s outbound listener: the switch, its Event Socket address and that port.
async fn fake_switch(scenario: Scenario, seed: u64) -> (SimHandle, String, String) {
    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let esl_addr = esl.local_addr().unwrap().to_string();
    let outbound = format!("127.0.0.1:{}", free_port());
    let switch = switchyard_esl::sim::spawn(
        esl,
        SimConfig {
            inbound_target: Some(outbound.clone()),
            scenario,
            ..SimConfig::default()
        }
        .for_this_run(),
        seed,
    );
    (switch, esl_addr, outbound)
}

fn scenario() -> Scenario {
    let mut s = Scenario::default();
    s.agents.behaviour.answer_delay = Dist::Fixed(1.0);
    // Agents stay until the far end hangs up.
    s.agents.behaviour.talk_time = None;
    s.customers.human = 0.7;
    s.customers.no_answer = 0.3;
    s.customers.answer_delay = Dist::Uniform([1.0, 3.0]);
    s.customers.no_answer_after = Dist::Fixed(6.0);
    // Campaign conversations are short (agents free up soon after the restart); inbound
    // callers talk 12 s (their agents are still on them after it).
    s.customers.talk_time = Some(Dist::Uniform([3.0, 6.0]));
    s
}

/// Queues, agents (available), and a running predictive campaign with its contacts; returns
/// the campaign's id and the inbound agents'.
async fn configure(api: &Api) -> (i64, Vec<i64>) {
    let mut ids = Vec::new();
    let sales = api
        .ok(
            Method::POST,
            "/v1/queues",
            Some(json!({"name": "sales", "config": {"numbers": ["5000"]}})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let outbound = api
        .ok(
            Method::POST,
            "/v1/queues",
            Some(json!({"name": "outbound", "config": {"numbers": []}})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let agents = (0..INBOUND_AGENTS)
        .map(|i| (1000 + i, sales))
        .chain((0..CAMPAIGN_AGENTS).map(|i| (1010 + i, outbound)));
    for (ext, queue) in agents {
        let a = api
            .ok(
                Method::POST,
                "/v1/agents",
                Some(json!({"name": format!("a{ext}"), "config": {"contact": format!("user/{ext}")}})),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        if queue == sales {
            ids.push(a);
        }
        api.ok(
            Method::POST,
            &format!("/v1/queues/{queue}/members"),
            Some(json!({"agent_id": a})),
        )
        .await;
        api.ok(
            Method::PUT,
            &format!("/v1/agents/{a}/state"),
            Some(json!({"state": "available"})),
        )
        .await;
    }
    let campaign = api
        .ok(
            Method::POST,
            "/v1/campaigns",
            Some(json!({"name": "renewals", "config": {
                "mode": "predictive",
                "queue": outbound,
                "caller_id": "+15550100",
                "dial": "sofia/gateway/demo/{number}",
                "max_lines": 8,
                "window": {"start": "00:00", "end": "24:00"},
                "ledger_zone": "UTC",
            }})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let mut csv = String::from("phone,timezone\n");
    for i in 0..CONTACTS {
        csv.push_str(&format!("+1202555{i:04},UTC\n"));
    }
    let resp = api
        .http
        .post(format!("{}/v1/campaigns/{campaign}/contacts", api.base))
        .bearer_auth(&api.key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    api.ok(
        Method::POST,
        &format!("/v1/campaigns/{campaign}/start"),
        None,
    )
    .await;
    (campaign, ids)
}

/// Places a caller every `every` until `stop` is set; the legs placed.
fn callers(
    switch: std::sync::Arc<SimHandle>,
    every: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut legs = Vec::new();
        let mut n = 0u32;
        while !*stop.borrow() {
            n += 1;
            let leg = switch
                .place_inbound_call(InboundCall {
                    caller_number: format!("555{n:04}"),
                    caller_name: "Caller".into(),
                    destination: "5000".into(),
                    patience: None,
                    talk_time: Some(Duration::from_secs(12)),
                    dtmf: None,
                })
                .await;
            legs.extend(leg);
            tokio::time::sleep(every).await;
        }
        legs
    })
}

async fn agent_states(api: &Api, agents: &[i64]) -> HashMap<i64, String> {
    let mut out = HashMap::new();
    for a in agents {
        let v = api
            .ok(Method::GET, &format!("/v1/agents/{a}/state"), None)
            .await;
        out.insert(*a, v["state"].as_str().unwrap_or_default().to_owned());
    }
    out
}

async fn all_attempts(api: &Api, campaign: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&cursor={c}"));
        let v = api
            .ok(
                Method::GET,
                &format!("/v1/campaigns/{campaign}/attempts?limit=1000{q}"),
                None,
            )
            .await;
        out.extend(v["attempts"].as_array().cloned().unwrap_or_default());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

async fn restart_loses_nothing(db: Db, signal: &str) {
    let key = tenant_with_admin_key(&db.url);
    let (switch, esl_addr, outbound) = fake_switch(scenario(), 11).await;
    let switch = std::sync::Arc::new(switch);
    let (first, api) = serve_ready(&db.url, &esl_addr, &outbound, &key).await;
    let (campaign, agents) = configure(&api).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let placing = callers(switch.clone(), Duration::from_millis(1200), stop_rx);

    // Mid-traffic: agents talking, campaign lines ringing and talking.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let before = agent_states(&api, &agents).await;
    let on_call_before: BTreeSet<i64> = before
        .iter()
        .filter(|(_, s)| s.as_str() == "on-call")
        .map(|(a, _)| *a)
        .collect();
    assert!(
        !on_call_before.is_empty(),
        "some agents talk at the stop: {before:?}"
    );
    first.signal(signal);
    let stopped_at = Instant::now();

    tokio::time::sleep(Duration::from_millis(800)).await;
    let (second, api) = serve_ready(&db.url, &esl_addr, &outbound, &key).await;
    let ready_at = Instant::now();

    // Agents whose calls are still up are on them (inbound calls last 12 s).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let after = agent_states(&api, &agents).await;
        let still: Vec<(i64, String)> = on_call_before
            .iter()
            .map(|a| (*a, after.get(a).cloned().unwrap_or_default()))
            .filter(|(_, s)| s != "on-call")
            .collect();
        if still.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "agents talking at the stop are not on their calls after it: {still:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The campaign dials again within 5 s of the restart.
    let deadline = ready_at + Duration::from_secs(5);
    let restarted_ms =
        switchyard_api::store::now_ms() - i64::try_from(stopped_at.elapsed().as_millis()).unwrap();
    loop {
        let attempts = all_attempts(&api, campaign).await;
        if attempts
            .iter()
            .any(|a| a["dialed_at_ms"].as_i64().unwrap_or(0) > restarted_ms)
        {
            break;
        }
        if Instant::now() >= deadline {
            let stats = api
                .ok(
                    Method::GET,
                    &format!("/v1/campaigns/{campaign}/stats"),
                    None,
                )
                .await;
            panic!("the campaign did not dial within 5 s of the restart: {stats}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Traffic goes on a while, then stops; everything drains.
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop_tx.send(true).unwrap();
    let legs = placing.await.unwrap();
    api.ok(
        Method::POST,
        &format!("/v1/campaigns/{campaign}/pause"),
        None,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while switch.channel_count().await > 0 {
        if Instant::now() >= deadline {
            let waiting = api.ok(Method::GET, "/v1/queues/1/calls", None).await;
            let stats = api
                .ok(
                    Method::GET,
                    &format!("/v1/campaigns/{campaign}/stats"),
                    None,
                )
                .await;
            panic!(
                "the switch never emptied: {} channels; waiting {waiting}; campaign {stats}",
                switch.channel_count().await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The last records reach the store.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Every call that existed has one final record.
    let mut missing = Vec::new();
    for leg in &legs {
        let (st, call) = api
            .call(Method::GET, &format!("/v1/calls/{leg}"), None)
            .await;
        if st != 200 || call["outcome"] == "in-progress" {
            missing.push((leg.clone(), st, call["outcome"].clone()));
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} calls without a final record: {missing:?}",
        missing.len(),
        legs.len()
    );

    // Every dial has one final attempt; no contact was dialled twice for one attempt.
    let attempts = all_attempts(&api, campaign).await;
    assert!(!attempts.is_empty());
    let open: Vec<&Value> = attempts
        .iter()
        .filter(|a| a["outcome"] == "dialing")
        .collect();
    assert!(open.is_empty(), "dials left open: {open:?}");
    let mut seen = HashSet::new();
    for a in &attempts {
        let k = (a["contact_id"].as_i64(), a["attempt"].as_i64());
        assert!(seen.insert(k), "contact dialled twice for one attempt: {a}");
    }
    let legs_seen: HashSet<&str> = attempts.iter().filter_map(|a| a["leg"].as_str()).collect();
    assert_eq!(legs_seen.len(), attempts.len(), "one attempt per leg");

    // The campaign's abandon rate is what its stored attempts say.
    let humans = attempts
        .iter()
        .filter(|a| {
            matches!(
                a["outcome"].as_str(),
                Some("connected" | "abandoned" | "hung-up")
            )
        })
        .count();
    let abandoned = attempts
        .iter()
        .filter(|a| a["outcome"] == "abandoned")
        .count();
    let stats = api
        .ok(
            Method::GET,
            &format!("/v1/campaigns/{campaign}/stats"),
            None,
        )
        .await;
    let rate = stats["abandon_rate_day"].as_f64().expect("a rate");
    let expected = if humans == 0 {
        0.0
    } else {
        abandoned as f64 / humans as f64
    };
    assert!(
        (rate - expected).abs() < 1e-9,
        "stats say {rate}, the attempts {abandoned}/{humans}: {stats}"
    );

    drop(second);
    if let Ok(switch) = std::sync::Arc::try_unwrap(switch) {
        switch.shutdown().await;
    }
    db.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_traffic_loses_nothing_on_sqlite() {
    restart_loses_nothing(Db::sqlite("kill9"), "KILL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_traffic_loses_nothing_on_sqlite() {
    restart_loses_nothing(Db::sqlite("sigint"), "INT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_traffic_loses_nothing_on_postgres() {
    let Some(db) = Db::postgres("kill9").await else {
        return;
    };
    restart_loses_nothing(db, "KILL").await;
}

/// Waits until queue `q` has `n` callers in line.
async fn wait_in_line(api: &Api, q: i64, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let v = api
            .ok(Method::GET, &format!("/v1/queues/{q}/calls"), None)
            .await;
        let waiting = v["calls"].as_array().map_or(0, Vec::len);
        if waiting == n {
            return;
        }
        assert!(Instant::now() < deadline, "{waiting} of {n} in line");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// 200 callers wait (every fifth made VIP through the API), switchyard is killed and comes
/// back 5 s later: the callers held in the dialplan's loop return, and once agents are
/// available they are answered by priority, then in the order they first arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_waiting_through_a_kill_9_are_answered_by_priority_then_first_arrival() {
    const CALLERS: u32 = 200;
    const AGENTS: u32 = 10;
    let db = Db::sqlite("survive");
    let key = tenant_with_admin_key(&db.url);
    let mut sc = Scenario::default();
    // Every agent takes the same time to answer: the order of answers is the order of offers.
    sc.agents.behaviour.answer_delay = Dist::Fixed(0.5);
    let (switch, esl_addr, outbound) = fake_switch(sc, 12).await;
    let (first, api) = serve_ready(&db.url, &esl_addr, &outbound, &key).await;
    let q = api
        .ok(
            Method::POST,
            "/v1/queues",
            Some(json!({"name": "sales", "config": {"numbers": ["5000"]}})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let mut agents = Vec::new();
    for i in 0..AGENTS {
        let a = api
            .ok(
                Method::POST,
                "/v1/agents",
                Some(json!({"name": format!("a{i}"), "config": {"contact": format!("user/{}", 1000 + i)}})),
            )
            .await["id"]
            .as_i64()
            .unwrap();
        api.ok(
            Method::POST,
            &format!("/v1/queues/{q}/members"),
            Some(json!({"agent_id": a})),
        )
        .await;
        agents.push(a);
    }
    // Nobody is available: every caller waits.
    let mut callers = Vec::new();
    for n in 0..CALLERS {
        let leg = switch
            .place_inbound_call(InboundCall {
                caller_number: format!("777{n:04}"),
                caller_name: "Caller".into(),
                destination: "5000".into(),
                patience: None,
                talk_time: Some(Duration::from_millis(300)),
                dtmf: None,
            })
            .await
            .expect("a caller");
        callers.push(leg);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Every caller in line, then every fifth made a VIP.
    wait_in_line(&api, q, CALLERS as usize, Duration::from_secs(30)).await;
    let vip: HashSet<&String> = callers.iter().step_by(5).collect();
    for leg in &vip {
        api.ok(
            Method::PUT,
            &format!("/v1/calls/{leg}/priority"),
            Some(json!({"priority": 5})),
        )
        .await;
    }

    first.signal("KILL");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        switch.channel_count().await,
        CALLERS as usize,
        "every caller held on while switchyard was down"
    );
    let (second, api) = serve_ready(&db.url, &esl_addr, &outbound, &key).await;
    // Every caller is back in line (the hold loop sends them into the socket again).
    wait_in_line(&api, q, CALLERS as usize, Duration::from_secs(20)).await;
    // The queue is paused while the agents log in one request at a time, so that all ten take
    // their first calls together: otherwise on a loaded machine the first agent may finish a
    // call before the tenth is available and answer the eleventh caller before the tenth.
    api.ok(Method::POST, &format!("/v1/queues/{q}/pause"), None)
        .await;
    for a in &agents {
        api.ok(
            Method::PUT,
            &format!("/v1/agents/{a}/state"),
            Some(json!({"state": "available"})),
        )
        .await;
    }
    api.ok(Method::POST, &format!("/v1/queues/{q}/resume"), None)
        .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while switch.channel_count().await > 0 {
        assert!(Instant::now() < deadline, "not every caller was answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Answered (arrival + wait) in the order of the line: VIPs first, each group in order
    // of first arrival.
    let listed = api.ok(Method::GET, "/v1/calls?limit=500", None).await;
    let by_id: HashMap<&str, &Value> = listed["calls"]
        .as_array()
        .expect("a page of calls")
        .iter()
        .filter_map(|c| Some((c["id"].as_str()?, c)))
        .collect();
    let mut answered = Vec::new();
    for leg in &callers {
        let c = by_id
            .get(leg.as_str())
            .unwrap_or_else(|| panic!("no record of {leg}"));
        assert_eq!(c["outcome"], "answered", "{leg}: {c}");
        let at = c["arrived_at_ms"].as_i64().unwrap() + c["wait_ms"].as_i64().unwrap();
        answered.push((leg.clone(), at));
    }
    let expected: Vec<&(String, i64)> = answered
        .iter()
        .filter(|(l, _)| vip.contains(l))
        .chain(answered.iter().filter(|(l, _)| !vip.contains(l)))
        .collect();
    // Ten offers go out together and their bridges take 40-60 ms each: within a batch the
    // answers may differ by that much; batches are a second apart.
    for w in expected.windows(2) {
        assert!(
            w[0].1 <= w[1].1 + 200,
            "{} answered at {} after {} at {}",
            w[0].0,
            w[0].1,
            w[1].0,
            w[1].1
        );
    }
    drop(second);
    switch.shutdown().await;
    db.drop_it().await;
}
