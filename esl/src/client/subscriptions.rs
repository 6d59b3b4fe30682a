//! The subscription the caller asked for, recorded so that every new connection gets it back,
//! plus the events and filters the client itself depends on. Sans-IO: it only produces the
//! commands to send.
//!
//! Two facts of mod_event_socket shape it:
//! - `event` adds to the subscription and `nixevent` removes from it; the format of the last
//!   `event` command wins.
//! - Filters are OR'ed: once any filter exists, an event passes only if some filter matches. So
//!   while the caller has filters, `Event-Name BACKGROUND_JOB` and `Event-Name HEARTBEAT` are
//!   added too, or bgapi results and the heartbeat watchdog would starve.

use crate::codec::{Command, EventFormat, EventSet};

/// Events the client subscribes for itself: bgapi results and the watchdog's heartbeat.
pub(crate) const INTERNAL_EVENTS: [&str; 2] = ["BACKGROUND_JOB", "HEARTBEAT"];

/// A change asked for at runtime through the client handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// `event`; `format` changes the recorded format when given.
    Subscribe {
        format: Option<EventFormat>,
        events: EventSet,
    },
    /// `nixevent`.
    Unsubscribe(EventSet),
    /// `noevents`.
    NoEvents,
    /// `filter <header> <value>`.
    Filter { header: String, value: String },
    /// `filter delete <header> [<value>]` (`all` deletes every filter).
    FilterDelete {
        header: String,
        value: Option<String>,
    },
}

impl Change {
    /// The command the caller asked for, used to validate the change before it is recorded (an
    /// invalid word must not be replayed on every reconnect).
    pub(crate) fn command(&self) -> Command {
        match self {
            Change::Subscribe { format, events } => Command::Event {
                format: format.unwrap_or_default(),
                events: events.clone(),
            },
            Change::Unsubscribe(events) => Command::NixEvent {
                events: events.clone(),
            },
            Change::NoEvents => Command::NoEvents,
            Change::Filter { header, value } => Command::Filter {
                header: header.clone(),
                value: value.clone(),
            },
            Change::FilterDelete { header, value } => Command::FilterDelete {
                header: header.clone(),
                value: value.clone(),
            },
        }
    }
}

/// A command to send, and whether its reply answers the caller (the others are ours).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) command: Command,
    pub(crate) for_caller: bool,
}

#[derive(Debug)]
pub(crate) struct Subscriptions {
    format: EventFormat,
    /// What the caller subscribed to (without our internal events unless they asked).
    events: EventSet,
    /// The caller's filters, in the order given.
    filters: Vec<(String, String)>,
    /// Whether our internal filters are set on the current connection.
    internal_filters: bool,
}

impl Subscriptions {
    pub(crate) fn new(
        format: EventFormat,
        events: EventSet,
        filters: Vec<(String, String)>,
    ) -> Self {
        Subscriptions {
            format,
            events,
            filters,
            internal_filters: false,
        }
    }

    /// Commands that bring a fresh connection to the recorded state: filters first (so the
    /// event flood never starts unfiltered), then one `event` command.
    pub(crate) fn setup_commands(&mut self) -> Vec<Command> {
        let mut cmds = Vec::new();
        self.internal_filters = false;
        if !self.filters.is_empty() {
            cmds.extend(internal_filter_commands(false));
            self.internal_filters = true;
            for (header, value) in &self.filters {
                cmds.push(Command::Filter {
                    header: header.clone(),
                    value: value.clone(),
                });
            }
        }
        let mut events = self.events.clone();
        if !self.has_all() {
            events.add_names(INTERNAL_EVENTS);
        }
        cmds.push(Command::Event {
            format: self.format,
            events,
        });
        cmds
    }

