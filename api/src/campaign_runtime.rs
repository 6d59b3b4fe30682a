//! The campaign half of the runtime: loading campaigns into the engine at start, handing it
//! contacts and DNC numbers, writing its campaign records back, and filing its campaign
//! statistics under their tenants in the live feed. Kept apart from `runtime.rs` (which only
//! calls in here) so that the driver's own wiring can change independently.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use serde_json::Value;
use switchyard_engine::dialer::window;
use switchyard_engine::dialer::{
    AttemptOutcome, CampaignControl, CampaignState, CampaignStats, ContactNext, ContactSpec,
    LedgerDay,
};
use switchyard_engine::driver::{DriverError, DriverHandle};
use switchyard_engine::{CampaignId, Command, ContactId, Engine, Input, LiveEvent, Record};
use tracing::{info, warn};
use uuid::Uuid;

use crate::directory::Directory;
use crate::http::LiveMessage;
use crate::spec_campaign::CampaignSpec;
use crate::store::{AttemptRow, ContactRow, DispositionRow, Store, StoreError};

/// Contacts per `AddContacts` command at most.
pub const ENGINE_BATCH: usize = 5_000;
/// Days of attempts the ledger is seeded from (30 rolling days and today).
const LEDGER_DAYS: i64 = 31;

/// Sends a campaign command to the engine.
pub async fn send_campaign(engine: &DriverHandle, cmd: Command) -> Result<(), DriverError> {
    engine.command(cmd).await
}

/// The engine's figures of a campaign it runs; `None` when it is not loaded (the API falls
/// back on the store's counts).
pub fn engine_stats(e: &Engine, c: CampaignId) -> Option<CampaignStats> {
    e.campaign_stats(c)
}

fn spec_of(row: &ContactRow) -> Option<ContactSpec> {
    Some(ContactSpec {
        id: ContactId(u64::try_from(row.id).ok()?),
        number: row.number.clone(),
        zone: row.zone.clone(),
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        not_before_unix_ms: u64::try_from(row.next_attempt_at_ms).unwrap_or(0),
    })
}

/// Hands contacts to the engine in commands of [`ENGINE_BATCH`]. A refusal is logged: the
/// contacts stay pending in the store and are loaded again at the next start.
pub async fn add_contacts(engine: &DriverHandle, campaign: CampaignId, rows: Vec<ContactRow>) {
    let specs: Vec<ContactSpec> = rows.iter().filter_map(spec_of).collect();
    for chunk in specs.chunks(ENGINE_BATCH) {
        let cmd = Command::AddContacts {
            campaign,
            contacts: chunk.to_vec(),
        };
        if let Err(e) = send_campaign(engine, cmd).await {
            warn!(error = %e, %campaign, "the engine did not take new contacts");
            return;
        }
    }
}

fn apply(engine: &mut Engine, now: Instant, cmd: Command, id: i64) {
    if let Err(e) = engine.handle_input(Input::Api(now, cmd)) {
        warn!(error = %e, campaign = id, "the engine refused a stored campaign command");
    }
}

