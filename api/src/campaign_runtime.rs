//! The campaign half of the runtime: loading campaigns into the engine at start, handing it
//! contacts and DNC numbers, writing its campaign records back, and filing its campaign
//! statistics under their tenants in the live feed. Kept apart from `runtime.rs` (which only
//! calls in here) so that the driver's own wiring can change independently.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;

use serde_json::Value;
use switchyard_engine::dialer::ledger::{self, LedgerEntry};
use switchyard_engine::dialer::pacing::PacerSnapshot;
use switchyard_engine::dialer::window;
use switchyard_engine::dialer::{
    AttemptOutcome, CampaignControl, CampaignState, CampaignStats, ContactNext, ContactSpec,
    LedgerDay,
};
use switchyard_engine::driver::{DriverError, DriverHandle};
use switchyard_engine::{CampaignId, Command, ContactId, Engine, LiveEvent, Record};
use tracing::warn;
use uuid::Uuid;

use crate::boot::{BootReport, feed};
use crate::directory::Directory;
use crate::http::LiveMessage;
use crate::runtime::RuntimeError;
use crate::spec_campaign::CampaignSpec;
use crate::store::{AttemptRow, ContactRow, DispositionRow, LedgerAttempt, Store};

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

/// Feeds every stored campaign to the running engine at boot (see `boot`): its config, the
/// abandon ledger of the last 31 days, its pending contacts, then the DNC numbers of every
/// campaign, then each campaign's state (a running campaign dials half a second after its
/// start: its contacts and DNC numbers are in by then). A campaign that does not parse, fails
/// validation or that the engine refuses is logged and skipped, never fatal.
pub(crate) async fn load(
    store: &Store,
    engine: &DriverHandle,
    directory: &Directory,
    report: &mut BootReport,
) -> Result<(), RuntimeError> {
    let campaigns = store.all_campaigns().await?;
    if campaigns.is_empty() {
        return Ok(());
    }
    // A campaign outside its tenant's grants is not loaded (reported as skipped).
    let grants: HashMap<crate::model::TenantId, crate::grants::DialGrants> = store
        .list_tenants()
        .await?
        .into_iter()
        .map(|t| (t.id, t.grants))
        .collect();
    let none = crate::grants::DialGrants::default();
    let since = crate::store::now_ms() - LEDGER_DAYS * 24 * 3600 * 1000;
    let mut attempts: HashMap<i64, Vec<LedgerAttempt>> = HashMap::new();
    for a in store.ledger_attempts(since).await? {
        attempts.entry(a.campaign_id).or_default().push(a);
    }
    let pacers: HashMap<i64, String> = store.campaign_pacers().await?.into_iter().collect();
    let mut states = Vec::new();
    for row in &campaigns {
        let spec: CampaignSpec = match serde_json::from_value(row.config.clone()) {
            Ok(s) => s,
            Err(e) => {
                report.skip("campaign", row.id, &format!("config does not parse: {e}"));
                continue;
            }
        };
        let cfg = match spec.to_engine(row.id, &row.name, grants.get(&row.tenant).unwrap_or(&none))
        {
            Ok(c) => c,
            Err(e) => {
                report.skip(
                    "campaign",
                    row.id,
                    &format!("config.{}: {}", e.field, e.message),
                );
                continue;
            }
        };
        let c = cfg.id;
        let zone = window::zone(&cfg.ledger_zone);
        directory.set_campaign(c, row.tenant);
        if !feed(
            engine,
            Command::UpsertCampaign(Box::new(cfg)),
            report,
            "campaign",
            row.id,
        )
        .await?
        {
            directory.remove_campaign(c);
            continue;
        }
        report.campaigns += 1;
        if let Some(json) = pacers.get(&row.id) {
            match serde_json::from_str::<PacerSnapshot>(json) {
                Ok(snapshot) => {
                    feed(
                        engine,
                        Command::SeedPacer {
                            campaign: c,
                            pacer: Box::new(snapshot),
                        },
                        report,
                        "campaign pacer",
                        row.id,
                    )
                    .await?;
                }
                Err(e) => {
                    warn!(error = %e, campaign = row.id, "a stored pacer snapshot does not parse; the pacer starts from its prior");
                }
            }
        }
        if let (Some(list), Some(tz)) = (attempts.get(&row.id), zone) {
            let days = ledger_days(list, &tz);
            if !days.is_empty() {
                feed(
                    engine,
                    Command::SeedLedger { campaign: c, days },
                    report,
                    "campaign ledger",
                    row.id,
                )
                .await?;
            }
        }
        let mut after = 0;
        loop {
            let page = store
                .pending_contacts(row.id, after, ENGINE_BATCH as i64)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            report.contacts += page.len();
            let contacts: Vec<ContactSpec> = page.iter().filter_map(spec_of).collect();
            // A refusal names the first bad contact; the others of the batch were added.
            feed(
                engine,
                Command::AddContacts {
                    campaign: c,
                    contacts,
                },
                report,
                "campaign contacts",
                row.id,
            )
            .await?;
        }
        states.push((
            c,
            row.id,
            CampaignState::from_name(&row.state).unwrap_or_default(),
        ));
    }
    // DNC: a campaign's own numbers to it, the tenant's to each of the tenant's campaigns.
    let loaded: Vec<CampaignId> = states.iter().map(|(c, _, _)| *c).collect();
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
            for c in targets.into_iter().filter(|c| loaded.contains(c)) {
                per.entry(c).or_default().push(d.number.clone());
            }
        }
        for (campaign, numbers) in per {
            feed(
                engine,
                Command::BlockNumbers { campaign, numbers },
                report,
                "campaign DNC",
                i64::from(campaign.0),
            )
            .await?;
        }
    }
    // The states last: a running campaign starts dialling with its contacts and DNC in place.
    for (c, id, state) in states {
        let controls: &[CampaignControl] = match state {
            CampaignState::Draft => &[],
            CampaignState::Running => &[CampaignControl::Start],
            CampaignState::Paused => &[CampaignControl::Start, CampaignControl::Pause],
            CampaignState::Completed => &[CampaignControl::Stop],
        };
        for control in controls {
            feed(
                engine,
                Command::ControlCampaign {
                    campaign: c,
                    control: *control,
                },
                report,
                "campaign state",
                id,
            )
            .await?;
        }
    }
    Ok(())
}

