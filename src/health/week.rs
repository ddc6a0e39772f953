//! ISO weeks in the calendar's timezone, business time, and the two
//! statistics every signal uses (median and p90).

use jiff::civil::Date;
use jiff::Timestamp;

use crate::compile::Calendar;

/// The ISO week a moment falls in, in the calendar's timezone: `2026-W53`.
/// ISO weeks start on Monday and belong to the year of their Thursday, so
/// 2027-01-01 (a Friday) is in `2026-W53`.
pub fn iso_week(calendar: &Calendar, at: Timestamp) -> (String, Date) {
    let date = at.to_zoned(calendar.timezone().clone()).date();
    let iso = date.iso_week_date();
    let monday = iso_monday(date);
    (format!("{:04}-W{:02}", iso.year(), iso.week()), monday)
}

/// The Monday of `date`'s week.
fn iso_monday(date: Date) -> Date {
    let back = i64::from(date.weekday().to_monday_zero_offset());
    date.checked_sub(jiff::Span::new().days(back))
        .unwrap_or(date)
}

/// Working hours between two moments (weekends, holidays and nights do
/// not count).
pub fn business_hours(calendar: &Calendar, from: Timestamp, to: Timestamp) -> f64 {
    calendar.working_seconds(from, to) as f64 / 3600.0
}

/// Hours between two moments, every hour counting (0 when `to` is earlier).
pub fn wall_hours(from: Timestamp, to: Timestamp) -> f64 {
    if to <= from {
        return 0.0;
    }
    from.duration_until(to).as_secs_f64() / 3600.0
}

/// The hours of one working day, to turn business hours into days.
pub fn day_hours(calendar: &Calendar) -> f64 {
    let h = calendar.working_day_seconds() as f64 / 3600.0;
    if h > 0.0 {
        h
    } else {
        8.0
    }
}

/// The median (the mean of the two middle values for an even count) and
/// the 90th percentile (nearest rank: the smallest value with at least 90%
/// of the values at or below it). `None` for no values.
pub fn median_p90(values: &mut [f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
    Some((median, values[rank - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn new_york_with_thanksgiving() -> Calendar {
        let src = crate::diagnostic::SourceFile::new(
            "c.handoff",
            "object deal {\n  name: text\n}\ncalendar {\n  timezone \"America/New_York\"\n  holidays 2026-11-26\n}\n",
        );
        let (set, _) = crate::compile::load_sources(&[src]).unwrap();
        set.calendar().clone()
    }

    #[test]
    fn median_and_p90_by_hand() {
        assert_eq!(median_p90(&mut []), None);
        assert_eq!(median_p90(&mut [5.0]), Some((5.0, 5.0)));
        assert_eq!(median_p90(&mut [4.0, 1.0]), Some((2.5, 4.0)));
        // 1..=10: median 5.5, p90 is the 9th value.
        let mut v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(median_p90(&mut v), Some((5.5, 9.0)));
        // 11 values: the 10th (ceil(9.9)) is the p90.
        let mut v: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(median_p90(&mut v), Some((6.0, 10.0)));
    }

    #[test]
    fn weeks_across_the_year_boundary_belong_to_their_thursday() {
        let utc = Calendar::default();
        // Friday 2027-01-01 is in the last ISO week of 2026 (W53).
        assert_eq!(iso_week(&utc, ts("2027-01-01T12:00:00Z")).0, "2026-W53");
        assert_eq!(
            iso_week(&utc, ts("2027-01-01T12:00:00Z")).1.to_string(),
            "2026-12-28"
        );
        assert_eq!(iso_week(&utc, ts("2027-01-04T00:00:00Z")).0, "2027-W01");
        // Monday 2024-12-30 is in 2025-W01.
        assert_eq!(iso_week(&utc, ts("2024-12-30T09:00:00Z")).0, "2025-W01");
    }

    #[test]
    fn weeks_are_counted_in_the_calendars_timezone() {
        let ny = new_york_with_thanksgiving();
        // Monday 03:00 UTC is still Sunday evening in New York.
        assert_eq!(iso_week(&ny, ts("2026-11-23T03:00:00Z")).0, "2026-W47");
        assert_eq!(
            iso_week(&Calendar::default(), ts("2026-11-23T03:00:00Z")).0,
            "2026-W48"
        );
    }

    #[test]
    fn business_hours_skip_nights_weekends_and_holidays() {
        let ny = new_york_with_thanksgiving();
        // Wednesday 2026-11-25 15:00 New York (20:00Z) to Monday 2026-11-30
        // 11:00 (16:00Z): Wednesday 2 h, Thursday is Thanksgiving, Friday
        // 8 h, the weekend nothing, Monday 2 h.
        let h = business_hours(&ny, ts("2026-11-25T20:00:00Z"), ts("2026-11-30T16:00:00Z"));
        assert_eq!(h, 12.0);
        // Without the holiday it would be 20 hours.
        let utc_like = Calendar::default();
        let plain = business_hours(
            &utc_like,
            ts("2026-11-25T15:00:00Z"),
            ts("2026-11-30T11:00:00Z"),
        );
        assert_eq!(plain, 20.0);
        // Backwards is nothing.
        assert_eq!(
            business_hours(&ny, ts("2026-11-30T16:00:00Z"), ts("2026-11-25T20:00:00Z")),
            0.0
        );
        assert_eq!(day_hours(&ny), 8.0);
        assert_eq!(
            wall_hours(ts("2026-11-25T20:00:00Z"), ts("2026-11-26T02:00:00Z")),
            6.0
        );
    }
}
