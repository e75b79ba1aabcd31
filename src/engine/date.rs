//! Dates as the project reads and writes them, in one place: an approval's expiry
//! (`openclaw.io/exempt-until`) is read here, and a grant's expiry is written here. Two formats
//! are accepted, both UTC: a date, `2027-01-31` (its first second), and a date and time,
//! `2027-01-31T12:00:00Z`. The calendar is the `time` crate's, so an impossible date
//! (`2027-02-31`) is an error that says why, never a day that rolls over into the next month.
//! Lengths of time in the policy (`approvals.maxLifetime: 30d`) are read here too: a whole
//! number followed by one unit, `d` (days of 86,400 s), `h`, `m` or `s`, so one page of the
//! docs says how every date and length of time in the project is written.
//! Nothing here reads a clock: callers pass the time they judge against.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

const DATE: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");
const DATE_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// Why a text is not a date of the accepted formats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a date (2027-01-31 or 2027-01-31T00:00:00Z, UTC): {why}")]
pub struct DateError {
    pub value: String,
    pub why: String,
}

/// Seconds since the Unix epoch of a date (`2027-01-31`) or a date and time
/// (`2027-01-31T00:00:00Z`), both UTC.
pub fn parse_utc(text: &str) -> Result<i64, DateError> {
    let s = text.trim();
    let error = |why: String| DateError {
        value: text.to_string(),
        why,
    };
    let at = if s.contains('T') {
        PrimitiveDateTime::parse(s, DATE_TIME).map_err(|e| error(e.to_string()))?
    } else {
        PrimitiveDateTime::new(
            Date::parse(s, DATE).map_err(|e| error(e.to_string()))?,
            Time::MIDNIGHT,
        )
    };
    Ok(at.assume_utc().unix_timestamp())
}

/// Why a text is not a length of time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a length of time (a whole number and a unit: 30d, 12h, 90m, 45s)")]
pub struct LengthError {
    pub value: String,
}

/// Seconds in a length of time written `30d`, `12h`, `90m` or `45s` (greater than zero, at
/// most 100 years: a longer one is a typo, and sums with it must not overflow).
pub fn parse_length(text: &str) -> Result<i64, LengthError> {
    let error = || LengthError {
        value: text.to_string(),
    };
    let s = text.trim();
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(error)?;
    let (num, unit) = s.split_at(unit_at);
    let n: i64 = num.parse().map_err(|_| error())?;
    let scale = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(error()),
    };
    let secs = n.checked_mul(scale).ok_or_else(error)?;
    if secs <= 0 || secs > 100 * 366 * 86_400 {
        return Err(error());
    }
    Ok(secs)
}

/// `2027-01-31T00:00:00Z` for seconds since the Unix epoch; the number itself for a moment
/// outside the calendar's years (-9999 to 9999), which no parsed date gives.
pub fn format_utc(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(DATE_TIME).ok())
        .unwrap_or_else(|| format!("{secs} s after the Unix epoch"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_read_as_utc() {
        assert_eq!(parse_utc("2027-01-31"), Ok(1_801_353_600));
        assert_eq!(parse_utc("2027-01-31T00:00:00Z"), Ok(1_801_353_600));
        assert_eq!(parse_utc(" 1970-01-01T00:00:00Z "), Ok(0));
        assert_eq!(parse_utc("2024-02-29T12:30:05Z"), Ok(1_709_209_805));
        assert_eq!(format_utc(1_801_353_600), "2027-01-31T00:00:00Z");
        assert_eq!(format_utc(1_709_209_805), "2024-02-29T12:30:05Z");
    }

    #[test]
    fn an_impossible_date_is_refused_with_the_reason_not_rolled_over() {
        for bad in ["2027-02-31", "2027-02-29", "2027-04-31", "2100-02-29"] {
            let e = parse_utc(bad).unwrap_err();
            assert_eq!(e.value, bad);
            assert!(e.to_string().contains(bad), "{e}");
            assert!(e.why.contains("day"), "{bad}: {e}");
        }
        assert!(parse_utc("2028-02-29").is_ok(), "2028 is a leap year");
        assert!(parse_utc("2000-02-29").is_ok(), "2000 is a leap year");
    }

    #[test]
    fn lengths_of_time_take_one_unit() {
        assert_eq!(parse_length("30d"), Ok(30 * 86_400));
        assert_eq!(parse_length("12h"), Ok(43_200));
        assert_eq!(parse_length(" 90m "), Ok(5_400));
        assert_eq!(parse_length("45s"), Ok(45));
        for bad in [
            "",
            "30",
            "0d",
            "-1d",
            "1.5d",
            "1w",
            "1d2h",
            "d",
            "99999999999999999d",
        ] {
            let e = parse_length(bad).unwrap_err();
            assert!(e.to_string().contains("not a length of time"), "{bad}: {e}");
        }
    }

    #[test]
    fn other_shapes_are_refused() {
        for bad in [
            "2027-13-01",
            "tomorrow",
            "",
            "2027-01-31T25:00:00Z",
            "2027-01-31T00:00:00",
            "2027-01-31T00:00:00+02:00",
            "2027-1-31",
            "31.01.2027",
        ] {
            assert!(parse_utc(bad).is_err(), "{bad}");
        }
    }
}