/// The ledger days of stored attempts: each counted by the engine's own rule
/// ([`LedgerEntry::of`]), on the day of its answer in the ledger zone, so the reloaded ledger
/// counts what the live one counted. An outcome this build does not know counts nothing.
fn ledger_days(attempts: &[LedgerAttempt], tz: &jiff::tz::TimeZone) -> Vec<LedgerDay> {
    let entries = attempts.iter().filter_map(|a| {
        let outcome: AttemptOutcome =
            serde_json::from_value(Value::String(a.outcome.clone())).ok()?;
        LedgerEntry::of(
            outcome,
            a.machine,
            a.call_id.is_some(),
            a.answered_at_ms.and_then(|t| u64::try_from(t).ok()),
        )
    });
    ledger::days_from(tz, entries)
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
    /// Engine-made state changes, with when the sink took them (unix ms).
    states: Vec<(i64, &'static str, i64)>,
    /// The newest pacer snapshot of each campaign in the batch.
    pacers: BTreeMap<i64, String>,
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
                    machine: a.machine,
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
                    machine: false,
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
            Record::PacerState { campaign, pacer } => {
                match serde_json::to_string(&*pacer) {
                    Ok(json) => {
                        self.pacers.insert(i64::from(campaign.0), json);
                    }
                    Err(e) => warn!(error = %e, %campaign, "a pacer snapshot did not serialize"),
                }
                None
            }
            Record::CampaignState { campaign, state } => {
                let at = crate::store::outbox::wall_ms();
                self.states.push((i64::from(campaign.0), state.name(), at));
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
        // One try: a snapshot a failed write loses is replaced by the next one, and waiting
        // here would hold the records (and the originates gated on them) behind it.
        if !self.pacers.is_empty() {
            let rows: Vec<(i64, String)> = self.pacers.into_iter().collect();
            if let Err(e) = store.save_pacers(&rows).await {
                warn!(error = %e, campaigns = rows.len(), "could not keep the pacers' snapshots");
            }
        }
        for (id, state, at) in self.states {
            if let Err(e) = store.record_campaign_state(id, state, at).await {
                warn!(error = %e, campaign = id, "could not save a campaign's state");
            }
        }
        lost
    }
}

/// A contact's details are looked up for at most this long: the forwarder waits behind a
/// preview's, and a campaign person's lookups in flight are this many seconds' worth of
/// dials at most.
const CONTACT_LOOKUP: std::time::Duration = std::time::Duration::from_millis(500);

/// What an agent's screen shows of a campaign call (a preview or a person) beyond the
/// engine's facts: the campaign's name and disposition codes, the contact's fields (`{}` for
/// what the store could not say in time: the screen still has the number).
pub async fn contact_details(
    store: &Store,
    tenant: crate::model::TenantId,
    campaign: CampaignId,
    contact: ContactId,
) -> Value {
    let lookup = async {
        let c = store.get_campaign(tenant, i64::from(campaign.0)).await;
        let id = i64::try_from(contact.0).unwrap_or(i64::MAX);
        let rows = store
            .list_contacts(tenant, i64::from(campaign.0), None, id.saturating_sub(1), 1)
            .await;
        (c, rows)
    };
    let Ok((c, rows)) = tokio::time::timeout(CONTACT_LOOKUP, lookup).await else {
        warn!(
            campaign = campaign.0,
            "a preview's details took too long; shown without them"
        );
        return serde_json::json!({});
    };
    let mut out = serde_json::Map::new();
    if let Ok(Some(c)) = c {
        out.insert("campaign_name".into(), Value::from(c.name));
        let codes = c
            .config
            .get("dispositions")
            .cloned()
            .unwrap_or_else(|| Value::Array(Vec::new()));
        out.insert("dispositions".into(), codes);
    }
    if let Ok(rows) = rows
        && let Some(row) = rows
            .into_iter()
            .find(|r| r.id == i64::try_from(contact.0).unwrap_or(-1))
    {
        out.insert("contact_fields".into(), row.fields);
    }
    Value::Object(out)
}

/// A campaign's statistics as a live-feed delta of its tenant (`campaign.stats`).
pub fn live_message(
    ev: &LiveEvent,
    dir: &Directory,
    ids: &crate::ids::IdCodec,
) -> Option<LiveMessage> {
    let LiveEvent::Campaign(s) = ev else {
        return None;
    };
    let tenant = dir.campaign_tenant(s.campaign)?;
    let mut data = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut data {
        // The engine's own number is never shown (`crate::ids`).
        let shown = Value::from(ids.campaign(i64::from(s.campaign.0)));
        m.insert("id".into(), shown.clone());
        m.insert("campaign".into(), shown);
    }
    Some(LiveMessage {
        tenant,
        kind: "campaign.stats",
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at: i64, outcome: &str, machine: bool, call: bool) -> LedgerAttempt {
        LedgerAttempt {
            campaign_id: 1,
            outcome: outcome.to_owned(),
            machine,
            call_id: call.then_some(1),
            answered_at_ms: Some(at),
        }
    }

    #[test]
    fn stored_attempts_count_by_the_engine_rule_on_the_day_of_the_answer() {
        let tz = window::zone("America/New_York").unwrap();
        // 2026-01-02 03:00Z is still Jan 1 in New York; 15:00Z is Jan 2.
        let jan2_03z = 1_767_322_800_000i64;
        let jan2_15z = jan2_03z + 12 * 3600 * 1000;
        let list = vec![
            row(jan2_03z, "abandoned", false, true),
            row(jan2_03z, "no-answer", false, false),
            row(jan2_15z, "connected", false, true),
            row(jan2_15z, "hung-up", false, true),
            row(jan2_15z, "machine", true, false),
            // A machine sent to an agent, and a hang-up during detection: no persons.
            row(jan2_15z, "connected", true, true),
            row(jan2_15z, "hung-up", false, false),
            row(jan2_15z, "from-a-later-build", false, true),
        ];
        let days = ledger_days(&list, &tz);
        assert_eq!(days.len(), 2);
        assert_eq!((days[0].humans, days[0].abandoned), (1, 1));
        assert_eq!((days[1].humans, days[1].abandoned), (2, 0));
        assert_eq!(days[1].day, days[0].day + 1);
    }
}
