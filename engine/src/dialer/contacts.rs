//! The contacts a campaign may still dial, ordered by when each may next be tried.
//!
//! A contact is *due* from its retry time (or at once), and *dialable* when it is due and its
//! callee is inside the calling window. Taking the next contact walks the due order from the
//! front; a contact outside its window is moved to its window's next opening instead, so each
//! one is looked at once per closed window, not once per tick.

use std::collections::BTreeSet;

use jiff::tz::TimeZone;

use super::config::CallingWindow;
use super::window;
use crate::hash::{FastMap, FastSet};
use crate::ids::ContactId;

/// A contact in memory: what decides *when* to dial it, nothing more.
#[derive(Clone, Debug)]
pub struct Contact {
    pub id: ContactId,
    pub number: String,
    pub zone: TimeZone,
    pub zone_name: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Due from (Unix ms), while pending.
    pub due_ms: u64,
    /// An attempt is in flight (not in the due order).
    pub dialling: bool,
}

/// Contacts looked at per `next_dialable` call at most; the rest wait for the next tick.
const SCAN_LIMIT: usize = 256;

#[derive(Debug, Default)]
pub struct ContactPool {
    contacts: FastMap<ContactId, Contact>,
    due: BTreeSet<(u64, ContactId)>,
    blocked: FastSet<String>,
}

/// Why a contact was not added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    UnknownZone(String),
    Blocked,
}

impl ContactPool {
    /// Adds or replaces a contact. A contact with an attempt in flight keeps it; its new
    /// settings apply from its next attempt.
    pub fn add(
        &mut self,
        id: ContactId,
        number: String,
        zone_name: &str,
        attempts: u32,
        due_ms: u64,
    ) -> Result<(), Refused> {
        let Some(zone) = window::zone(zone_name) else {
            return Err(Refused::UnknownZone(zone_name.to_owned()));
        };
        if self.blocked.contains(&number) {
            self.remove(id);
            return Err(Refused::Blocked);
        }
        if let Some(old) = self.contacts.get_mut(&id) {
            let was = (old.due_ms, old.id);
            old.number = number;
            old.zone = zone;
            old.zone_name = zone_name.to_owned();
            old.attempts = attempts;
            old.due_ms = due_ms;
            if !old.dialling {
                self.due.remove(&was);
                self.due.insert((due_ms, id));
            }
            return Ok(());
        }
        self.contacts.insert(
            id,
            Contact {
                id,
                number,
                zone,
                zone_name: zone_name.to_owned(),
                attempts,
                due_ms,
                dialling: false,
            },
        );
        self.due.insert((due_ms, id));
        Ok(())
    }

    pub fn remove(&mut self, id: ContactId) -> Option<Contact> {
        let c = self.contacts.remove(&id)?;
        if !c.dialling {
            self.due.remove(&(c.due_ms, id));
        }
        Some(c)
    }

    /// Blocks numbers (DNC): pending contacts holding them are removed and returned; a
    /// contact being dialled finishes its attempt and is never retried.
    pub fn block(&mut self, numbers: impl IntoIterator<Item = String>) -> Vec<ContactId> {
        let mut removed = Vec::new();
        for n in numbers {
            self.blocked.insert(n);
        }
        let hit: Vec<ContactId> = self
            .contacts
            .values()
            .filter(|c| !c.dialling && self.blocked.contains(&c.number))
            .map(|c| c.id)
            .collect();
        for id in hit {
            self.remove(id);
            removed.push(id);
        }
        removed
    }

    pub fn is_blocked(&self, number: &str) -> bool {
        self.blocked.contains(number)
    }

    /// The next contact that may be dialled at `now`, marked as dialling. Contacts outside
    /// their window move to its next opening.
    pub fn next_dialable(&mut self, now_ms: u64, window: CallingWindow) -> Option<Contact> {
        for _ in 0..SCAN_LIMIT {
            let &(due, id) = self.due.first()?;
            if due > now_ms {
                return None;
            }
            self.due.pop_first();
            let Some(c) = self.contacts.get_mut(&id) else {
                continue;
            };
            match window::next_open(window, &c.zone, now_ms) {
                Some(open) if open <= now_ms => {
                    c.dialling = true;
                    return Some(c.clone());
                }
                Some(open) => {
                    c.due_ms = open;
                    self.due.insert((open, id));
                }
                // A zone jiff cannot place at this instant: never dialled (kept, counted).
                None => {
                    c.due_ms = u64::MAX;
                    self.due.insert((u64::MAX, id));
                }
            }
        }
        None
    }

    /// The attempt in flight ended: due again from `retry_at`, or finished (`None`).
    pub fn attempt_done(&mut self, id: ContactId, attempts: u32, retry_at: Option<u64>) {
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        c.dialling = false;
        c.attempts = attempts;
        match retry_at {
            Some(at) if !self.blocked.contains(&c.number) => {
                c.due_ms = at;
                self.due.insert((at, id));
            }
            _ => {
                self.contacts.remove(&id);
            }
        }
    }

