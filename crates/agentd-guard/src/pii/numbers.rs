//! Numbers that validate: payment cards (Luhn and a known IIN range),
//! IBANs (length per country and mod-97), US social security numbers
//! (outside the never-issued ranges) and phone numbers (parsed and
//! validated by `phonenumber`).

use super::scan::{Pattern, after, before, compile, matches, standalone};
use phonenumber::country::Id;
use std::sync::LazyLock;

static CARD: Pattern = LazyLock::new(|| compile(r"\d(?:[ -]?\d){12,18}"));

/// Payment cards: 13–19 digits, optionally grouped by spaces or dashes
/// (one kind of separator), passing Luhn, in a known issuer range.
pub(super) fn cards(text: &str) -> Vec<(usize, usize)> {
    matches(&CARD, text, |s, e| {
        let candidate = &text[s..e];
        let glued = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
        let one_separator = !(candidate.contains(' ') && candidate.contains('-'));
        let digits: Vec<u8> = candidate
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
            .collect();
        (standalone(text, s, e, glued)
            && before(text, s) != Some('.')
            && (after(text, e) != Some('.')
                || !text[e..].chars().nth(1).is_some_and(|c| c.is_ascii_digit()))
            && one_separator
            && known_issuer(&digits)
            && luhn(&digits))
        .then_some((s, e))
    })
}

/// The Luhn checksum over decimal digits.
pub(super) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Issuer ranges and lengths of the major networks (Visa, Mastercard,
/// Amex, Discover, JCB, Diners, UnionPay, Maestro).
fn known_issuer(digits: &[u8]) -> bool {
    let prefix = |n: usize| {
        digits
            .iter()
            .take(n)
            .fold(0u32, |a, &d| a * 10 + u32::from(d))
    };
    let len = digits.len();
    let (p1, p2, p3, p4, p6) = (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6));
    match p1 {
        4 => matches!(len, 13 | 16 | 19),
        2 => (2221..=2720).contains(&p4) && len == 16,
        5 => match p2 {
            51..=55 => len == 16,
            50 | 56..=59 => (12..=19).contains(&len),
            _ => false,
        },
        3 => match p2 {
            34 | 37 => len == 15,
            35 => (3528..=3589).contains(&p4) && (16..=19).contains(&len),
            36 | 38 | 39 => (14..=19).contains(&len),
            30 => (300..=305).contains(&p3) && (14..=19).contains(&len),
            _ => false,
        },
        6 => {
            (p4 == 6011
                || p2 == 65
                || (644..=649).contains(&p3)
                || (622_126..=622_925).contains(&p6))
                && (16..=19).contains(&len)
                || (p2 == 62 || p2 == 67 || p2 == 63) && (16..=19).contains(&len)
        }
        _ => false,
    }
}

static IBAN: Pattern = LazyLock::new(|| compile(r"(?-u:\b)[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}"));

/// IBAN lengths by country (the SWIFT registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// IBANs of a known country, of its length, passing mod-97. A match that
/// ran into the next word is cut to the country's length.
pub(super) fn ibans(text: &str) -> Vec<(usize, usize)> {
    matches(&IBAN, text, |s, e| {
        let candidate = &text[s..e];
        let len = IBAN_LENGTHS
            .iter()
            .find(|(cc, _)| candidate.starts_with(cc))?
            .1;
        // The byte just past the `len`-th alphanumeric character.
        let (mut n, mut end) = (0, None);
        for (i, c) in candidate.char_indices() {
            if c != ' ' {
                n += 1;
                if n == len {
                    end = Some(s + i + c.len_utf8());
                    break;
                }
            }
        }
        let end = end?;
        let glued = |c: char| c.is_ascii_alphanumeric();
        let compact: String = text[s..end].chars().filter(|&c| c != ' ').collect();
        (standalone(text, s, end, glued) && mod97(&compact)).then_some((s, end))
    })
}

