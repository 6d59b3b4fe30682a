//! The regular expressions `play_and_get_digits` validates input with, as FreeSWITCH's
//! `switch_regex_match` runs them: PCRE, unanchored (a match anywhere in the input counts;
//! `^...$` makes it the whole input), `/expr/i` for caseless. This crate has no regex engine
//! (and the sim may not add a dependency), so this is the subset IVR patterns use: literals,
//! `.`, `\d \D \w \W \s \S`, escapes, classes `[0-9*#]` / `[^...]`, groups `(...)` / `(?:...)`
//! with `|`, quantifiers `* + ? {n} {n,} {n,m}` (lazy and possessive suffixes read and ignored:
//! they do not change whether a match exists, save rare possessive cases), anchors `^ $`.
//! A pattern it cannot read matches nothing, as a PCRE compile error does in FreeSWITCH.
//!
//! Bounds: patterns of at most [`MAX_PATTERN`] characters, repeat counts of at most
//! [`MAX_REPEAT`], and at most [`MAX_STEPS`] matcher steps per test (past it: no match, logged),
//! so a pathological pattern costs a bounded amount of time.

use std::cell::Cell;

/// Longest pattern read; longer ones match nothing.
const MAX_PATTERN: usize = 512;
/// Largest `{n,m}` bound.
const MAX_REPEAT: u32 = 1000;
/// Backtracking steps one test may take.
const MAX_STEPS: u64 = 200_000;

#[derive(Debug)]
enum Node {
    Char(char),
    Any,
    /// Inclusive ranges; `true`: negated.
    Class(Vec<(char, char)>, bool),
    Start,
    End,
    Group(Vec<Vec<Node>>),
    Repeat(Box<Node>, u32, Option<u32>),
}

/// Whether `pattern` matches somewhere in `text` (FreeSWITCH's `switch_regex_match`).
pub(super) fn regex_match(text: &str, pattern: &str) -> bool {
    let (expr, caseless) = match pattern.strip_prefix('/') {
        Some(rest) => match rest.rsplit_once('/') {
            Some((e, opts)) => (e, opts.contains('i')),
            // FreeSWITCH: "missing ending '/' delimeter", no match.
            None => return false,
        },
        None => (pattern, false),
    };
    if expr.chars().count() > MAX_PATTERN {
        return false;
    }
    let Some(alts) = Parser::new(expr).parse() else {
        return false;
    };
    let fold = |s: &str| -> Vec<char> {
        if caseless {
            s.chars().map(|c| c.to_ascii_lowercase()).collect()
        } else {
            s.chars().collect()
        }
    };
    let m = Matcher {
        text: fold(text),
        caseless,
        steps: Cell::new(0),
    };
    let root = Node::Group(alts);
    let found = (0..=m.text.len()).any(|start| m.one(&root, start, &mut |_| true));
    if m.steps.get() > MAX_STEPS {
        tracing::warn!(
            pattern,
            "fake switch: regex gave up after {MAX_STEPS} steps"
        );
    }
    found
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn new(expr: &str) -> Self {
        Parser {
            chars: expr.chars().collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    fn parse(mut self) -> Option<Vec<Vec<Node>>> {
        let alts = self.alternation(0)?;
        (self.pos >= self.chars.len()).then_some(alts)
    }

    fn alternation(&mut self, depth: usize) -> Option<Vec<Vec<Node>>> {
        // Nesting deeper than this is no IVR pattern; refusing it keeps recursion bounded.
        if depth > 32 {
            return None;
        }
        let mut alts = vec![self.sequence(depth)?];
        while self.peek() == Some('|') {
            self.pos += 1;
            alts.push(self.sequence(depth)?);
        }
        Some(alts)
    }

    fn sequence(&mut self, depth: usize) -> Option<Vec<Node>> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom(depth)?;
            seq.push(self.quantified(atom)?);
        }
        Some(seq)
    }

    fn atom(&mut self, depth: usize) -> Option<Node> {
        let c = self.next()?;
        Some(match c {
            '(' => {
                if self.chars.get(self.pos..self.pos + 2) == Some(&['?', ':'][..]) {
                    self.pos += 2;
                }
                let alts = self.alternation(depth + 1)?;
                if self.next()? != ')' {
                    return None;
                }
                Node::Group(alts)
            }
            '[' => self.class()?,
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '\\' => self.escape()?,
            // "nothing to repeat": a compile error.
            '*' | '+' | '?' => return None,
            c => Node::Char(c),
        })
    }

    fn escape(&mut self) -> Option<Node> {
        let digit = vec![('0', '9')];
        let word = vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')];
        let space = vec![(' ', ' '), ('\t', '\r')];
        Some(match self.next()? {
            'd' => Node::Class(digit, false),
            'D' => Node::Class(digit, true),
            'w' => Node::Class(word, false),
            'W' => Node::Class(word, true),
            's' => Node::Class(space, false),
            'S' => Node::Class(space, true),
            't' => Node::Char('\t'),
            'n' => Node::Char('\n'),
            c => Node::Char(c),
        })
    }

    fn class(&mut self) -> Option<Node> {
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self.next()?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                match self.escape()? {
                    Node::Char(x) => x,
                    Node::Class(rs, false) => {
                        ranges.extend(rs);
                        continue;
                    }
                    // A negated shorthand inside a class: beyond this subset.
                    _ => return None,
                }
            } else {
                c
            };
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|n| *n != ']') {
                self.pos += 1;
                let mut hi = self.next()?;
                if hi == '\\' {
                    hi = self.next()?;
                }
                if hi < lo {
                    return None;
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Some(Node::Class(ranges, negated))
    }

    fn quantified(&mut self, atom: Node) -> Option<Node> {
        let (min, max) = match self.peek() {
            Some('*') => {
                self.pos += 1;
                (0, None)
            }
            Some('+') => {
                self.pos += 1;
                (1, None)
            }
            Some('?') => {
                self.pos += 1;
                (0, Some(1))
            }
            Some('{') => match self.braces() {
                Some(b) => b,
                // Not a quantifier: PCRE reads `{` as a literal.
                None => return Some(atom),
            },
            _ => return Some(atom),
        };
        if matches!(atom, Node::Start | Node::End) {
            return Some(atom);
        }
        // Lazy or possessive: the same answer to "is there a match".
        if matches!(self.peek(), Some('?') | Some('+')) {
            self.pos += 1;
        }
        if matches!(self.peek(), Some('*') | Some('+') | Some('?')) {
            return None;
        }
        Some(Node::Repeat(Box::new(atom), min, max))
    }

    /// `{n}`, `{n,}`, `{n,m}` at the cursor; consumed only when it is one.
    fn braces(&mut self) -> Option<(u32, Option<u32>)> {
        let rest: String = self.chars[self.pos..].iter().collect();
        let end = rest.find('}')?;
        let inner = &rest[1..end];
        let (lo, hi) = match inner.split_once(',') {
            Some((lo, "")) => (lo.parse::<u32>().ok()?, None),
            Some((lo, hi)) => (lo.parse::<u32>().ok()?, Some(hi.parse::<u32>().ok()?)),
            None => {
                let n = inner.parse::<u32>().ok()?;
                (n, Some(n))
            }
        };
        if lo > MAX_REPEAT || hi.is_some_and(|h| h > MAX_REPEAT || h < lo) {
            return None;
        }
        self.pos += rest[..=end].chars().count();
        Some((lo, hi))
    }
}

