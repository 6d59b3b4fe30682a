//! An originate's handover and `uuid_bridge`, timed as FreeSWITCH 1.10.12 times them
//! (captures `originate-bridge-race-*`, DESIGN.md section 9).
//!
//! ```text
//!  t0         CHANNEL_ANSWER of the leg; `execute_on_answer` (amd...) starts
//!  t0 .. t0+h the originate still owns the leg (`Channel::handover`)
//!  t0+h       CHANNEL_STATE CS_EXECUTE, the originate's reply (BACKGROUND_JOB / api
//!             response), then its application (`&park()`: CHANNEL_EXECUTE park, CHANNEL_PARK)
//! ```
//! `h` is `SwitchModel::originate_handover`, drawn per leg. A `uuid_bridge` naming a leg
//! inside the window answers `+OK <b>` at once and its fate is drawn from
//! `SwitchModel::bridge_race`; it plays out at `t0+h`. Outside the window `uuid_bridge` always
//! bridges, in two steps `bridge_delay` apart in all: CHANNEL_UNPARK (+ the park's
//! EXECUTE_COMPLETE) of each parked leg at half, CHANNEL_EXECUTE uuid_bridge on both and one
//! CHANNEL_BRIDGE at the end. If either leg is gone by a step, nothing more happens: the
//! survivor stays as it is.
//!
//! Only `originate` (api/bgapi) owns its leg this way; a `bridge` application's b-leg and
//! inbound calls keep completing with the answer.

use super::*;
use crate::sim::channel::{Handover, Race};
use crate::sim::config::{AfterSocket, RaceOutcome};

impl Switch {
    /// An originated leg answered: CHANNEL_ANSWER now, the originate completes now or, for
    /// `originate` itself, once the handover window is over.
    pub(super) fn answer_originated(&mut self, now: Instant, ch: ChanId) {
        self.answer(now, ch);
        let Some(c) = self.chans.get(&ch) else {
            return;
        };
        if c.hangup_cause.is_some() || c.handover.is_some() {
            return;
        }
        let on_answer = c.var("execute_on_answer").and_then(on_answer_app);
        let owned = matches!(c.waiter, Waiter::Api(_) | Waiter::Bg { .. });
        let h = if owned {
            self.cfg.switch.originate_handover.sample(&mut self.rng)
        } else {
            Duration::ZERO
        };
        if h.is_zero() {
            self.complete_at_answer(now, ch, on_answer);
            return;
        }
        if let Some(c) = self.chans.get_mut(&ch) {
            c.handover = Some(Handover::default());
        }
        // Detection starts with the answer, as `execute_on_answer` does in FreeSWITCH; the
        // originate's own application queues behind it when the originate completes.
        if let Some((app, data)) = on_answer {
            self.set_state(now, ch, CState::Execute);
            self.enqueue_app(ch, &app, &data);
            self.start_next(now, ch);
        }
        self.schedule(now + h, TimerKey::Handover(ch));
    }

