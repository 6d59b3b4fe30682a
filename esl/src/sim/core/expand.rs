//! Variable expansion as FreeSWITCH does it (`switch_channel_expand_variables_check`): `${var}`
//! is a channel variable, `${name args}` and `${name(args)}` run API `name` with the expanded
//! `args` and stand for its output. The `eval` application and API use it; it is how an
//! originate's `'&eval(${uuid_bridge <caller> <leg>})'` bridges its leg from the leg's own
//! thread the moment the originate completes.

use super::*;

/// FreeSWITCH gives up past this depth of nested expansions and leaves the text as it is.
const MAX_DEPTH: u32 = 100;

/// What an API call expands to with `api-expansion` off.
const DENIED: &str = "<API Execute Permission Denied>";

impl Switch {
    /// Expands `text` for channel `ch` (its variables), or for no channel (API `eval`).
    pub(super) fn expand(
        &mut self,
        now: Instant,
        ch: Option<ChanId>,
        text: &str,
        depth: u32,
    ) -> String {
        if depth > MAX_DEPTH || !text.contains("${") {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let body = &rest[i + 2..];
            // The matching `}`, counting nested braces; an unterminated one runs to the end.
            let mut level = 1usize;
            let end = body.char_indices().find_map(|(j, c)| {
                match c {
                    '{' => level += 1,
                    '}' => {
                        level -= 1;
                        if level == 0 {
                            return Some(j);
                        }
                    }
                    _ => {}
                }
                None
            });
            let (inner, after) = match end {
                Some(j) => (&body[..j], &body[j + 1..]),
                None => (body, ""),
            };
            rest = after;
            out.push_str(&self.expand_one(now, ch, inner, depth));
        }
        out.push_str(rest);
        out
    }

    /// One `${...}`'s inside: an API call (a blank or `(` after the name) or a variable.
    fn expand_one(&mut self, now: Instant, ch: Option<ChanId>, inner: &str, depth: u32) -> String {
        let Some(k) = inner.find([' ', '(']) else {
            let name = self.expand(now, ch, inner, depth + 1);
            return ch
                .and_then(|c| self.chans.get(&c))
                .and_then(|c| c.var(&name).map(str::to_owned))
                .unwrap_or_default();
        };
        let name = inner[..k].trim_end();
        let args = if inner[k..].starts_with('(') {
            paren_args(&inner[k + 1..])
        } else {
            &inner[k + 1..]
        };
        if !self.cfg.switch.api_expansion {
            return DENIED.to_owned();
        }
        let name = self.expand(now, ch, name, depth + 1);
        let args = self.expand(now, ch, args, depth + 1);
        // An API that answers later (an `originate` inside an expansion) stands for nothing.
        self.run_api(now, &name, &args, Waiter::None)
            .unwrap_or_default()
    }
}

/// `a(b)c) rest` -> `a(b)c`: up to the `)` that closes the call's own `(`.
fn paren_args(s: &str) -> &str {
    let mut level = 1usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => level += 1,
            ')' => {
                level -= 1;
                if level == 0 {
                    return &s[..i];
                }
            }
            _ => {}
        }
    }
    s
}
