//! The keys a menu entry answers to, checked three ways from one parse: is the entry valid
//! (validation), do these digits match (the runner), and which PCRE FreeSWITCH's
//! `play_and_get_digits` should test input against (so the switch, not the caller's patience,
//! rejects `*` for a menu that takes `1` to `3`).
//!
//! ```text
//!   Exact("2")          -> 2
//!   Pattern("2XXX")     -> 2\d\d\d          X any digit, Z 1-9, N 2-9, [1-5] a class
//!   Length{6, 10}       -> \d{6,10}
//!   menu                -> ^(?:2|2\d\d\d|\d{6,10})$
//! ```
//!
//! Parsing never panics: an unknown character, an open class or a reversed range is an `Err`
//! with a reason for the validator to put behind the field's path.

use super::MAX_DIGITS;
use super::model::Keys;

/// One position of a pattern: the set of keys it accepts (bit i: digit i; 10: `*`; 11: `#`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Atom(u16);

const STAR: u16 = 1 << 10;
const POUND: u16 = 1 << 11;
const ALL_DIGITS: u16 = (1 << 10) - 1;

fn key_bit(c: char) -> Option<u16> {
    match c {
        '0'..='9' => Some(1 << (c as u16 - '0' as u16)),
        '*' => Some(STAR),
        '#' => Some(POUND),
        _ => None,
    }
}

fn parse_pattern(pattern: &str) -> Result<Vec<Atom>, String> {
    let mut atoms = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let atom = match c {
            'X' => Atom(ALL_DIGITS),
            'Z' => Atom(ALL_DIGITS & !1),
            'N' => Atom(ALL_DIGITS & !0b11),
            '[' => {
                let mut set = 0u16;
                let mut prev: Option<char> = None;
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        ']' => {
                            closed = true;
                            break;
                        }
                        '0'..='9' => {
                            set |= key_bit(c).unwrap_or(0);
                            prev = Some(c);
                        }
                        '-' => {
                            let (Some(lo), Some(hi)) = (prev, chars.next()) else {
                                return Err("a range in [...] needs a digit on each side".into());
                            };
                            if !hi.is_ascii_digit() || hi < lo {
                                return Err(format!("bad range {lo}-{hi} in [...]"));
                            }
                            for d in lo..=hi {
                                set |= key_bit(d).unwrap_or(0);
                            }
                            prev = None;
                        }
                        other => return Err(format!("{other:?} is not allowed in [...]")),
                    }
                }
                if !closed {
                    return Err("[ without ]".into());
                }
                if set == 0 {
                    return Err("an empty class []".into());
                }
                Atom(set)
            }
            other => match key_bit(other) {
                Some(bit) => Atom(bit),
                None => {
                    return Err(format!(
                        "{other:?} is not a key or pattern letter (X, Z, N, [..])"
                    ));
                }
            },
        };
        atoms.push(atom);
    }
    Ok(atoms)
}

/// Checks an entry's keys; `terminators` end input early, so no entry may need one as a key.
pub fn check(keys: &Keys, terminators: &str) -> Result<(), String> {
    let term_bits = terminators
        .chars()
        .filter_map(key_bit)
        .fold(0, |a, b| a | b);
    let atoms = match keys {
        Keys::Exact(s) => {
            if s.is_empty() {
                return Err("empty keys".into());
            }
            let mut atoms = Vec::new();
            for c in s.chars() {
                match key_bit(c) {
                    Some(b) => atoms.push(Atom(b)),
                    None => return Err(format!("{c:?} is not a telephone key")),
                }
            }
            atoms
        }
        Keys::Pattern(p) => {
            let atoms = parse_pattern(p)?;
            if atoms.is_empty() {
                return Err("empty pattern".into());
            }
            atoms
        }
        Keys::Length { min, max } => {
            if *min == 0 || min > max || *max > MAX_DIGITS {
                return Err(format!(
                    "length needs 1 <= min <= max <= {MAX_DIGITS}, got {min}..{max}"
                ));
            }
            return Ok(());
        }
    };
    if atoms.len() > usize::from(MAX_DIGITS) {
        return Err(format!("more than {MAX_DIGITS} keys"));
    }
    // A key that is also a terminator can never reach the digits.
    if atoms.iter().any(|a| a.0 & term_bits == a.0) {
        return Err(format!(
            "a position accepts only terminator keys ({terminators}), which end the input"
        ));
    }
    Ok(())
}

