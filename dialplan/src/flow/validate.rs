//! Validation of a [`Flow`]: everything the runner relies on, refused with the path of the field
//! (`steps[3].menu`, `menus[1].entries[2].action`) so the API can point at it.
//!
//! ```text
//!   strings and bounds  ->  ids unique  ->  references (steps, menus; queues, agents,
//!   schedules, mailboxes through Known)  ->  submenu cycles and depth  ->  the graph:
//!   every step and menu reachable from steps[0], and from each one a terminal reachable
//! ```
//!
//! The graph check is what "a loop with no exit" means here: a node from which no queue,
//! agent, voicemail, transfer or play-and-hang-up can be reached whatever the caller presses.
//! Loops that have an exit (a menu whose `top` returns to the main menu) are fine; the runner's
//! prompt bound ends them. `back` and `top` are taken to reach every menu that can stack the
//! menu (a slight over-approximation: the runner knows the actual stack).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::model::{Assignment, Fallback, Flow, Keys, Menu, MenuAction, Step, Value, VoicemailBox};
use super::numbers::normalise_number;
use super::{MAX_DIGITS, MAX_ENTRIES_PER_MENU, MAX_MENU_DEPTH, MAX_MENUS, pattern};
use super::{MAX_STEPS, MAX_STRING_LEN, MAX_TIMEOUT, MAX_TRIES, MAX_VARS_PER_SET};
use crate::DialplanError;

/// What exists outside the flow, as the caller knows it (the API's store, a test's sets).
pub trait Known {
    fn queue(&self, id: &str) -> bool;
    fn agent(&self, id: &str) -> bool;
    fn schedule(&self, id: &str) -> bool;
    /// A menu stored apart from any flow (the API's `/v1/ivr-menus`), by the id flows name it
    /// by in a `menu` step or a `submenu` action; none by default. A flow that names one is
    /// validated (and run, [`Flow::resolve_menus`]) as if the menu were among its own.
    fn menu(&self, id: &str) -> Option<&Menu> {
        let _ = id;
        None
    }
    /// A queue's or agent's box; by default it exists when its owner does.
    fn voicemail_box(&self, mailbox: &VoicemailBox) -> bool {
        match mailbox {
            VoicemailBox::Queue(q) => self.queue(q),
            VoicemailBox::Agent(a) => self.agent(a),
        }
    }
}

type Res = Result<(), DialplanError>;

fn err(path: impl Into<String>, reason: impl Into<String>) -> DialplanError {
    DialplanError::invalid(path, reason)
}

