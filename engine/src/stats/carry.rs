//! The open interval carried over a restart.
//!
//! Only closed intervals become records, and a new process starts its first interval empty:
//! without this, a stop (graceful or `kill -9`) loses what the open quarter hour had counted,
//! and the next process's close writes its own part alone under the same start. The runtime
//! saves [`Stats::open_interval`] now and then (a checkpoint); the next process, started in
//! the same interval, adds it with [`Stats::carry_in`], so that interval's record and every
//! live read of it hold both parts. A checkpoint of an interval that has since passed (the
//! process was down across its end) becomes that interval's records with
//! [`OpenInterval::records`].
//!
//! What is carried are the raw counters (sums and counts, never means), so parts add up
//! exactly; `since_start` figures stay the process's own.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::figures::{AgentCounters, CallCounters, PerState};
use super::{
    AgentFigures, Figures, IntervalRecord, QueueFigures, Scope, Stats, agent_record_due,
    ensure_agent, ensure_queue,
};
use crate::ids::{AgentId, QueueId};

/// What the open interval has counted, per queue, per agent and in total.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenInterval {
    start_unix_ms: u64,
    end_unix_ms: u64,
    total: CallCounters,
    total_time: PerState<Duration>,
    queues: Vec<QueueCarry>,
    agents: Vec<AgentCarry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct QueueCarry {
    queue: u32,
    calls: CallCounters,
    time: PerState<Duration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct AgentCarry {
    agent: u32,
    counters: AgentCounters,
    time: PerState<Duration>,
}

impl OpenInterval {
    /// Wall-clock start of the interval (unix ms).
    pub fn start_unix_ms(&self) -> u64 {
        self.start_unix_ms
    }

    /// Whether nothing was counted (no call, no agent logged in).
    pub fn is_empty(&self) -> bool {
        self.total == CallCounters::default()
            && self.agents.is_empty()
            && self
                .queues
                .iter()
                .all(|q| q.calls == CallCounters::default())
    }

    /// The interval's records as its close would have made them (queues by id, agents by id,
    /// then the total), for an interval whose process ended before it closed.
    pub fn records(&self) -> Vec<IntervalRecord> {
        let record = |scope, figures| IntervalRecord {
            start_unix_ms: self.start_unix_ms,
            end_unix_ms: self.end_unix_ms,
            scope,
            figures,
        };
        let mut queues: Vec<&QueueCarry> = self.queues.iter().collect();
        queues.sort_by_key(|q| q.queue);
        let mut agents: Vec<&AgentCarry> = self.agents.iter().collect();
        agents.sort_by_key(|a| a.agent);
        let mut out = Vec::with_capacity(queues.len() + agents.len() + 1);
        for q in queues {
            out.push(record(
                Scope::Queue(QueueId(q.queue)),
                Figures::Queue(QueueFigures::new(&q.calls, &q.time)),
            ));
        }
        for a in agents {
            out.push(record(
                Scope::Agent(AgentId(a.agent)),
                Figures::Agent(AgentFigures::new(&a.counters, &a.time)),
            ));
        }
        out.push(record(
            Scope::Total,
            Figures::Queue(QueueFigures::new(&self.total, &self.total_time)),
        ));
        out
    }
}

impl Stats {
    /// The open interval's counters as of `now` (state time accrued to `now`), to carry over a
    /// restart. Agents with nothing to record are left out, as a close leaves them out.
    pub fn open_interval(&self, now: Instant) -> OpenInterval {
        // A read past the boundary the stats have not closed yet (a quiet engine) counts
        // state time up to the boundary only: the rest is the next interval's.
        let now = self.clock.next_boundary().map_or(now, |b| now.min(b));
        let queues = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, qs)| {
                let qs = qs.as_ref()?;
                Some(QueueCarry {
                    queue: u32::try_from(i).ok()?,
                    calls: qs.calls.interval,
                    time: qs.members.times_at(now).1,
                })
            })
            .collect();
        let agents = self
            .agents
            .iter()
            .enumerate()
            .filter_map(|(i, ag)| {
                let ag = ag.as_ref()?;
                let time = ag.time.times_at(now).1;
                let counters = ag.counters.interval;
                agent_record_due(&time, &counters).then_some(AgentCarry {
                    agent: u32::try_from(i).ok()?,
                    counters,
                    time,
                })
            })
            .collect();
        OpenInterval {
            start_unix_ms: self.clock.start_unix_ms(),
            end_unix_ms: self.clock.next_unix_ms(),
            total: self.total.interval,
            total_time: self.all_agents.times_at(now).1,
            queues,
            agents,
        }
    }

    /// Adds what another process counted in the open interval. False (nothing added) when
    /// `carried` is of another interval than the one open at `now`.
    pub fn carry_in(&mut self, now: Instant, carried: &OpenInterval) -> bool {
        let now = self.tick(now);
        if carried.start_unix_ms != self.clock.start_unix_ms() {
            return false;
        }
        self.total.interval.add(&carried.total);
        self.all_agents.carry_in(&carried.total_time);
        for q in &carried.queues {
            if let Some(qs) = ensure_queue(&mut self.queues, QueueId(q.queue), now) {
                qs.calls.interval.add(&q.calls);
                qs.members.carry_in(&q.time);
            } else {
                self.ignored += 1;
            }
        }
        for a in &carried.agents {
            let agent = AgentId(a.agent);
            if let Some(ag) = ensure_agent(&mut self.agents, &mut self.all_agents, agent, now) {
                ag.counters.interval.add(&a.counters);
                ag.time.carry_in(&a.time);
            } else {
                self.ignored += 1;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::{QueueStatsConfig, StatsConfig};
    use super::*;
    use crate::agent::AgentStateKind;
    use crate::ids::CallId;

    const QUARTER: Duration = Duration::from_secs(900);
    /// 10:00 UTC on some day: an interval boundary.
    const TEN: u64 = 1_700_000_000_000 / 900_000 * 900_000;

    fn stats(origin: Instant, unix_ms: u64) -> Stats {
        let mut s = Stats::new(StatsConfig::new(origin, unix_ms));
        s.configure_queue(QueueId(1), QueueStatsConfig::default());
        s
    }

    /// Two calls answered (waits 4 s and 30 s), one abandoned, agent 3 on a call for 60 s.
    /// In time order: the stats take no event from before the last one.
    fn traffic(s: &mut Stats, t0: Instant, first_call: u32) {
        let (q, a) = (QueueId(1), AgentId(3));
        let at = |secs| t0 + Duration::from_secs(secs);
        s.agent_state(t0, a, AgentStateKind::Available);
        s.agent_queues(t0, a, &[q]);
        let (one, two, gone) = (
            CallId(first_call),
            CallId(first_call + 1),
            CallId(first_call + 9),
        );
        for c in [one, two, gone] {
            s.call_entered(t0, q, c);
        }
        s.call_abandoned(at(2), q, gone);
        s.call_answered(at(4), q, one, a);
        s.call_answered(at(30), q, two, a);
        s.agent_state(at(30), a, AgentStateKind::OnCall);
        s.agent_state(at(90), a, AgentStateKind::Available);
    }

    #[test]
    fn an_interval_split_by_a_restart_closes_with_both_parts() {
        // One process counts the first 5 minutes of 10:00-10:15 and stops; the next starts at
        // 10:06, carries the first part in and counts as much again. Its 10:00 record is the
        // record one process counting both parts would have made.
        let t = Instant::now();
        let mut one = stats(t, TEN);
        traffic(&mut one, t, 1);
        let carried = one.open_interval(t + Duration::from_secs(300));
        let json = serde_json::to_string(&carried).unwrap();
        let carried: OpenInterval = serde_json::from_str(&json).unwrap();
        assert_eq!(carried.start_unix_ms(), TEN);
        assert!(!carried.is_empty());

        let t2 = t + Duration::from_secs(360);
        let mut two = stats(t2, TEN + 360_000);
        assert!(two.carry_in(t2, &carried));
        traffic(&mut two, t2, 101);
        // The live read of the open interval already holds both parts.
        let live = two.queue_snapshot(t2 + Duration::from_secs(120), QueueId(1));
        assert_eq!(
            (
                live.interval.offered,
                live.interval.answered,
                live.interval.abandoned
            ),
            (6, 4, 2)
        );
        two.advance(t + QUARTER);
        let records: Vec<IntervalRecord> = two.drain_closed().collect();
        let queue = records
            .iter()
            .find(|r| r.scope == Scope::Queue(QueueId(1)))
            .unwrap();
        let Figures::Queue(f) = &queue.figures else {
            panic!("{queue:?}")
        };
        assert_eq!((queue.start_unix_ms, f.offered, f.answered), (TEN, 6, 4));
        assert_eq!((f.abandoned, f.short_abandoned), (2, 2));
        assert_eq!(f.asa_s, Some(17.0), "(4 + 30 + 4 + 30) / 4");
        let agent = records
            .iter()
            .find(|r| r.scope == Scope::Agent(AgentId(3)))
            .unwrap();
        let Figures::Agent(f) = &agent.figures else {
            panic!("{agent:?}")
        };
        assert_eq!(f.answered, 4);
        assert_eq!(f.state_time_s.on_call, 120.0, "60 s in each process");
        // Available: 300 s of the first process less its 60 s on call, then from 10:06 to
        // 10:15 less 60 s on call.
        assert_eq!(f.state_time_s.available, 240.0 + 480.0);
        let total = records.iter().find(|r| r.scope == Scope::Total).unwrap();
        let Figures::Queue(f) = &total.figures else {
            panic!("{total:?}")
        };
        assert_eq!(f.offered, 6);
    }

    #[test]
    fn a_checkpoint_of_another_interval_is_not_carried_in_and_becomes_its_own_records() {
        let t = Instant::now();
        let mut one = stats(t, TEN);
        traffic(&mut one, t, 1);
        let carried = one.open_interval(t + Duration::from_secs(300));
        // The next process starts at 10:20: 10:00-10:15 never closed anywhere.
        let t2 = t + Duration::from_secs(1200);
        let mut two = stats(t2, TEN + 1_200_000);
        assert!(!two.carry_in(t2, &carried));
        assert_eq!(two.queue_snapshot(t2, QueueId(1)).interval.offered, 0);
        let records = carried.records();
        assert_eq!(
            records.iter().map(|r| r.scope).collect::<Vec<_>>(),
            [
                Scope::Queue(QueueId(1)),
                Scope::Agent(AgentId(3)),
                Scope::Total
            ]
        );
        assert!(
            records
                .iter()
                .all(|r| (r.start_unix_ms, r.end_unix_ms) == (TEN, TEN + 900_000))
        );
        let Figures::Queue(f) = &records[0].figures else {
            panic!("{records:?}")
        };
        assert_eq!((f.offered, f.answered, f.asa_s), (3, 2, Some(17.0)));
    }

    #[test]
    fn an_idle_interval_is_empty_and_a_busy_one_is_not() {
        let t = Instant::now();
        let s = stats(t, TEN);
        assert!(s.open_interval(t + Duration::from_secs(60)).is_empty());
    }
}