/// Loads every stored campaign into a new engine (before the driver runs): its config, its
/// state, the abandon ledger of the last 31 days, its pending contacts, and the DNC numbers
/// that apply to it. A campaign the engine refuses is logged and skipped, never fatal.
pub async fn load(
    store: &Store,
    engine: &mut Engine,
    now: Instant,
    directory: &Directory,
) -> Result<(), StoreError> {
    let campaigns = store.all_campaigns().await?;
    if campaigns.is_empty() {
        return Ok(());
    }
    let since = crate::store::now_ms() - LEDGER_DAYS * 24 * 3600 * 1000;
    let mut attempts: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
    for a in store.ledger_attempts(since).await? {
        attempts
            .entry(a.campaign_id)
            .or_default()
            .push((a.dialed_at_ms, a.outcome));
    }
    let mut contacts_loaded = 0usize;
    for row in &campaigns {
        let spec: CampaignSpec = match serde_json::from_value(row.config.clone()) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, campaign = row.id, "a stored campaign does not parse; skipped");
                continue;
            }
        };
        let cfg = match spec.to_engine(row.id, &row.name) {
            Ok(c) => c,
            Err(e) => {
                warn!(field = %e.field, message = %e.message, campaign = row.id, "a stored campaign is invalid; skipped");
                continue;
            }
        };
        let c = cfg.id;
        let zone = window::zone(&cfg.ledger_zone);
        directory.set_campaign(c, row.tenant);
        apply(engine, now, Command::UpsertCampaign(Box::new(cfg)), row.id);
        if let (Some(list), Some(tz)) = (attempts.get(&row.id), zone) {
            let days = ledger_days(list, &tz);
            if !days.is_empty() {
                apply(
                    engine,
                    now,
                    Command::SeedLedger { campaign: c, days },
                    row.id,
                );
            }
        }
        let mut after = 0;
        loop {
            let page = store
                .pending_contacts(row.id, after, ENGINE_BATCH as i64)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            contacts_loaded += page.len();
            let contacts: Vec<ContactSpec> = page.iter().filter_map(spec_of).collect();
            apply(
                engine,
                now,
                Command::AddContacts {
                    campaign: c,
                    contacts,
                },
                row.id,
            );
        }
        // The state last: a running campaign starts dialling with its contacts in place.
        let state = CampaignState::from_name(&row.state).unwrap_or_default();
        let controls: &[CampaignControl] = match state {
            CampaignState::Draft => &[],
            CampaignState::Running => &[CampaignControl::Start],
            CampaignState::Paused => &[CampaignControl::Start, CampaignControl::Pause],
            CampaignState::Completed => &[CampaignControl::Stop],
        };
        for control in controls {
            apply(
                engine,
                now,
                Command::ControlCampaign {
                    campaign: c,
                    control: *control,
                },
                row.id,
            );
        }
    }
    // DNC: a campaign's own numbers to it, the tenant's to each of the tenant's campaigns.
    let mut after = 0;
    loop {
        let page = store.all_dnc(after, ENGINE_BATCH as i64).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let mut per: BTreeMap<CampaignId, Vec<String>> = BTreeMap::new();
        for d in page {
            let targets = match d.campaign_id.and_then(|c| u32::try_from(c).ok()) {
                Some(c) => vec![CampaignId(c)],
                None => directory.tenant_campaigns(d.tenant),
            };
            for c in targets {
                per.entry(c).or_default().push(d.number.clone());
            }
        }
        for (campaign, numbers) in per {
            apply(
                engine,
                now,
                Command::BlockNumbers { campaign, numbers },
                i64::from(campaign.0),
            );
        }
    }
    info!(
        campaigns = campaigns.len(),
        contacts = contacts_loaded,
        "campaigns loaded from the store"
    );
    Ok(())
}

/// Abandoned vs answered-by-a-person per ledger day (days since 1970 in the ledger zone).
fn ledger_days(attempts: &[(i64, String)], tz: &jiff::tz::TimeZone) -> Vec<LedgerDay> {
    let mut days: BTreeMap<i32, LedgerDay> = BTreeMap::new();
    for (at, outcome) in attempts {
        let human = matches!(outcome.as_str(), "connected" | "abandoned" | "hung-up");
        if !human {
            continue;
        }
        let day = window::day_number(tz, u64::try_from(*at).unwrap_or(0));
        let d = days.entry(day).or_insert(LedgerDay {
            day,
            humans: 0,
            abandoned: 0,
        });
        d.humans += 1;
        if outcome == "abandoned" {
            d.abandoned += 1;
        }
    }
    days.into_values().collect()
}

fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The campaign records of one batch of the store sink, written together.
#[derive(Debug, Default)]
pub struct CampaignRecords {
    attempts: Vec<AttemptRow>,
    dispositions: Vec<DispositionRow>,
    states: Vec<(i64, &'static str)>,
    /// Records of campaigns with no tenant (removed meanwhile).
    pub unfiled: u64,
}

impl CampaignRecords {
    /// Takes a campaign record; gives back any other kind.
    pub fn take(&mut self, r: Record, dir: &Directory) -> Option<Record> {
        match r {
            Record::Attempt(a) => {
                let Some(tenant) = dir.campaign_tenant(a.campaign) else {
                    self.unfiled += 1;
                    return None;
                };
                let (status, next_at) = match a.next {
                    ContactNext::Retry { at_unix_ms } => ("pending", ms(at_unix_ms)),
                    ContactNext::Done => ("done", 0),
                };
                self.attempts.push(AttemptRow {
                    tenant,
                    campaign_id: i64::from(a.campaign.0),
                    contact_id: ms(a.contact.0),
                    leg: Uuid::from_u128(a.leg.0).hyphenated().to_string(),
                    attempt: i32::try_from(a.attempt).unwrap_or(i32::MAX),
                    outcome: name_of(&a.outcome),
                    call_id: a.call.map(|c| i64::from(c.0)),
                    agent_id: a.agent.map(|g| i64::from(g.0)),
                    dialed_at_ms: ms(a.dialed_unix_ms),
                    answered_at_ms: a.answered_unix_ms.map(ms),
                    ended_at_ms: ms(a.ended_unix_ms),
                    contact_status: status.to_owned(),
                    contact_next_attempt_at_ms: next_at,
                    contact_attempts: i32::try_from(match a.outcome {
                        AttemptOutcome::Cancelled => a.attempt.saturating_sub(1),
                        _ => a.attempt,
                    })
                    .unwrap_or(i32::MAX),
                });
                None
            }
            Record::AttemptStarted(a) => {
                let Some(tenant) = dir.campaign_tenant(a.campaign) else {
                    self.unfiled += 1;
                    return None;
                };
                // The contact counts the dial from now and is not loaded as pending again
                // while the dial is open (see `Store::pending_contacts`).
                self.attempts.push(AttemptRow {
                    tenant,
                    campaign_id: i64::from(a.campaign.0),
                    contact_id: ms(a.contact.0),
                    leg: Uuid::from_u128(a.leg.0).hyphenated().to_string(),
                    attempt: i32::try_from(a.attempt).unwrap_or(i32::MAX),
                    outcome: crate::store::OPEN_ATTEMPT.to_owned(),
                    call_id: None,
                    agent_id: None,
                    dialed_at_ms: ms(a.dialed_unix_ms),
                    answered_at_ms: None,
                    ended_at_ms: ms(a.dialed_unix_ms),
                    contact_status: "pending".to_owned(),
                    contact_next_attempt_at_ms: ms(a.dialed_unix_ms),
                    contact_attempts: i32::try_from(a.attempt).unwrap_or(i32::MAX),
                });
                None
            }
            Record::Disposition(d) => {
                let Some(tenant) = dir.campaign_tenant(d.campaign) else {
                    self.unfiled += 1;
                    return None;
                };
                self.dispositions.push(DispositionRow {
                    tenant,
                    campaign_id: i64::from(d.campaign.0),
                    contact_id: ms(d.contact.0),
                    call_id: i64::from(d.call.0),
                    agent_id: d.agent.map(|g| i64::from(g.0)),
                    code: d.code,
                    at_ms: ms(d.at_unix_ms),
                    retry_at_ms: d.retry_at_unix_ms.map(ms),
                });
                None
            }
            Record::CampaignState { campaign, state } => {
                self.states.push((i64::from(campaign.0), state.name()));
                None
            }
            other => Some(other),
        }
    }

    /// Writes them (retried like the other history); returns the rows given up on.
    pub async fn write(self, store: &Store, duplicates: &AtomicU64) -> u64 {
        let mut lost = self.unfiled;
        lost += crate::runtime::write_records(
            "attempts",
            self.attempts,
            |a| a.leg.clone(),
            duplicates,
            |rows| {
                let store = store.clone();
                Box::pin(async move { store.insert_attempts(rows).await })
            },
        )
        .await;
        lost += crate::runtime::retry("dispositions", self.dispositions.len(), || {
            store.insert_dispositions(&self.dispositions)
        })
        .await;
        for (id, state) in self.states {
            if let Err(e) = store.record_campaign_state(id, state).await {
                warn!(error = %e, campaign = id, "could not save a campaign's state");
            }
        }
        lost
    }
}

/// A campaign's statistics as a live-feed delta of its tenant (`campaign.stats`).
pub fn live_message(ev: &LiveEvent, dir: &Directory) -> Option<LiveMessage> {
    let LiveEvent::Campaign(s) = ev else {
        return None;
    };
    let tenant = dir.campaign_tenant(s.campaign)?;
    let mut data = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut data {
        m.insert("id".into(), Value::from(s.campaign.0));
    }
    Some(LiveMessage {
        tenant,
        kind: "campaign.stats",
        data,
    })
}

/// Outcomes that count as answered by a person in the ledger (for tests and docs).
pub fn is_human(outcome: AttemptOutcome) -> bool {
    matches!(
        outcome,
        AttemptOutcome::Connected | AttemptOutcome::Abandoned | AttemptOutcome::HungUp
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_days_count_people_and_abandons_per_local_day() {
        let tz = window::zone("America/New_York").unwrap();
        // 2026-01-02 03:00Z is still Jan 1 in New York; 15:00Z is Jan 2.
        let jan2_03z = 1_767_322_800_000i64;
        let jan2_15z = jan2_03z + 12 * 3600 * 1000;
        let list = vec![
            (jan2_03z, "abandoned".to_owned()),
            (jan2_03z, "no-answer".to_owned()),
            (jan2_15z, "connected".to_owned()),
            (jan2_15z, "hung-up".to_owned()),
            (jan2_15z, "machine".to_owned()),
        ];
        let days = ledger_days(&list, &tz);
        assert_eq!(days.len(), 2);
        assert_eq!((days[0].humans, days[0].abandoned), (1, 1));
        assert_eq!((days[1].humans, days[1].abandoned), (2, 0));
        assert_eq!(days[1].day, days[0].day + 1);
        assert!(is_human(AttemptOutcome::HungUp));
        assert!(!is_human(AttemptOutcome::Machine));
    }
}