fn check_str(path: &str, s: &str) -> Res {
    if s.is_empty() {
        return Err(err(path, "empty"));
    }
    if s.len() > MAX_STRING_LEN {
        return Err(err(path, format!("longer than {MAX_STRING_LEN} bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(err(path, "control characters"));
    }
    Ok(())
}

/// A prompt is a file path or a FreeSWITCH URL (`tone_stream://...`). `play_and_get_digits`
/// takes its arguments separated by spaces, so a space in a prompt would shift every argument
/// after it.
fn check_prompt(path: &str, s: &str) -> Res {
    check_str(path, s)?;
    if s.chars().any(char::is_whitespace) {
        return Err(err(
            path,
            "no spaces: play_and_get_digits separates its arguments by spaces",
        ));
    }
    Ok(())
}

struct Ids<'a> {
    steps: BTreeMap<&'a str, usize>,
    menus: BTreeMap<&'a str, usize>,
    /// A stored menu, checked apart from any flow: its `step` actions name steps of the flows
    /// that will use it, checked when each of them is.
    any_step: bool,
    /// Where menus are looked for, for the message.
    scope: &'static str,
}

impl Ids<'_> {
    fn step(&self, path: &str, id: &str) -> Res {
        check_str(path, id)?;
        if self.any_step || self.steps.contains_key(id) {
            Ok(())
        } else {
            Err(err(path, format!("no step {id:?} in this flow")))
        }
    }
    fn menu(&self, path: &str, id: &str) -> Res {
        check_str(path, id)?;
        if self.menus.contains_key(id) {
            Ok(())
        } else {
            Err(err(path, format!("no menu {id:?} {}", self.scope)))
        }
    }
}

impl Flow {
    /// Validates the whole flow, with the stored menus it names ([`Known::menu`]) as if they
    /// were among its own; the first problem found is the error. A problem inside a stored
    /// menu (an entry naming a step this flow lacks) is reported at the field of this flow that
    /// brings the menu in (`steps[1].menu`), the menu and its own field in the reason.
    pub fn validate<K: Known + ?Sized>(&self, known: &K) -> Res {
        let (merged, origins) = self.resolve(known)?;
        merged
            .validate_merged(known)
            .map_err(|e| remap(e, self.menus.len(), &merged, &origins))
    }

    /// The flow as the runner needs it: its own menus, then every stored menu it names
    /// (directly or through submenus), each under the id it is named by. Validate first:
    /// this refuses only a local menu that takes a stored menu's id and a flow past
    /// [`MAX_MENUS`] with them.
    pub fn resolve_menus<K: Known + ?Sized>(&self, known: &K) -> Result<Flow, DialplanError> {
        self.resolve(known).map(|(flow, _)| flow)
    }

    /// [`Flow::resolve_menus`], with the path of the field that brought in each stored menu.
    fn resolve<K: Known + ?Sized>(&self, known: &K) -> Result<(Flow, Vec<String>), DialplanError> {
        if self.steps.len() > MAX_STEPS {
            return Err(err("steps", format!("more than {MAX_STEPS} steps")));
        }
        if self.menus.len() > MAX_MENUS {
            return Err(err("menus", format!("more than {MAX_MENUS} menus")));
        }
        let mut local: BTreeSet<&str> = BTreeSet::new();
        for (m, menu) in self.menus.iter().enumerate() {
            if known.menu(&menu.id).is_some() {
                return Err(err(
                    format!("menus[{m}].id"),
                    format!(
                        "{:?} is the id of a stored IVR menu; a menu of the flow needs its own",
                        menu.id
                    ),
                ));
            }
            local.insert(&menu.id);
        }
        let mut wanted: VecDeque<(String, String)> = VecDeque::new();
        for (i, step) in self.steps.iter().enumerate() {
            if let Step::Menu { menu, .. } = step {
                wanted.push_back((menu.clone(), format!("steps[{i}].menu")));
            }
        }
        for (m, menu) in self.menus.iter().enumerate() {
            for (path, action) in menu_actions(m, menu) {
                if let MenuAction::Submenu { menu } = action {
                    wanted.push_back((menu.clone(), format!("{path}.menu")));
                }
            }
        }
        let mut merged = self.clone();
        let mut origins: Vec<String> = Vec::new();
        let mut added: BTreeSet<String> = BTreeSet::new();
        while let Some((id, origin)) = wanted.pop_front() {
            if local.contains(id.as_str()) || added.contains(&id) {
                continue;
            }
            let Some(stored) = known.menu(&id) else {
                continue;
            };
            if merged.menus.len() >= MAX_MENUS {
                return Err(err(
                    origin,
                    format!("more than {MAX_MENUS} menus with the stored IVR menus it names"),
                ));
            }
            let mut menu = stored.clone();
            menu.id.clone_from(&id);
            for (_, action) in menu_actions(0, &menu) {
                if let MenuAction::Submenu { menu } = action {
                    wanted.push_back((menu.clone(), origin.clone()));
                }
            }
            merged.menus.push(menu);
            origins.push(origin);
            added.insert(id);
        }
        Ok((merged, origins))
    }

    /// The checks, on a flow whose stored menus are merged in.
    fn validate_merged<K: Known + ?Sized>(&self, known: &K) -> Res {
        check_str("id", &self.id)?;
        if self.steps.is_empty() {
            return Err(err("steps", "a flow needs at least one step (the entry)"));
        }
        if self.steps.len() > MAX_STEPS {
            return Err(err("steps", format!("more than {MAX_STEPS} steps")));
        }
        if self.menus.len() > MAX_MENUS {
            return Err(err("menus", format!("more than {MAX_MENUS} menus")));
        }
        let mut ids = Ids {
            steps: BTreeMap::new(),
            menus: BTreeMap::new(),
            any_step: false,
            scope: "in this flow",
        };
        for (i, s) in self.steps.iter().enumerate() {
            let path = format!("steps[{i}].id");
            check_str(&path, s.id())?;
            if let Some(first) = ids.steps.insert(s.id(), i) {
                return Err(err(path, format!("the same id as steps[{first}]")));
            }
        }
        for (m, menu) in self.menus.iter().enumerate() {
            let path = format!("menus[{m}].id");
            check_str(&path, &menu.id)?;
            if let Some(first) = ids.menus.insert(&menu.id, m) {
                return Err(err(path, format!("the same id as menus[{first}]")));
            }
        }
        for (i, s) in self.steps.iter().enumerate() {
            check_step(&format!("steps[{i}]"), s, &ids, known)?;
        }
        for (m, menu) in self.menus.iter().enumerate() {
            check_menu(&format!("menus[{m}]"), menu, &ids)?;
        }
        check_fallback(&self.fallback, known)?;
        let sub = submenu_edges(self, &ids);
        check_submenu_depth(self, &sub)?;
        check_graph(self, &ids, &sub)
    }
}

/// A problem found in a merged stored menu (`menus[k]` past the flow's own), told at the field
/// of the flow that brought the menu in.
fn remap(e: DialplanError, local: usize, merged: &Flow, origins: &[String]) -> DialplanError {
    let DialplanError::Invalid { path, reason } = e;
    let stored = path
        .strip_prefix("menus[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(k, tail)| Some((k.parse::<usize>().ok()?, tail)))
        .filter(|(k, _)| *k >= local)
        .and_then(|(k, tail)| Some((merged.menus.get(k)?, origins.get(k - local)?, tail)));
    match stored {
        Some((menu, origin, tail)) => {
            let tail = tail.strip_prefix('.').unwrap_or(tail);
            let reason = if tail.is_empty() {
                format!("IVR menu {:?}: {reason}", menu.id)
            } else {
                format!("IVR menu {:?}, {tail}: {reason}", menu.id)
            };
            DialplanError::invalid(origin.clone(), reason)
        }
        None => DialplanError::Invalid { path, reason },
    }
}

impl Menu {
    /// Validates a menu stored apart from any flow (the API's `/v1/ivr-menus`) under the id
    /// flows will name it by: everything [`Flow::validate`] checks of a menu, except that its
    /// `step` actions may name any step (each flow that uses the menu is checked for them, and
    /// for loops, when it is validated); its submenus must be stored menus ([`Known::menu`]).
    /// Paths are the document's own (`entries[2].action.menu`).
    pub fn validate_stored<K: Known + ?Sized>(&self, id: &str, known: &K) -> Res {
        check_str("id", id)?;
        let mut menu = self.clone();
        menu.id = id.to_owned();
        let mut menus: BTreeMap<&str, usize> = BTreeMap::new();
        menus.insert(id, 0);
        for (_, action) in menu_actions(0, self) {
            if let MenuAction::Submenu { menu } = action
                && known.menu(menu).is_some()
            {
                menus.insert(menu, 0);
            }
        }
        let ids = Ids {
            steps: BTreeMap::new(),
            menus,
            any_step: true,
            scope: "among the stored IVR menus",
        };
        check_menu("menu", &menu, &ids).map_err(|e| {
            let DialplanError::Invalid { path, reason } = e;
            let path = path.strip_prefix("menu.").unwrap_or(&path).to_owned();
            DialplanError::Invalid { path, reason }
        })
    }
}

fn check_step<K: Known + ?Sized>(p: &str, step: &Step, ids: &Ids, known: &K) -> Res {
    match step {
        Step::Schedule {
            schedule,
            open,
            closed,
            ..
        } => {
            let path = format!("{p}.schedule");
            check_str(&path, schedule)?;
            if !known.schedule(schedule) {
                return Err(err(path, format!("no schedule {schedule:?}")));
            }
            ids.step(&format!("{p}.open"), open)?;
            ids.step(&format!("{p}.closed"), closed)
        }
        Step::Menu { menu, .. } => ids.menu(&format!("{p}.menu"), menu),
        Step::Set { vars, next, .. } => {
            if vars.is_empty() {
                return Err(err(format!("{p}.vars"), "nothing to set"));
            }
            if vars.len() > MAX_VARS_PER_SET {
                return Err(err(
                    format!("{p}.vars"),
                    format!("more than {MAX_VARS_PER_SET} variables"),
                ));
            }
            for (j, a) in vars.iter().enumerate() {
                check_assignment(&format!("{p}.vars[{j}]"), a)?;
            }
            ids.step(&format!("{p}.next"), next)
        }
        Step::Queue {
            queue,
            on_no_agent,
            on_max_wait,
            ..
        } => {
            let path = format!("{p}.queue");
            check_str(&path, queue)?;
            if !known.queue(queue) {
                return Err(err(path, format!("no queue {queue:?}")));
            }
            if let Some(s) = on_no_agent {
                ids.step(&format!("{p}.on_no_agent"), s)?;
            }
            if let Some(s) = on_max_wait {
                ids.step(&format!("{p}.on_max_wait"), s)?;
            }
            Ok(())
        }
        Step::Agent { agent, .. } => {
            let path = format!("{p}.agent");
            check_str(&path, agent)?;
            if known.agent(agent) {
                Ok(())
            } else {
                Err(err(path, format!("no agent {agent:?}")))
            }
        }
        Step::Voicemail { mailbox, .. } => check_mailbox(&format!("{p}.mailbox"), mailbox, known),
        Step::Transfer { number, .. } => check_number(&format!("{p}.number"), number),
        Step::PlayHangup { prompt, .. } => check_prompt(&format!("{p}.prompt"), prompt),
        Step::Goto { step, .. } => ids.step(&format!("{p}.step"), step),
    }
}

fn check_mailbox<K: Known + ?Sized>(path: &str, mailbox: &VoicemailBox, known: &K) -> Res {
    let (VoicemailBox::Queue(owner) | VoicemailBox::Agent(owner)) = mailbox;
    check_str(path, owner)?;
    if known.voicemail_box(mailbox) {
        Ok(())
    } else {
        Err(err(path, format!("no voicemail box {mailbox:?}")))
    }
}

fn check_number(path: &str, number: &str) -> Res {
    check_str(path, number)?;
    match normalise_number(number) {
        Some(_) => Ok(()),
        None => Err(err(
            path,
            "not a number: digits, * and # with an optional leading +",
        )),
    }
}

fn check_fallback<K: Known + ?Sized>(fallback: &Fallback, known: &K) -> Res {
    match fallback {
        Fallback::Queue(q) => {
            check_str("fallback.queue", q)?;
            if !known.queue(q) {
                return Err(err("fallback.queue", format!("no queue {q:?}")));
            }
            Ok(())
        }
        Fallback::Agent(a) => {
            check_str("fallback.agent", a)?;
            if !known.agent(a) {
                return Err(err("fallback.agent", format!("no agent {a:?}")));
            }
            Ok(())
        }
        Fallback::Voicemail(b) => check_mailbox("fallback.voicemail", b, known),
        Fallback::Transfer(n) => check_number("fallback.transfer", n),
        Fallback::PlayHangup(p) => check_prompt("fallback.play_hangup", p),
    }
}

fn check_value(path: &str, value: &Value, parse: impl Fn(&str) -> Result<(), String>) -> Res {
    match value {
        Value::Literal(s) => {
            check_str(path, s)?;
            parse(s).map_err(|r| err(path, r))
        }
        Value::CallerInput | Value::CallerId => Ok(()),
    }
}

fn any_text(_: &str) -> Result<(), String> {
    Ok(())
}

/// Skill levels are 1..=10 (DESIGN.md §4).
pub(crate) fn parse_level(s: &str) -> Result<u8, String> {
    match s.parse::<u8>() {
        Ok(l @ 1..=10) => Ok(l),
        _ => Err(format!("{s:?} is not a skill level 1..=10")),
    }
}

pub(crate) fn parse_priority(s: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .map_err(|_| format!("{s:?} is not a priority (a whole number)"))
}

fn check_assignment(p: &str, a: &Assignment) -> Res {
    match a {
        Assignment::Skill { skill, level } => {
            check_str(&format!("{p}.skill"), skill)?;
            check_value(&format!("{p}.level"), level, |s| parse_level(s).map(drop))
        }
        Assignment::Priority { value } => check_value(&format!("{p}.value"), value, |s| {
            parse_priority(s).map(drop)
        }),
        Assignment::Language { value } | Assignment::AccountTier { value } => {
            check_value(&format!("{p}.value"), value, any_text)
        }
        Assignment::Custom { name, value } => {
            let path = format!("{p}.name");
            check_str(&path, name)?;
            // Names become channel variables and CDR keys: keep them plain.
            if !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(err(path, "use a-z, 0-9 and _"));
            }
            check_value(&format!("{p}.value"), value, any_text)
        }
    }
}

fn check_action(path: &str, action: &MenuAction, this_menu: &str, ids: &Ids, exit: bool) -> Res {
    match action {
        MenuAction::Step { step } => ids.step(&format!("{path}.step"), step),
        MenuAction::Submenu { menu } => {
            ids.menu(&format!("{path}.menu"), menu)?;
            if menu == this_menu {
                return Err(err(
                    format!("{path}.menu"),
                    "a menu cannot be its own submenu; use repeat",
                ));
            }
            Ok(())
        }
        MenuAction::Repeat if exit => Err(err(
            path,
            "repeat cannot end a menu: it would ask again forever",
        )),
        MenuAction::Back | MenuAction::Top | MenuAction::Repeat => Ok(()),
    }
}

fn check_menu(p: &str, menu: &Menu, ids: &Ids) -> Res {
    check_prompt(&format!("{p}.greet_long"), &menu.greet_long)?;
    for (name, v) in [
        ("greet_short", &menu.greet_short),
        ("invalid_sound", &menu.invalid_sound),
        ("exit_sound", &menu.exit_sound),
    ] {
        if let Some(s) = v {
            check_prompt(&format!("{p}.{name}"), s)?;
        }
    }
    for (name, d) in [
        ("timeout_ms", menu.timeout),
        ("inter_digit_timeout_ms", menu.inter_digit_timeout),
    ] {
        if d.is_zero() || d > MAX_TIMEOUT {
            return Err(err(
                format!("{p}.{name}"),
                format!("must be between 1 ms and {} ms", MAX_TIMEOUT.as_millis()),
            ));
        }
    }
    for (name, n) in [
        ("max_failures", menu.max_failures),
        ("max_timeouts", menu.max_timeouts),
    ] {
        if n == 0 || n > MAX_TRIES {
            return Err(err(
                format!("{p}.{name}"),
                format!("must be 1..={MAX_TRIES}"),
            ));
        }
    }
    if menu.terminators.chars().count() > 4
        || !menu
            .terminators
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
    {
        return Err(err(
            format!("{p}.terminators"),
            "at most 4 keys among 0-9, * and #",
        ));
    }
    if let Some(len) = menu.digit_len
        && (len.min == 0 || len.min > len.max || len.max > MAX_DIGITS)
    {
        return Err(err(
            format!("{p}.digit_len"),
            format!("needs 1 <= min <= max <= {MAX_DIGITS}"),
        ));
    }
    if menu.entries.is_empty() {
        return Err(err(
            format!("{p}.entries"),
            "a menu needs at least one entry",
        ));
    }
    if menu.entries.len() > MAX_ENTRIES_PER_MENU {
        return Err(err(
            format!("{p}.entries"),
            format!("more than {MAX_ENTRIES_PER_MENU} entries"),
        ));
    }
    let mut exact: BTreeMap<&str, usize> = BTreeMap::new();
    for (e, entry) in menu.entries.iter().enumerate() {
        let kp = format!("{p}.entries[{e}].keys");
        pattern::check(&entry.keys, &menu.terminators).map_err(|r| err(&kp, r))?;
        if let Keys::Exact(k) = &entry.keys
            && let Some(first) = exact.insert(k, e)
        {
            return Err(err(kp, format!("the same keys as entries[{first}]")));
        }
        if let Some(len) = menu.digit_len {
            let (lo, hi) = pattern::lengths(&entry.keys);
            if lo < len.min || hi > len.max {
                return Err(err(
                    kp,
                    format!(
                        "takes {lo}..={hi} digits, outside digit_len {}..={}",
                        len.min, len.max
                    ),
                ));
            }
        }
        check_action(
            &format!("{p}.entries[{e}].action"),
            &entry.action,
            &menu.id,
            ids,
            false,
        )?;
    }
    check_action(
        &format!("{p}.on_max_failures"),
        &menu.on_max_failures,
        &menu.id,
        ids,
        true,
    )?;
    check_action(
        &format!("{p}.on_max_timeouts"),
        &menu.on_max_timeouts,
        &menu.id,
        ids,
        true,
    )
}

/// Submenu edges per menu: (child menu index, path of the action naming it).
fn submenu_edges(flow: &Flow, ids: &Ids) -> Vec<Vec<(usize, String)>> {
    flow.menus
        .iter()
        .enumerate()
        .map(|(m, menu)| {
            menu_actions(m, menu)
                .filter_map(|(path, a)| match a {
                    MenuAction::Submenu { menu } => {
                        ids.menus.get(menu.as_str()).map(|&c| (c, path))
                    }
                    _ => None,
                })
                .collect()
        })
        .collect()
}

fn menu_actions(m: usize, menu: &Menu) -> impl Iterator<Item = (String, &MenuAction)> {
    menu.entries
        .iter()
        .enumerate()
        .map(move |(e, entry)| (format!("menus[{m}].entries[{e}].action"), &entry.action))
        .chain([
            (format!("menus[{m}].on_max_failures"), &menu.on_max_failures),
            (format!("menus[{m}].on_max_timeouts"), &menu.on_max_timeouts),
        ])
}

/// Refuses submenu cycles (the stack would grow without end) and nesting deeper than
/// [`MAX_MENU_DEPTH`]. Iterative, so a hostile document cannot overflow the stack.
fn check_submenu_depth(flow: &Flow, sub: &[Vec<(usize, String)>]) -> Res {
    let n = flow.menus.len();
    // depth[m]: the longest chain of menus starting at m (m itself counts 1).
    let mut depth = vec![0usize; n];
    let mut state = vec![0u8; n]; // 0 new, 1 on the DFS path, 2 done
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = 1;
        while let Some(&mut (m, ref mut next)) = stack.last_mut() {
            if let Some((child, path)) = sub[m].get(*next) {
                *next += 1;
                match state[*child] {
                    0 => {
                        state[*child] = 1;
                        stack.push((*child, 0));
                    }
                    1 => {
                        return Err(err(
                            format!("{path}.menu"),
                            "submenus form a cycle; use back or top to return",
                        ));
                    }
                    _ => {}
                }
            } else {
                depth[m] = 1 + sub[m].iter().map(|(c, _)| depth[*c]).max().unwrap_or(0);
                if depth[m] > MAX_MENU_DEPTH {
                    return Err(err(
                        format!("menus[{m}]"),
                        format!("submenus nest deeper than {MAX_MENU_DEPTH}"),
                    ));
                }
                state[m] = 2;
                stack.pop();
            }
        }
    }
    Ok(())
}