struct Matcher {
    text: Vec<char>,
    caseless: bool,
    steps: Cell<u64>,
}

impl Matcher {
    fn seq(&self, nodes: &[Node], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        match nodes.split_first() {
            None => k(pos),
            Some((n, rest)) => self.one(n, pos, &mut |p| self.seq(rest, p, k)),
        }
    }

    fn one(&self, node: &Node, pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        if steps > MAX_STEPS {
            return false;
        }
        let here = self.text.get(pos).copied();
        match node {
            Node::Char(c) => {
                let c = if self.caseless {
                    c.to_ascii_lowercase()
                } else {
                    *c
                };
                here == Some(c) && k(pos + 1)
            }
            Node::Any => here.is_some_and(|c| c != '\n') && k(pos + 1),
            Node::Class(ranges, negated) => {
                let Some(c) = here else { return false };
                let hit = ranges.iter().any(|(lo, hi)| {
                    (*lo..=*hi).contains(&c)
                        || (self.caseless && (*lo..=*hi).contains(&c.to_ascii_uppercase()))
                });
                hit != *negated && k(pos + 1)
            }
            Node::Start => pos == 0 && k(pos),
            Node::End => pos == self.text.len() && k(pos),
            Node::Group(alts) => alts.iter().any(|a| self.seq(a, pos, k)),
            Node::Repeat(inner, min, max) => self.repeat(inner, *min, *max, 0, pos, k),
        }
    }

    /// Greedy: one more round first, then what follows.
    fn repeat(
        &self,
        inner: &Node,
        min: u32,
        max: Option<u32>,
        count: u32,
        pos: usize,
        k: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        if max.is_none_or(|m| count < m)
            && self.one(inner, pos, &mut |p| {
                // An empty round past the minimum would loop forever.
                (p != pos || count < min) && self.repeat(inner, min, max, count + 1, p, k)
            })
        {
            return true;
        }
        count >= min && k(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::regex_match;

    #[test]
    fn matches_like_pcre_unanchored_with_the_usual_ivr_patterns() {
        for (text, re, want) in [
            ("12", r"\d+", true),
            ("*", r"\d+", false),
            ("*1", r"\d+", true),
            ("*1", r"^\d+$", false),
            ("1234", r"^\d{4}$", true),
            ("123", r"^\d{4}$", false),
            ("12345", r"^\d{4}$", false),
            ("2", "^[1-3]$", true),
            ("4", "^[1-3]$", false),
            ("3", "^(1|2|3)$", true),
            ("9", "^(?:1|2|3)$", false),
            ("*", r"^[0-9*#]$", true),
            ("A", "/^a$/i", true),
            ("A", "^a$", false),
            ("123", "^1.3$", true),
            ("13", "^12?3$", true),
            ("1223", "^12*3$", true),
            ("5", "[^0-4]", true),
            ("12", "^\\d{1,}$", true),
            ("x", "^x{2,3}$", false),
            ("xxx", "^x{2,3}$", true),
        ] {
            assert_eq!(regex_match(text, re), want, "{text:?} ~ {re:?}");
        }
    }

    #[test]
    fn broken_or_pathological_patterns_match_nothing_and_never_panic() {
        for re in ["(", "[", "*1", "/abc", "a**", "[9-0]", r"\", "(a|b"] {
            assert!(!regex_match("a1", re), "{re:?}");
        }
        // Exponential backtracking is cut off by the step budget.
        let text = "a".repeat(40);
        assert!(!regex_match(&text, "^(a+)+b$"));
        let deep = "(".repeat(100) + &")".repeat(100);
        assert!(!regex_match("", &deep));
    }
}
