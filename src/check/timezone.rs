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
//! - a name it has that fixes one offset (`EST` is UTC-5 all year, so in
//!   summer New York is an hour off; `GMT`; `Etc/GMT+5`): legal, so a
//!   warning naming the place. (The old rule names `PST8PDT`, `CET`, `EET`
//!   are links to a place's zone since tzdata 2024b: same clock, no
//!   warning.)

/// The place most people mean by an abbreviation, and other places the
/// same letters name.
pub(super) fn place_for(abbreviation: &str) -> Option<(&'static str, &'static str)> {
    let upper = abbreviation.trim().to_ascii_uppercase();
    let found = match upper.as_str() {
        "EST" | "EDT" | "EST5EDT" | "ET" => ("America/New_York", ""),
        "CST" | "CDT" | "CST6CDT" | "CT" => (
            "America/Chicago",
            " (Saskatchewan keeps CST all year: \"America/Regina\"; CST is also China's: \"Asia/Shanghai\")",
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
            " (IST is also Ireland's, \"Europe/Dublin\", and Israel's, \"Asia/Jerusalem\")",
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
        "ACST" | "ACDT" => (
            "Australia/Adelaide",
            " (the Northern Territory keeps ACST all year: \"Australia/Darwin\")",
        ),
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

/// Why a name the database has is still not the place: a fixed offset,
/// with a place's name to use instead. `None` for a place, UTC and its
/// aliases, and the old rule names that now link to a place. Matched
/// without regard to case, as the database looks names up.
pub(super) fn not_a_place(name: &str) -> Option<(String, &'static str, &'static str)> {
    let upper = name.trim().to_ascii_uppercase();
    let (why, place, also) = match upper.as_str() {
        "EST" => (
            format!("\"{name}\" is UTC-5 all year: it never moves to daylight saving time, so in summer it is an hour behind New York"),
            "America/New_York",
            " (or, for a place that keeps UTC-5 all year, \"America/Panama\" or \"America/Cancun\")",
        ),
        "MST" => (
            format!("\"{name}\" is UTC-7 all year: it never moves to daylight saving time, so in summer it is an hour behind Denver"),
            "America/Denver",
            " (Arizona keeps MST all year: \"America/Phoenix\")",
        ),
        "GMT" | "ETC/GMT" | "GMT0" | "GREENWICH" => (
            format!("\"{name}\" is UTC all year: in summer it is an hour behind London"),
            "Europe/London",
            " (for no daylight saving at all: \"UTC\")",
        ),
        fixed if fixed.starts_with("ETC/GMT+") || fixed.starts_with("ETC/GMT-") => (
            // POSIX signs: `Etc/GMT+5` is five hours BEHIND UTC.
            format!("\"{name}\" is one fixed offset all year (and its sign is inverted: \"Etc/GMT+5\" is UTC-5), so it never moves to daylight saving time"),
            "America/New_York",
            " (or the team's own city)",
        ),
        _ => return None,
    };
    Some((why, place, also))
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
    fn a_place_utc_and_linked_old_names_are_fine_and_fixed_offsets_are_not() {
        for ok in [
            "America/New_York",
            "UTC",
            "Etc/UTC",
            "Europe/Berlin",
            "CET",
            "PST8PDT",
            "HST",
        ] {
            assert!(not_a_place(ok).is_none(), "{ok}");
        }
        for fixed in ["EST", "est", "MST", "GMT", "Etc/GMT+5", "Etc/GMT-2"] {
            assert!(
                jiff::tz::TimeZone::get(fixed).is_ok(),
                "{fixed} is in the database (so this is a warning, not H115)"
            );
            assert!(not_a_place(fixed).is_some(), "{fixed}");
        }
    }
}
