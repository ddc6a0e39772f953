//! Timezone names people write that are not the place they mean.
//!
//! A calendar's timezone decides when a business day starts and ends, so a
//! name that is an hour off for half the year moves every due date. Two
//! kinds of slip:
//!
//! - an abbreviation the timezone database does not have (`PST`, `AEST`,
//!   `CEST`): the closest name by spelling is no help (`AEST` is nearest
//!   to `EST`, which is New York's winter, not Sydney), so the place is
//!   named instead;
//! - a name it has that fixes one offset or follows old rules (`EST` is
//!   UTC-5 all year, so in summer New York is an hour off; `PST8PDT`,
//!   `CET`): legal, so a warning naming the place.

/// The place most people mean by an abbreviation, and other places the
/// same letters name.
pub(super) fn place_for(abbreviation: &str) -> Option<(&'static str, &'static str)> {
    let upper = abbreviation.trim().to_ascii_uppercase();
    let found = match upper.as_str() {
        "EST" | "EDT" | "EST5EDT" | "ET" => ("America/New_York", ""),
        "CST" | "CDT" | "CST6CDT" | "CT" => (
            "America/Chicago",
            " (CST is also China's: \"Asia/Shanghai\")",
        ),
        "MST" | "MDT" | "MST7MDT" | "MT" => (
            "America/Denver",
            " (Arizona keeps MST all year: \"America/Phoenix\")",
        ),
        "PST" | "PDT" | "PST8PDT" | "PT" => ("America/Los_Angeles", ""),
        "AKST" | "AKDT" => ("America/Anchorage", ""),
        "HST" => ("Pacific/Honolulu", ""),
        "GMT" | "BST" => ("Europe/London", " (for no daylight saving: \"UTC\")"),
        "IST" => (
            "Asia/Kolkata",
            " (IST is also Ireland's: \"Europe/Dublin\")",
        ),
        "CET" | "CEST" | "MET" | "MEST" => (
            "Europe/Berlin",
            " (or the team's city: \"Europe/Paris\", \"Europe/Madrid\", …)",
        ),
        "EET" | "EEST" => ("Europe/Athens", " (or the team's city)"),
        "WET" | "WEST" => ("Europe/Lisbon", ""),
        "AEST" | "AEDT" => (
            "Australia/Sydney",
            " (Queensland keeps AEST all year: \"Australia/Brisbane\")",
        ),
        "ACST" | "ACDT" => ("Australia/Adelaide", ""),
        "AWST" => ("Australia/Perth", ""),
        "NZST" | "NZDT" => ("Pacific/Auckland", ""),
        "JST" => ("Asia/Tokyo", ""),
        "KST" => ("Asia/Seoul", ""),
        "SGT" => ("Asia/Singapore", ""),
        "HKT" => ("Asia/Hong_Kong", ""),
        "BRT" => ("America/Sao_Paulo", ""),
        _ => return None,
    };
    Some(found)
}

/// Why a name the database has is still not the place: a fixed offset or
/// an old rule set with a place's name to use instead. `None` for a place
/// name, UTC and its aliases.
pub(super) fn not_a_place(name: &str) -> Option<(String, &'static str, &'static str)> {
    let why = match name {
        "EST" => "\"EST\" is UTC-5 all year: it never moves to daylight saving time, so in summer it is an hour behind New York",
        "MST" => "\"MST\" is UTC-7 all year: it never moves to daylight saving time, so in summer it is an hour behind Denver",
        "GMT" => "\"GMT\" is UTC all year: in summer it is an hour behind London",
        "EST5EDT" | "CST6CDT" | "MST7MDT" | "PST8PDT" | "CET" | "MET" | "EET" | "WET" => {
            "it is an old name kept for compatibility that follows no place's history or future rule changes"
        }
        _ => return None,
    };
    let (place, also) = place_for(name)?;
    Some((why.to_string(), place, also))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_place_suggested_is_in_the_timezone_database() {
        for a in [
            "EST", "EDT", "CST", "MST", "PST", "AKST", "HST", "GMT", "BST", "IST", "CET", "CEST",
            "EET", "WET", "AEST", "ACST", "AWST", "NZST", "JST", "KST", "SGT", "HKT", "BRT",
            "PST8PDT", "MET",
        ] {
            let (place, _) = place_for(a).unwrap_or_else(|| panic!("{a}"));
            assert!(jiff::tz::TimeZone::get(place).is_ok(), "{a}: {place}");
        }
    }

    #[test]
    fn a_place_and_utc_are_fine_and_legacy_names_are_not() {
        for ok in ["America/New_York", "UTC", "Etc/UTC", "Europe/Berlin"] {
            assert!(not_a_place(ok).is_none(), "{ok}");
        }
        for legacy in ["EST", "MST", "GMT", "PST8PDT", "CET"] {
            assert!(
                jiff::tz::TimeZone::get(legacy).is_ok(),
                "{legacy} is in the database (so this is a warning, not H115)"
            );
            assert!(not_a_place(legacy).is_some(), "{legacy}");
        }
    }
}