    /// Whether the caller wants an event the client also subscribes for itself.
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.has_all()
            || self
                .events
                .names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
    }

    fn has_all(&self) -> bool {
        self.events
            .names
            .iter()
            .any(|n| n.eq_ignore_ascii_case("ALL"))
    }

    /// Records a change and returns the commands that apply it on a live connection (the caller
    /// discards them while disconnected: the next `setup_commands` carries the new state).
    pub(crate) fn apply(&mut self, change: Change) -> Vec<Planned> {
        let mut out = Vec::new();
        match change {
            Change::Subscribe { format, events } => {
                if let Some(f) = format {
                    self.format = f;
                }
                self.events.add_names(events.names.iter().cloned());
                for s in &events.subclasses {
                    if !self.events.subclasses.contains(s) {
                        self.events.subclasses.push(s.clone());
                    }
                }
                out.push(caller(Command::Event {
                    format: self.format,
                    events,
                }));
            }
            Change::Unsubscribe(events) => {
                let nix_all = events.names.iter().any(|n| n.eq_ignore_ascii_case("ALL"));
                self.events
                    .names
                    .retain(|n| nix_all || !events.names.iter().any(|x| x.eq_ignore_ascii_case(n)));
                self.events
                    .subclasses
                    .retain(|s| !events.subclasses.contains(s));
                // Our own events stay subscribed at the switch; they just stop being delivered.
                let mut sent = events;
                sent.names.retain(|n| !is_internal(n));
                if !sent.is_empty() {
                    out.push(caller(Command::NixEvent { events: sent }));
                    if nix_all {
                        out.push(ours(self.internal_event_command()));
                    }
                }
            }
            Change::NoEvents => {
                self.events = EventSet::default();
                out.push(caller(Command::NoEvents));
                out.push(ours(self.internal_event_command()));
            }
            Change::Filter { header, value } => {
                if !self.internal_filters {
                    out.extend(internal_filter_commands(false).into_iter().map(ours));
                    self.internal_filters = true;
                }
                if !self
                    .filters
                    .iter()
                    .any(|(h, v)| *h == header && *v == value)
                {
                    self.filters.push((header.clone(), value.clone()));
                }
                out.push(caller(Command::Filter { header, value }));
            }
            Change::FilterDelete { header, value } => {
                if header.eq_ignore_ascii_case("all") {
                    self.filters.clear();
                    self.internal_filters = false;
                } else {
                    self.filters.retain(|(h, v)| {
                        !(h.eq_ignore_ascii_case(&header) && value.as_ref().is_none_or(|x| x == v))
                    });
                    let hits_ours = header.eq_ignore_ascii_case("Event-Name")
                        && value.as_deref().is_none_or(is_internal);
                    if hits_ours {
                        self.internal_filters = false;
                    }
                }
                out.push(caller(Command::FilterDelete { header, value }));
                let needed = !self.filters.is_empty();
                if needed != self.internal_filters {
                    out.extend(internal_filter_commands(!needed).into_iter().map(ours));
                    self.internal_filters = needed;
                }
            }
        }
        out
    }

    fn internal_event_command(&self) -> Command {
        let mut events = EventSet::default();
        events.add_names(INTERNAL_EVENTS);
        Command::Event {
            format: self.format,
            events,
        }
    }
}

fn is_internal(name: &str) -> bool {
    INTERNAL_EVENTS.iter().any(|i| i.eq_ignore_ascii_case(name))
}

fn internal_filter_commands(delete: bool) -> Vec<Command> {
    INTERNAL_EVENTS
        .iter()
        .map(|e| {
            if delete {
                Command::FilterDelete {
                    header: "Event-Name".into(),
                    value: Some((*e).into()),
                }
            } else {
                Command::Filter {
                    header: "Event-Name".into(),
                    value: (*e).into(),
                }
            }
        })
        .collect()
}

fn caller(command: Command) -> Planned {
    Planned {
        command,
        for_caller: true,
    }
}