    pub fn get(&self, id: ContactId) -> Option<&Contact> {
        self.contacts.get(&id)
    }

    /// Contacts not finished (pending or being dialled).
    pub fn remaining(&self) -> usize {
        self.contacts.len()
    }

    /// Pending contacts due by `now` (some may still wait for their window).
    pub fn due_now(&self, now_ms: u64) -> usize {
        self.due
            .range(..(now_ms.saturating_add(1), ContactId(0)))
            .count()
    }

    /// Whether any pending contact is due by `now`.
    pub fn any_due(&self, now_ms: u64) -> bool {
        self.due.first().is_some_and(|(d, _)| *d <= now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALWAYS: CallingWindow = CallingWindow {
        start_minute: 0,
        end_minute: 24 * 60,
    };

    fn pool_with(n: u64) -> ContactPool {
        let mut p = ContactPool::default();
        for i in 0..n {
            p.add(ContactId(i), format!("+1555000{i:04}"), "UTC", 0, 0)
                .unwrap();
        }
        p
    }

    #[test]
    fn contacts_come_out_in_due_order_and_only_when_due() {
        let mut p = ContactPool::default();
        p.add(ContactId(1), "+1".into(), "UTC", 0, 5_000).unwrap();
        p.add(ContactId(2), "+2".into(), "UTC", 0, 1_000).unwrap();
        assert!(p.next_dialable(500, ALWAYS).is_none());
        assert_eq!(p.next_dialable(1_000, ALWAYS).unwrap().id, ContactId(2));
        assert!(p.next_dialable(1_000, ALWAYS).is_none());
        assert_eq!(p.next_dialable(9_000, ALWAYS).unwrap().id, ContactId(1));
        assert_eq!(p.remaining(), 2, "dialling contacts still count");
    }

    #[test]
    fn a_retry_puts_the_contact_back_and_done_removes_it() {
        let mut p = pool_with(2);
        let a = p.next_dialable(0, ALWAYS).unwrap();
        let b = p.next_dialable(0, ALWAYS).unwrap();
        p.attempt_done(a.id, 1, Some(60_000));
        p.attempt_done(b.id, 1, None);
        assert_eq!(p.remaining(), 1);
        assert!(p.next_dialable(59_999, ALWAYS).is_none());
        let again = p.next_dialable(60_000, ALWAYS).unwrap();
        assert_eq!((again.id, again.attempts), (a.id, 1));
    }

    #[test]
    fn a_contact_outside_its_window_waits_for_the_opening() {
        let mut p = ContactPool::default();
        // 03:00 UTC is 22:00 the day before in New York (winter): closed until 08:00 there.
        let now = 1_767_236_400_000; // 2026-01-01T03:00:00Z
        p.add(ContactId(1), "+1212".into(), "America/New_York", 0, 0)
            .unwrap();
        p.add(ContactId(2), "+4420".into(), "Europe/London", 0, 0)
            .unwrap();
        let w = CallingWindow::default();
        assert!(p.next_dialable(now, w).is_none(), "03:00 in London too");
        // 08:00 London = 08:00Z.
        let london = now + 5 * 3_600_000;
        assert_eq!(p.next_dialable(london, w).unwrap().id, ContactId(2));
        assert!(p.next_dialable(london, w).is_none());
        // 08:00 New York = 13:00Z.
        let ny = now + 10 * 3_600_000;
        assert_eq!(p.next_dialable(ny, w).unwrap().id, ContactId(1));
    }

    #[test]
    fn blocked_numbers_are_never_dialled_even_when_added_later() {
        let mut p = pool_with(3);
        let removed = p.block(["+15550000001".to_owned()]);
        assert_eq!(removed, vec![ContactId(1)]);
        assert_eq!(
            p.add(ContactId(9), "+15550000001".into(), "UTC", 0, 0),
            Err(Refused::Blocked)
        );
        let mut seen = Vec::new();
        while let Some(c) = p.next_dialable(0, ALWAYS) {
            seen.push(c.id);
        }
        assert_eq!(seen, vec![ContactId(0), ContactId(2)]);
    }

    #[test]
    fn a_dialling_contact_blocked_meanwhile_is_not_retried() {
        let mut p = pool_with(1);
        let c = p.next_dialable(0, ALWAYS).unwrap();
        assert!(p.block([c.number.clone()]).is_empty());
        p.attempt_done(c.id, 1, Some(10));
        assert_eq!(p.remaining(), 0);
    }

    #[test]
    fn unknown_zones_are_refused() {
        let mut p = ContactPool::default();
        assert_eq!(
            p.add(ContactId(1), "+1".into(), "Nowhere/Land", 0, 0),
            Err(Refused::UnknownZone("Nowhere/Land".into()))
        );
    }
}