/// Reachability from the entry, and a terminal reachable from every reachable node.
fn check_graph(flow: &Flow, ids: &Ids, sub: &[Vec<(usize, String)>]) -> Res {
    let s = flow.steps.len();
    let n = s + flow.menus.len();
    let step_node = |id: &str| ids.steps.get(id).copied();
    let menu_node = |id: &str| ids.menus.get(id).map(|m| s + m);
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, step) in flow.steps.iter().enumerate() {
        let targets: Vec<Option<usize>> = match step {
            Step::Schedule { open, closed, .. } => vec![step_node(open), step_node(closed)],
            Step::Menu { menu, .. } => vec![menu_node(menu)],
            Step::Set { next, .. } => vec![step_node(next)],
            Step::Goto { step, .. } => vec![step_node(step)],
            Step::Queue {
                on_no_agent,
                on_max_wait,
                ..
            } => vec![
                on_no_agent.as_deref().and_then(step_node),
                on_max_wait.as_deref().and_then(step_node),
            ],
            _ => vec![],
        };
        edges[i].extend(targets.into_iter().flatten());
    }
    // Menus that can stack menu m (for back and top): reverse submenu closure.
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); flow.menus.len()];
    for (m, children) in sub.iter().enumerate() {
        for (c, _) in children {
            parents[*c].push(m);
        }
    }
    for (m, menu) in flow.menus.iter().enumerate() {
        let mut ancestors = vec![false; flow.menus.len()];
        let mut queue: VecDeque<usize> = parents[m].iter().copied().collect();
        while let Some(a) = queue.pop_front() {
            if !std::mem::replace(&mut ancestors[a], true) {
                queue.extend(parents[a].iter().copied());
            }
        }
        for (_, action) in menu_actions(m, menu) {
            match action {
                MenuAction::Step { step } => edges[s + m].extend(step_node(step)),
                MenuAction::Submenu { menu } => edges[s + m].extend(menu_node(menu)),
                MenuAction::Back | MenuAction::Top => edges[s + m].extend(
                    ancestors
                        .iter()
                        .enumerate()
                        .filter(|(_, is)| **is)
                        .map(|(a, _)| s + a),
                ),
                MenuAction::Repeat => {}
            }
        }
    }
    let node_path = |k: usize| {
        if k < s {
            format!("steps[{k}]")
        } else {
            format!("menus[{}]", k - s)
        }
    };
    // Forward from the entry.
    let mut reachable = vec![false; n];
    let mut queue = VecDeque::from([0usize]);
    while let Some(k) = queue.pop_front() {
        if !std::mem::replace(&mut reachable[k], true) {
            queue.extend(edges[k].iter().copied());
        }
    }
    if let Some(k) = (0..n).find(|&k| !reachable[k]) {
        return Err(err(
            node_path(k),
            "unreachable: no step or menu of the flow leads here",
        ));
    }
    // Backward from the terminals.
    let mut reverse: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, out) in edges.iter().enumerate() {
        for &t in out {
            reverse[t].push(k);
        }
    }
    let mut exits = vec![false; n];
    let mut queue: VecDeque<usize> = (0..s).filter(|&i| flow.steps[i].is_terminal()).collect();
    while let Some(k) = queue.pop_front() {
        if !std::mem::replace(&mut exits[k], true) {
            queue.extend(reverse[k].iter().copied());
        }
    }
    if let Some(k) = (0..n).find(|&k| !exits[k]) {
        return Err(err(
            node_path(k),
            "a loop with no exit: no queue, agent, voicemail, transfer or play_hangup can be reached from here",
        ));
    }
    check_queue_exits(flow, &edges, step_node)
}