fn ours(command: Command) -> Planned {
    Planned {
        command,
        for_caller: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(cmds: impl IntoIterator<Item = Command>) -> Vec<String> {
        cmds.into_iter().map(|c| c.describe()).collect()
    }

    fn planned(p: Vec<Planned>) -> Vec<String> {
        lines(p.into_iter().map(|p| p.command))
    }

    #[test]
    fn setup_adds_internal_events_and_puts_filters_first() {
        let mut s = Subscriptions::new(
            EventFormat::Json,
            EventSet::parse("CHANNEL_CREATE CUSTOM callcenter::info"),
            vec![("Unique-ID".into(), "abc".into())],
        );
        assert_eq!(
            lines(s.setup_commands()),
            [
                "filter Event-Name BACKGROUND_JOB",
                "filter Event-Name HEARTBEAT",
                "filter Unique-ID abc",
                "event json CHANNEL_CREATE BACKGROUND_JOB HEARTBEAT CUSTOM callcenter::info",
            ]
        );
    }

    #[test]
    fn all_is_not_padded_with_internal_events() {
        let mut s = Subscriptions::new(EventFormat::Plain, EventSet::parse("ALL"), vec![]);
        assert_eq!(lines(s.setup_commands()), ["event plain ALL"]);
        assert!(s.wants("HEARTBEAT"));
    }

    #[test]
    fn internal_events_are_delivered_only_when_asked_for() {
        let s = Subscriptions::new(
            EventFormat::Plain,
            EventSet::parse("CHANNEL_ANSWER"),
            vec![],
        );
        assert!(!s.wants("BACKGROUND_JOB"));
        assert!(!s.wants("HEARTBEAT"));
    }

    #[test]
    fn first_runtime_filter_brings_the_internal_filters_and_the_last_one_removes_them() {
        let mut s = Subscriptions::new(EventFormat::Plain, EventSet::parse("ALL"), vec![]);
        s.setup_commands();
        let add = s.apply(Change::Filter {
            header: "Unique-ID".into(),
            value: "u1".into(),
        });
        assert_eq!(
            planned(add.clone()),
            [
                "filter Event-Name BACKGROUND_JOB",
                "filter Event-Name HEARTBEAT",
                "filter Unique-ID u1"
            ]
        );
        assert_eq!(add.iter().filter(|p| p.for_caller).count(), 1);
        let del = s.apply(Change::FilterDelete {
            header: "Unique-ID".into(),
            value: Some("u1".into()),
        });
        assert_eq!(
            planned(del),
            [
                "filter delete Unique-ID u1",
                "filter delete Event-Name BACKGROUND_JOB",
                "filter delete Event-Name HEARTBEAT"
            ]
        );
    }

    #[test]
    fn deleting_event_name_filters_restores_ours_while_caller_filters_remain() {
        let mut s = Subscriptions::new(
            EventFormat::Plain,
            EventSet::parse("ALL"),
            vec![
                ("Unique-ID".into(), "u1".into()),
                ("Event-Name".into(), "CHANNEL_ANSWER".into()),
            ],
        );
        s.setup_commands();
        let del = s.apply(Change::FilterDelete {
            header: "Event-Name".into(),
            value: None,
        });
        assert_eq!(
            planned(del),
            [
                "filter delete Event-Name",
                "filter Event-Name BACKGROUND_JOB",
                "filter Event-Name HEARTBEAT"
            ]
        );
    }

    #[test]
    fn runtime_changes_are_replayed_on_the_next_connection() {
        let mut s = Subscriptions::new(
            EventFormat::Plain,
            EventSet::parse("CHANNEL_CREATE"),
            vec![],
        );
        s.setup_commands();
        s.apply(Change::Subscribe {
            format: None,
            events: EventSet::parse("CHANNEL_ANSWER"),
        });
        s.apply(Change::Filter {
            header: "Caller-Context".into(),
            value: "default".into(),
        });
        s.apply(Change::Unsubscribe(EventSet::parse(
            "CHANNEL_CREATE HEARTBEAT",
        )));
        assert_eq!(
            lines(s.setup_commands()),
            [
                "filter Event-Name BACKGROUND_JOB",
                "filter Event-Name HEARTBEAT",
                "filter Caller-Context default",
                "event plain CHANNEL_ANSWER BACKGROUND_JOB HEARTBEAT",
            ]
        );
    }

    #[test]
    fn nixevent_never_unsubscribes_our_own_events() {
        let mut s = Subscriptions::new(EventFormat::Plain, EventSet::parse("HEARTBEAT"), vec![]);
        s.setup_commands();
        assert!(
            s.apply(Change::Unsubscribe(EventSet::parse("HEARTBEAT")))
                .is_empty()
        );
        assert!(!s.wants("HEARTBEAT"));
        assert_eq!(
            planned(s.apply(Change::Unsubscribe(EventSet::parse("ALL")))),
            ["nixevent ALL", "event plain BACKGROUND_JOB HEARTBEAT"]
        );
    }
}