    /// The originate completes together with the answer (no handover window).
    fn complete_at_answer(
        &mut self,
        now: Instant,
        ch: ChanId,
        on_answer: Option<(String, String)>,
    ) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        let waiter = std::mem::replace(&mut c.waiter, Waiter::None);
        let uuid = c.uuid.clone();
        let after = c.after_answer.take();
        self.resolve(now, waiter, ch, Ok(&uuid));
        if self
            .chans
            .get(&ch)
            .is_some_and(|c| c.hangup_cause.is_none())
        {
            self.set_state(now, ch, CState::Execute);
            match (on_answer, after) {
                // `execute_on_answer` runs first and the originate's own application after it.
                // Both are queued before either runs: one that returns at once (avmd_start)
                // must not leave the leg idle, and so hung up, before the second is queued.
                (Some((app, data)), after) => {
                    let (then, then_data) = after.unwrap_or_else(|| ("park".into(), String::new()));
                    self.enqueue_app(ch, &app, &data);
                    self.enqueue_app(ch, &then, &then_data);
                    self.start_next(now, ch);
                }
                (None, Some((app, data))) => self.queue_app(now, ch, &app, &data, None),
                (None, None) => self.park(now, ch, None),
            }
        }
    }

    /// The handover window is over: the originate answers, and a bridge that raced it plays
    /// out as drawn.
    pub(super) fn complete_handover(&mut self, now: Instant, ch: ChanId) {
        let Some(c) = self.chans.get_mut(&ch) else {
            return;
        };
        if c.hangup_cause.is_some() {
            return;
        }
        let Some(handover) = c.handover.take() else {
            return;
        };
        let waiter = std::mem::replace(&mut c.waiter, Waiter::None);
        let uuid = c.uuid.clone();
        let (app, data) = c
            .after_answer
            .take()
            .unwrap_or_else(|| ("park".into(), String::new()));
        // A race against a leg that has gone since is no race: the originate completes.
        let race = handover.race.filter(|r| {
            let other = if r.a == ch { r.b } else { r.a };
            self.alive(other)
        });
        let Some(race) = race else {
            self.enter_execute(now, ch);
            self.resolve(now, waiter, ch, Ok(&uuid));
            self.queue_app(now, ch, &app, &data, None);
            return;
        };
        let other = if race.a == ch { race.b } else { race.a };
        // Whatever comes of it, uuid_bridge has transferred both legs by now.
        if race.outcome != RaceOutcome::Bridged {
            self.uuid_bridge_transfer(now, race.a, race.b);
        }
        match race.outcome {
            RaceOutcome::Bridged => {
                // The transfer into the bridge replaced the originate's application.
                self.enter_execute(now, ch);
                self.resolve(now, waiter, ch, Ok(&uuid));
                self.start_bridge(now, race.a, race.b);
            }
            RaceOutcome::CancelBridged => {
                // The other leg was already pulled out of park by the uuid_bridge; the
                // originate saw its leg transferred away and reports it cancelled, but the
                // leg is not hung up and the bridge goes through on the next tick.
                self.unpark(now, other);
                self.resolve(now, waiter, ch, Err("ORIGINATOR_CANCEL"));
                let half = self.cfg.switch.bridge_delay.sample(&mut self.rng) / 2;
                self.schedule(now + half, TimerKey::BridgeJoin(race.a, race.b));
            }
            RaceOutcome::CancelStuck => {
                self.unpark(now, other);
                self.resolve(now, waiter, ch, Err("ORIGINATOR_CANCEL"));
                self.strand(now, ch);
            }
            RaceOutcome::Parked => {
                // The originate's `set_state(CS_EXECUTE)` overwrote the transfer: its
                // application runs, the other leg was unparked for a bridge that never comes.
                self.enter_execute(now, ch);
                self.resolve(now, waiter, ch, Ok(&uuid));
                self.queue_app(now, ch, &app, &data, None);
                self.unpark(now, other);
            }
            RaceOutcome::Stuck => {
                self.resolve(now, waiter, ch, Ok(&uuid));
                self.unpark(now, other);
                self.strand(now, ch);
            }
        }
    }

    /// `uuid_bridge a b` on two live, distinct channels (the api has answered `+OK <b>`).
    pub(super) fn uuid_bridge(&mut self, now: Instant, a: ChanId, b: ChanId) {
        let owned = [a, b]
            .into_iter()
            .find(|x| self.chans.get(x).is_some_and(|c| c.handover.is_some()));
        let Some(leg) = owned else {
            self.start_bridge(now, a, b);
            return;
        };
        let outcome = self.cfg.switch.bridge_race.pick(self.rng.unit());
        if let Some(h) = self.chans.get_mut(&leg).and_then(|c| c.handover.as_mut()) {
            // A later uuid_bridge in the same window replaces the earlier one, as the later
            // transfer would.
            h.race = Some(Race { a, b, outcome });
        }
    }

    /// Starts a bridge that nothing races: unpark at half the delay, join at the end.
    pub(super) fn start_bridge(&mut self, now: Instant, a: ChanId, b: ChanId) {
        let d = self.cfg.switch.bridge_delay.sample(&mut self.rng);
        if d.is_zero() {
            self.bridge(now, a, b);
            return;
        }
        self.schedule(now + d / 2, TimerKey::BridgeUnpark(a, b));
        self.schedule(now + d, TimerKey::BridgeJoin(a, b));
    }

    /// First step of a uuid_bridge: both legs leave park (a socket caller's `socket`
    /// application completes the same way).
    pub(super) fn bridge_unpark(&mut self, now: Instant, a: ChanId, b: ChanId) {
        if !(self.alive(a) && self.alive(b)) {
            return;
        }
        self.uuid_bridge_transfer(now, a, b);
        // A caller held by its `socket` application may see that application return before
        // uuid_bridge has claimed the channel; what it meets then is its own extension.
        let fell = [a, b]
            .into_iter()
            .find(|&x| self.in_socket(x) && self.rng.unit() < self.cfg.switch.socket_fall_through);
        let Some(x) = fell else {
            self.unpark(now, a);
            self.unpark(now, b);
            return;
        };
        match self.cfg.switch.after_socket {
            AfterSocket::Nothing => {
                // The extension is over: FreeSWITCH hangs the caller up NORMAL_CLEARING, and
                // the bridge never claims the other leg, which stays where it was (parked).
                self.unpark(now, x);
                if let Some(c) = self.chans.get_mut(&x) {
                    c.socket_fell_through = true;
                }
                let d = self
                    .cfg
                    .switch
                    .socket_fall_through_hangup
                    .sample(&mut self.rng);
                self.schedule(now + d, TimerKey::ExtensionEnd(x));
            }
            AfterSocket::Park => {
                // The next action parks the caller; uuid_bridge's transfer ends that park at
                // once and the bridge goes on as usual.
                self.unpark(now, x);
                self.park(now, x, None);
                self.unpark(now, a);
                self.unpark(now, b);
            }
        }
    }

    /// The channel is parked in its `socket` application (an inbound caller on its socket).
    fn in_socket(&self, ch: ChanId) -> bool {
        self.chans.get(&ch).is_some_and(|c| {
            c.socket.is_some() && c.parked && c.queue.front().is_some_and(|a| a.name == "socket")
        })
    }

    /// What `uuid_bridge` does to both legs before either moves: each gets a new caller
    /// profile (Profile-Index + 1, a Transfer-Source naming the other) and already shows the
    /// other as its Other-Leg, on CHANNEL_UNPARK and on, as in every race capture.
    fn uuid_bridge_transfer(&mut self, now: Instant, a: ChanId, b: ChanId) {
        let (Some(pa), Some(pb)) = (
            self.chans.get(&a).map(|c| c.profile.clone()),
            self.chans.get(&b).map(|c| c.profile.clone()),
        ) else {
            return;
        };
        let epoch = self.us(now) / 1_000_000;
        for (x, kind, other) in [(a, "originatee", pb), (b, "originator", pa)] {
            let source = format!("{epoch}:{}:uuid_br:{}", self.rng.uuid(), other.uuid);
            if let Some(c) = self.chans.get_mut(&x) {
                c.profile.index += 1;
                c.profile.transfer_source = Some(source.clone());
                c.set_var("transfer_history", source.clone());
                c.set_var("transfer_source", source);
                c.other = Some((kind, other));
            }
        }
    }

    /// Last step of a uuid_bridge: CHANNEL_EXECUTE uuid_bridge on each leg (already showing
    /// the other as its Other-Leg, as in the captures), then CHANNEL_BRIDGE on `a`.
    pub(super) fn bridge_join(&mut self, now: Instant, a: ChanId, b: ChanId) {
        if !(self.alive(a) && self.alive(b)) {
            return;
        }
        if [a, b]
            .into_iter()
            .any(|x| self.chans.get(&x).is_some_and(|c| c.socket_fell_through))
        {
            return;
        }
        self.unpark(now, a);
        self.unpark(now, b);
        let (Some(pa), Some(pb)) = (
            self.chans.get(&a).map(|c| c.profile.clone()),
            self.chans.get(&b).map(|c| c.profile.clone()),
        ) else {
            return;
        };
        let (ua, ub) = (pa.uuid.clone(), pb.uuid.clone());
        for (x, kind, other, other_uuid) in [(a, "originatee", pb, ub), (b, "originator", pa, ua)] {
            if let Some(c) = self.chans.get_mut(&x) {
                c.other = Some((kind, other));
            }
            let post = vec![
                ("Application".into(), "uuid_bridge".into()),
                ("Application-Data".into(), other_uuid),
            ];
            self.chan_event(now, x, "CHANNEL_EXECUTE", vec![], post, true);
        }
        self.bridge(now, a, b);
    }

    fn alive(&self, ch: ChanId) -> bool {
        self.chans
            .get(&ch)
            .is_some_and(|c| c.hangup_cause.is_none())
    }

    fn enter_execute(&mut self, now: Instant, ch: ChanId) {
        if self
            .chans
            .get(&ch)
            .is_some_and(|c| c.state != CState::Execute)
        {
            self.set_state(now, ch, CState::Execute);
        }
    }

    /// A leg the race left behind: up, answered, running nothing, not parked (FreeSWITCH's
    /// log shows it settle in CS_CONSUME_MEDIA). It stays until killed.
    fn strand(&mut self, now: Instant, ch: ChanId) {
        if let Some(c) = self.chans.get_mut(&ch) {
            // Nothing runs on it, and nothing will: it must not hang up for being idle.
            c.hangup_when_idle = false;
        }
        self.set_state(now, ch, CState::ConsumeMedia);
    }
}