/// A queue's exits lead to a message, a voicemail box or a transfer, never into a queue or
/// an agent again: the engine keeps one call per caller leg, and the call that left the queue
/// is over (a second one on the same leg would collide with its record). Overflow from one
/// queue to another is the queue's own exit (`on_timeout`, `on_no_agents`), which keeps the
/// call.
fn check_queue_exits<'f>(
    flow: &'f Flow,
    edges: &[Vec<usize>],
    step_node: impl Fn(&'f str) -> Option<usize>,
) -> Res {
    let s = flow.steps.len();
    for (i, step) in flow.steps.iter().enumerate() {
        let Step::Queue {
            on_no_agent,
            on_max_wait,
            ..
        } = step
        else {
            continue;
        };
        for (field, next) in [("on_no_agent", on_no_agent), ("on_max_wait", on_max_wait)] {
            let Some(start) = next.as_deref().and_then(&step_node) else {
                continue;
            };
            let mut seen = vec![false; edges.len()];
            let mut queue = VecDeque::from([start]);
            while let Some(k) = queue.pop_front() {
                if std::mem::replace(&mut seen[k], true) {
                    continue;
                }
                if k < s && matches!(flow.steps[k], Step::Queue { .. } | Step::Agent { .. }) {
                    return Err(err(
                        format!("steps[{i}].{field}"),
                        format!(
                            "leads to a queue or an agent again (steps[{k}]); a queue's exit leads \
                             to voicemail, a transfer or a message (overflow to another queue \
                             is the queue's own on_timeout / on_no_agents)"
                        ),
                    ));
                }
                queue.extend(edges[k].iter().copied());
            }
        }
    }
    Ok(())
}