/// The IBAN check: the first four characters moved to the end, letters
/// as 10–35, the number modulo 97 is 1.
pub(super) fn mod97(iban: &str) -> bool {
    let rotated = iban.chars().skip(4).chain(iban.chars().take(4));
    let mut rem: u32 = 0;
    for c in rotated {
        let Some(v) = c.to_digit(36) else {
            return false;
        };
        rem = if v < 10 {
            (rem * 10 + v) % 97
        } else {
            (rem * 100 + v) % 97
        };
    }
    rem == 1
}

static SSN: Pattern = LazyLock::new(|| compile(r"\d{3}([- ])\d{2}[- ]\d{4}"));

/// US social security numbers `AAA-GG-SSSS` (or with spaces), outside
/// the ranges never issued: area 000, 666 and 900–999, group 00,
/// serial 0000.
pub(super) fn ssns(text: &str) -> Vec<(usize, usize)> {
    matches(&SSN, text, |s, e| {
        let c = &text[s..e];
        let glued = |ch: char| ch.is_alphanumeric() || ch == '-' || ch == '_';
        let same_sep = c.as_bytes()[3] == c.as_bytes()[6];
        let (area, group, serial) = (&c[0..3], &c[4..6], &c[7..11]);
        (standalone(text, s, e, glued)
            && same_sep
            && area != "000"
            && area != "666"
            && !area.starts_with('9')
            && group != "00"
            && serial != "0000")
            .then_some((s, e))
    })
}

static PHONE: Pattern = LazyLock::new(|| compile(r"(?:\+|\()?\d[\d \-().]{5,20}\d"));

/// Phone numbers `phonenumber` says are valid: international `+`
/// numbers anywhere, and national US, UK and German formats.
pub(super) fn phones(text: &str) -> Vec<(usize, usize)> {
    matches(&PHONE, text, |s, e| {
        let glued = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '+');
        // A sentence may end right after the number; `.5` may not.
        let next_two = text[e..].chars().nth(1);
        let glued_after = after(text, e).is_some_and(|c| {
            c.is_alphanumeric()
                || c == '_'
                || (matches!(c, '.' | '-' | '/') && next_two.is_some_and(|d| d.is_ascii_digit()))
        });
        if before(text, s).is_some_and(glued) || glued_after {
            return None;
        }
        // Try the whole candidate, then without its last group (a
        // candidate can run into a following number).
        let mut end = e;
        for _ in 0..2 {
            let candidate = text[s..end].trim_end_matches([' ', '-', '.', '(']);
            if valid_phone(candidate) {
                return Some((s, s + candidate.len()));
            }
            end = s + candidate.rfind([' ', '-'])?;
        }
        None
    })
}

fn valid_phone(candidate: &str) -> bool {
    let digits: Vec<u8> = candidate.bytes().filter(u8::is_ascii_digit).collect();
    if !(7..=15).contains(&digits.len()) || !plausible_punctuation(candidate) {
        return false;
    }
    // Parsing is the expensive step (tens of microseconds), so each
    // region is tried only when the digits have its national shape.
    let parse = |region: Option<Id>| {
        phonenumber::parse(region, candidate).is_ok_and(|n| phonenumber::is_valid(&n))
    };
    if candidate.starts_with('+') {
        return parse(None);
    }
    match digits.as_slice() {
        // A trunk 0: UK numbers have 10 or 11 digits with it, German
        // ones 6 to 15.
        [b'0', ..] => {
            ((10..=11).contains(&digits.len()) && parse(Some(Id::GB))) || parse(Some(Id::DE))
        }
        // NANP: area code and exchange start with 2–9, optionally after
        // the country code 1.
        [b'1', rest @ ..] | rest if rest.len() == 10 => {
            rest[0] >= b'2' && rest[3] >= b'2' && parse(Some(Id::US))
        }
        _ => false,
    }
}

