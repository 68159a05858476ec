//! Durations: one syntax for every duration the harness reads or prints.
//!
//! Scenario files (`retry`, `delay`, `delays`, certificate offsets), sender profiles
//! (`timeout`) and the command line (`--dns-timeout`) all read [`parse`], humantime's
//! syntax (`400ms`, `90s`, `1h30m`, `2d`) in whole numbers and without its months and
//! years (averages, not calendar units); reports print with [`format`] (`1h30m`, the
//! `T+1h30m` of a timeline), so whatever a report prints can be pasted back into a file.
//!
//! Every use has its own [`Bounds`], and a value outside them is an error that names them.
//! Text is checked before humantime sees it: at most [`MAX_LEN`] characters and numbers
//! of at most [`MAX_DIGITS`] significant digits, so its arithmetic stays far from `u64`
//! (humantime's `Duration::new` can overflow and panic near it).

use std::time::Duration;

/// The longest text read as a duration: enough for `400d23h59m59s999ms999us999ns`.
pub const MAX_LEN: usize = 64;
/// The most significant digits of one number: 999999999 years is about 2^55 seconds, so
/// the sum of every number that fits in [`MAX_LEN`] stays below 2^64.
pub const MAX_DIGITS: usize = 9;

/// humantime's month and year units, which this syntax does not read.
const CALENDAR_UNITS: [&str; 8] = ["months", "month", "M", "years", "year", "yr", "yrs", "y"];

/// What a duration is for, and the values it may take (both ends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// "a retry wait", for messages.
    pub what: &'static str,
    pub min: Duration,
    pub max: Duration,
    /// A value to suggest, in the syntax [`parse`] reads.
    pub example: &'static str,
}

const fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

/// A timeline's simulated wait before a retry: nothing sleeps, but 400 days is past every
/// MTA's queue lifetime (Postfix's `maximal_queue_lifetime` is 5d, at most 100d).
pub const RETRY: Bounds = Bounds {
    what: "a retry wait (simulated)",
    min: Duration::ZERO,
    max: days(400),
    example: "1h30m",
};

/// A wait that really passes: a slow DNS answer, an endpoint's scripted delay. A slow
/// answer, not a dead one (a `drop` fault or `drop = "data"` is that), and a run stays short.
pub const REAL_WAIT: Bounds = Bounds {
    what: "a real wait",
    min: Duration::ZERO,
    max: Duration::from_secs(30),
    example: "1500ms",
};

/// How long a command sender may run for one attempt.
pub const PROFILE_TIMEOUT: Bounds = Bounds {
    what: "a sender profile's timeout",
    min: Duration::from_secs(1),
    max: Duration::from_secs(3600),
    example: "30s",
};

/// The reference sender's DNS timeout (`--dns-timeout`): every peer is on loopback, so
/// 50 ms is already long; a dropped query costs the whole timeout.
pub const DNS_TIMEOUT: Bounds = Bounds {
    what: "the DNS timeout",
    min: Duration::from_millis(50),
    max: Duration::from_secs(30),
    example: "2s",
};

/// The distance of a certificate date from the world clock (`+365d`, `-30d`): the
/// certificate calendar (RFC 5280 §4.1.2.5, years 1950 to 9999) is shorter than this, so
/// the calendar check that follows decides.
pub const CERT_OFFSET: Bounds = Bounds {
    what: "a certificate date offset",
    min: Duration::ZERO,
    max: days(3_000_000),
    example: "365d",
};

impl Bounds {
    /// "a retry wait (simulated) is 0s to 400d, e.g. \"1h30m\"".
    pub fn describe(&self) -> String {
        format!(
            "{} is {} to {}, e.g. \"{}\"",
            self.what,
            format(self.min),
            format(self.max),
            self.example
        )
    }

    pub fn contains(&self, d: Duration) -> bool {
        (self.min..=self.max).contains(&d)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    #[error("`{text}` is not a duration ({reason}): {}", bounds.describe())]
    Malformed {
        text: String,
        reason: String,
        bounds: Bounds,
    },
    #[error("`{text}` is out of range: {}", bounds.describe())]
    OutOfRange { text: String, bounds: Bounds },
}

impl DurationError {
    pub fn bounds(&self) -> &Bounds {
        match self {
            DurationError::Malformed { bounds, .. } | DurationError::OutOfRange { bounds, .. } => bounds,
        }
    }
}

/// The text as an error quotes it: at most [`MAX_LEN`] characters.
fn quoted(s: &str) -> String {
    match s.char_indices().nth(MAX_LEN) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

/// Reads `text` (humantime syntax, surrounding blanks ignored) and checks it against `bounds`.
pub fn parse(text: &str, bounds: &Bounds) -> Result<Duration, DurationError> {
    let t = text.trim();
    let malformed = |reason: String| DurationError::Malformed {
        text: quoted(t),
        reason,
        bounds: *bounds,
    };
    let out_of_range = || DurationError::OutOfRange {
        text: quoted(t),
        bounds: *bounds,
    };
    if t.chars().count() > MAX_LEN {
        return Err(malformed(format!("longer than {MAX_LEN} characters")));
    }
    // Every run of digits (integer or fraction), without its leading zeros.
    let longest = t
        .split(|c: char| !c.is_ascii_digit())
        .map(|run| run.trim_start_matches('0').len())
        .max()
        .unwrap_or(0);
    if longest > MAX_DIGITS {
        return Err(out_of_range());
    }
    // Whole numbers only: what `format` prints, and no question of rounding.
    if t.contains('.') {
        return Err(malformed("whole numbers only: write 1500ms, not 1.5s".into()));
    }
    // humantime's months and years are averages (30.44 d, 365.25 d), not calendar ones: a
    // certificate offset of "+5y" would not land on a date anyone expects.
    if let Some(unit) = t
        .split(|c: char| !c.is_alphabetic())
        .find(|u| CALENDAR_UNITS.contains(u))
    {
        return Err(malformed(format!(
            "`{unit}` has no fixed length: write days, e.g. 365d"
        )));
    }
    let d = humantime::parse_duration(t).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => out_of_range(),
        other => malformed(other.to_string()),
    })?;
    if bounds.contains(d) { Ok(d) } else { Err(out_of_range()) }
}