/// Fewest and most digits an entry takes (its keys assumed valid; 0 if not).
pub fn lengths(keys: &Keys) -> (u8, u8) {
    match keys {
        Keys::Exact(s) => {
            let n = u8::try_from(s.chars().count()).unwrap_or(u8::MAX);
            (n, n)
        }
        Keys::Pattern(p) => {
            let n = parse_pattern(p).map_or(0, |a| u8::try_from(a.len()).unwrap_or(u8::MAX));
            (n, n)
        }
        Keys::Length { min, max } => (*min, *max),
    }
}

/// Whether `digits` (the terminator already stripped, as FreeSWITCH gives them) match.
pub fn matches(keys: &Keys, digits: &str) -> bool {
    match keys {
        Keys::Exact(s) => s == digits,
        Keys::Pattern(p) => match parse_pattern(p) {
            Ok(atoms) => {
                atoms.len() == digits.chars().count()
                    && atoms
                        .iter()
                        .zip(digits.chars())
                        .all(|(a, c)| key_bit(c).is_some_and(|b| a.0 & b != 0))
            }
            Err(_) => false,
        },
        Keys::Length { min, max } => {
            let n = digits.chars().count();
            digits.chars().all(|c| c.is_ascii_digit())
                && n >= usize::from(*min)
                && n <= usize::from(*max)
        }
    }
}

fn atom_regex(a: Atom, out: &mut String) {
    match a.0 {
        ALL_DIGITS => out.push_str("\\d"),
        STAR => out.push_str("\\*"),
        POUND => out.push('#'),
        set if set.count_ones() == 1 => {
            let d = set.trailing_zeros();
            out.push(char::from_digit(d, 10).unwrap_or('0'));
        }
        set => {
            out.push('[');
            for d in 0..12u32 {
                if set & (1 << d) != 0 {
                    match d {
                        10 => out.push_str("\\*"),
                        11 => out.push('#'),
                        _ => out.push(char::from_digit(d, 10).unwrap_or('0')),
                    }
                }
            }
            out.push(']');
        }
    }
}

/// The PCRE fragment for one entry (no anchors).
pub fn regex(keys: &Keys) -> String {
    let mut out = String::new();
    match keys {
        Keys::Exact(s) => {
            for c in s.chars() {
                if let Some(b) = key_bit(c) {
                    atom_regex(Atom(b), &mut out);
                }
            }
        }
        Keys::Pattern(p) => {
            for a in parse_pattern(p).unwrap_or_default() {
                atom_regex(a, &mut out);
            }
        }
        Keys::Length { min, max } => out.push_str(&format!("\\d{{{min},{max}}}")),
    }
    out
}

/// The anchored alternation of a menu's entries, for `play_and_get_digits`'s regex argument.
pub fn menu_regex<'a>(keys: impl IntoIterator<Item = &'a Keys>) -> String {
    let alts: Vec<String> = keys.into_iter().map(regex).collect();
    format!("^(?:{})$", alts.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_match_and_render() {
        let ext = Keys::Pattern("2XXX".into());
        assert!(check(&ext, "#").is_ok());
        assert!(matches(&ext, "2345"));
        assert!(!matches(&ext, "3345"));
        assert!(!matches(&ext, "234"));
        assert_eq!(regex(&ext), "2\\d\\d\\d");
        let class = Keys::Pattern("[1-3]N*".into());
        assert_eq!(regex(&class), "[123][23456789]\\*");
        assert!(matches(&class, "29*"));
        assert!(!matches(&class, "21*"));
        let acct = Keys::Length { min: 6, max: 10 };
        assert_eq!(
            menu_regex([&Keys::Exact("1".into()), &acct]),
            "^(?:1|\\d{6,10})$"
        );
        for bad in ["", "2x", "[", "[3-1]", "[]", "[a]", "#"] {
            assert!(check(&Keys::Pattern(bad.into()), "#").is_err(), "{bad}");
        }
        assert!(check(&Keys::Exact("#".into()), "#").is_err());
        assert!(check(&Keys::Length { min: 0, max: 3 }, "#").is_err());
        assert!(check(&Keys::Length { min: 4, max: 3 }, "#").is_err());
    }
}