/// Rejects shapes that are other numbers: dates (`2026-11-03`), dotted
/// versions and addresses (`203.0.113.42`), unbalanced parentheses.
fn plausible_punctuation(c: &str) -> bool {
    let dots = c.matches('.').count();
    let dotted_us = dots == 2 && {
        let groups: Vec<usize> = c
            .trim_start_matches('(')
            .split(['.', ')'])
            .map(str::len)
            .collect();
        groups == [3, 3, 4] || groups == [3, 0, 3, 4]
    };
    let date = c.len() == 10 && c.as_bytes()[4] == b'-' && c.as_bytes()[7] == b'-';
    (dots == 0 || dotted_us) && !date && c.matches('(').count() == c.matches(')').count()
}

/// Compiles this module's patterns now rather than on first use.
pub(super) fn warm() {
    LazyLock::force(&CARD);
    LazyLock::force(&IBAN);
    LazyLock::force(&SSN);
    LazyLock::force(&PHONE);
    // The phone metadata database loads on first use (tens of ms).
    let _ = phonenumber::parse(None, "+14155552671");
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pii::scan::found;

    #[test]
    fn patterns_compile() {
        for p in [&CARD, &IBAN, &SSN, &PHONE] {
            assert!(p.is_some());
        }
    }

    #[test]
    fn cards_pass_luhn_and_a_known_issuer() {
        let text = "visa 4111 1111 1111 1111, amex 378282246310005, mc 5555-5555-5555-4444.";
        assert_eq!(
            found(cards, text),
            [
                "4111 1111 1111 1111",
                "378282246310005",
                "5555-5555-5555-4444"
            ]
        );
        // Luhn fails (last digit changed); unknown issuer 9; mixed
        // separators; part of a longer number.
        assert!(found(cards, "4111 1111 1111 1112").is_empty());
        assert!(!luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
        assert!(luhn(&[9, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]));
        assert!(found(cards, "9111111111111110 passes Luhn, no issuer").is_empty());
        assert!(found(cards, "4111 1111-1111 1111").is_empty());
        assert!(found(cards, "order 44111111111111111111").is_empty());
    }

    #[test]
    fn ibans_have_their_country_length_and_checksum() {
        let text = "Pay DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432 TODAY";
        assert_eq!(
            found(ibans, text),
            ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"]
        );
        // Wrong check digits; wrong length for DE; unknown country.
        assert!(found(ibans, "DE88 3704 0044 0532 0130 00").is_empty());
        assert!(found(ibans, "DE89 3704 0044 0532 0130").is_empty());
        assert!(found(ibans, "ZZ89 3704 0044 0532 0130 00").is_empty());
        assert!(mod97("FR1420041010050500013M02606"));
    }

    #[test]
    fn ssns_outside_the_invalid_ranges() {
        assert_eq!(found(ssns, "SSN 123-45-6789."), ["123-45-6789"]);
        assert_eq!(found(ssns, "ssn 078 05 1120"), ["078 05 1120"]);
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "123-00-4567",
            "123-45-0000",
            "123-45 6789",
            "1123-45-6789",
        ] {
            assert!(found(ssns, bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn phones_are_validated_by_region() {
        let text = "Call +1 415 555 2671 or (415) 555-0132, London 020 7946 0958, Berlin 030 123456789, +49 30 901820.";
        assert_eq!(
            found(phones, text),
            [
                "+1 415 555 2671",
                "(415) 555-0132",
                "020 7946 0958",
                "030 123456789",
                "+49 30 901820"
            ]
        );
        assert_eq!(found(phones, "dial 1 415 555 2671 now"), ["1 415 555 2671"]);
        for bad in [
            "(115) 555-0132",
            "415 155 2671",
            "2026-11-03",
            "203.0.113.42",
            "version 1.2.3.4567",
            "+1 000 000 0000",
            "12345",
            "order 5550132",
        ] {
            assert!(found(phones, bad).is_empty(), "{bad}");
        }
    }
}