/// The form reports print and [`parse`] reads back: units from days to nanoseconds, each
/// given only when not zero, without blanks (`1h30m`, `400ms`, `1d1m1s`, `0s`).
pub fn format(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let mut out = String::new();
    let mut secs = d.as_secs();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= len {
            out.push_str(&format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    let mut nanos = d.subsec_nanos();
    for (unit, len) in [("ms", 1_000_000), ("us", 1_000), ("ns", 1)] {
        if nanos >= len {
            out.push_str(&format!("{}{unit}", nanos / len));
            nanos %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: [Bounds; 5] = [RETRY, REAL_WAIT, PROFILE_TIMEOUT, DNS_TIMEOUT, CERT_OFFSET];

    #[test]
    fn humantime_forms_are_read() {
        for (text, secs, millis) in [
            ("1h30m", 5400, 0),
            ("1h 30m", 5400, 0),
            ("400ms", 0, 400),
            ("2d", 172_800, 0),
            ("90s", 90, 0),
            (" 15m ", 900, 0),
            ("0s", 0, 0),
        ] {
            let want = Duration::from_secs(secs) + Duration::from_millis(millis);
            assert_eq!(parse(text, &RETRY), Ok(want), "{text}");
        }
    }

    #[test]
    fn malformed_text_is_refused_and_names_the_bounds() {
        for text in [
            "", "soon", "10", "-5s", "1x", "5s!", "1h30", "1.s", "1.5s", "5y", "2 months", "1M",
        ] {
            let e = parse(text, &RETRY).unwrap_err();
            assert!(matches!(e, DurationError::Malformed { .. }), "{text}: {e}");
            assert!(e.to_string().contains("0s to 400d"), "{e}");
        }
        let long = "1s".repeat(40);
        let e = parse(&long, &RETRY).unwrap_err();
        assert!(e.to_string().contains("longer than 64 characters"), "{e}");
        assert!(e.to_string().len() < 200, "the error quotes a window: {e}");
    }

    #[test]
    fn huge_numbers_are_out_of_range_before_humantime_sees_them() {
        for text in [
            "999999999999999999d",
            "18446744073709551615s 1000000000ns",
            "18446744073709551615s",
            "1000000000d",
            "584542046091y",
        ] {
            let e = parse(text, &RETRY).unwrap_err();
            assert!(matches!(e, DurationError::OutOfRange { .. }), "{text}: {e}");
        }
        // Leading zeros are not digits of the value.
        assert_eq!(parse("0000000000001s", &REAL_WAIT), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn each_use_has_its_bounds() {
        assert!(parse("401d", &RETRY).is_err());
        assert_eq!(parse("400d", &RETRY), Ok(days(400)));
        assert!(parse("30001ms", &REAL_WAIT).is_err());
        assert_eq!(parse("30s", &REAL_WAIT), Ok(Duration::from_secs(30)));
        assert!(parse("999ms", &PROFILE_TIMEOUT).is_err());
        assert!(parse("61m", &PROFILE_TIMEOUT).is_err());
        assert_eq!(parse("1h", &PROFILE_TIMEOUT), Ok(Duration::from_secs(3600)));
        assert!(parse("49ms", &DNS_TIMEOUT).is_err());
        assert!(parse("31s", &DNS_TIMEOUT).is_err());
        assert_eq!(parse("50ms", &DNS_TIMEOUT), Ok(Duration::from_millis(50)));
        let e = parse("2h", &PROFILE_TIMEOUT).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`2h` is out of range: a sender profile's timeout is 1s to 1h, e.g. \"30s\""
        );
    }

    #[test]
    fn printing_is_compact() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_secs(900)), "15m");
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(86_400 + 61)), "1d1m1s");
        assert_eq!(format(Duration::from_millis(400)), "400ms");
        assert_eq!(format(Duration::new(1, 500_000_001)), "1s500ms1ns");
    }

    proptest! {
        /// What reports print parses back, within each use's bounds, to the same value.
        #[test]
        fn every_printed_form_parses_back(frac in 0.0f64..=1.0, nanos in 0u32..1_000_000_000, which in 0usize..5) {
            let b = ALL[which];
            let span = b.max - b.min;
            // Anywhere in the range, with any nanoseconds that keep it there.
            let d = (b.min + span.mul_f64(frac)).checked_add(Duration::from_nanos(nanos.into())).filter(|d| *d <= b.max).unwrap_or(b.max);
            let printed = format(d);
            prop_assert!(printed.len() <= MAX_LEN, "{}", printed);
            prop_assert_eq!(parse(&printed, &b), Ok(d), "{}", printed);
        }

        /// No text makes parsing panic.
        #[test]
        fn any_text_is_an_answer(text in "[0-9a-zµ. ]{0,80}") {
            let _ = parse(&text, &RETRY);
        }
    }
}
