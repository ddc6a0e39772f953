//! Working time: which days and hours count for `business` durations.

use std::collections::HashSet;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};

use crate::syntax::{TimeUnit, Weekday};
use crate::value::Duration;

/// How far ahead (in days) a due date is searched for before giving up.
const SEARCH_DAYS: u32 = 3660;

/// A compiled calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// Monday first.
    workdays: [bool; 7],
    /// Working hours, minutes after local midnight.
    day_start: u32,
    day_end: u32,
    tz: TimeZone,
    holidays: HashSet<Date>,
}

impl Default for Calendar {
    /// Monday to Friday, 9:00 to 17:00, UTC, no holidays.
    fn default() -> Self {
        Calendar {
            workdays: [true, true, true, true, true, false, false],
            day_start: 9 * 60,
            day_end: 17 * 60,
            tz: TimeZone::UTC,
            holidays: HashSet::new(),
        }
    }
}

impl Calendar {
    /// From the checker's calendar (its timezone was validated there).
    pub fn from_checked(c: &crate::check::Calendar) -> Self {
        let mut workdays = [false; 7];
        for d in &c.workdays {
            if let Some(i) = Weekday::ALL.iter().position(|w| w == d) {
                workdays[i] = true;
            }
        }
        Calendar {
            workdays,
            day_start: c.day_start,
            day_end: c.day_end,
            tz: TimeZone::get(&c.timezone).unwrap_or(TimeZone::UTC),
            holidays: c.holidays.iter().copied().collect(),
        }
    }

    /// The calendar's timezone.
    pub fn timezone(&self) -> &TimeZone {
        &self.tz
    }

    /// Whether `date` is a working day.
    pub fn is_workday(&self, date: Date) -> bool {
        let i = date.weekday().to_monday_zero_offset() as usize;
        self.workdays[i] && !self.holidays.contains(&date)
    }

    /// The moment `d` after `now`.
    ///
    /// - Plain durations are calendar time in the calendar's timezone: days
    ///   and weeks keep the local clock time across DST changes; hours and
    ///   minutes are exact elapsed time.
    /// - `N business days` (and weeks, as 5 days each) end at the close of
    ///   the Nth working day after today.
    /// - `N business hours` (and minutes) count working time only, starting
    ///   from now, or from the next opening if now is outside working hours.
    /// - Negative business durations (`now - 4 business hours`) count the
    ///   same way backwards: to the close of the Nth working day before
    ///   today, or back through working time from now (or the last close).
    ///
    /// `None` when no working day is found (a calendar without workdays).
    pub fn add(&self, now: Timestamp, d: &Duration) -> Option<Timestamp> {
        let local = now.to_zoned(self.tz.clone());
        if d.business && d.amount < 0.0 {
            return self.back(&local, d);
        }
        if !d.business {
            let z = match d.unit {
                // Durations come from the rules: one too long for the
                // calendar gives no moment rather than a panic.
                TimeUnit::Days => {
                    let span = Span::new().try_days(d.amount.round() as i64).ok()?;
                    local.checked_add(span).ok()?
                }
                TimeUnit::Weeks => {
                    let span = Span::new().try_weeks(d.amount.round() as i64).ok()?;
                    local.checked_add(span).ok()?
                }
                _ => local.checked_add(seconds(d.seconds())?).ok()?,
            };
            return Some(z.timestamp());
        }
        match d.unit {
            TimeUnit::Days | TimeUnit::Weeks => {
                let n = (d.amount.round() as i64)
                    .max(0)
                    .saturating_mul(workdays_per(d.unit));
                let date = self.nth_workday(local.date(), n, Date::tomorrow)?;
                self.at(date, self.day_end).map(|z| z.timestamp())
            }
            TimeUnit::Hours | TimeUnit::Minutes => {
                // Working time is counted as elapsed time between each day's
                // opening and close, to the second (and right on a day whose
                // hours span a clock change).
                let mut left = seconds(d.seconds().max(0.0))?;
                let mut cursor = local.timestamp();
                let mut date = local.date();
                for _ in 0..SEARCH_DAYS {
                    if self.is_workday(date) {
                        let open = self.at(date, self.day_start)?.timestamp();
                        let close = self.at(date, self.day_end)?.timestamp();
                        let from = cursor.max(open);
                        if from < close {
                            let available = from.duration_until(close);
                            if left <= available {
                                return from.checked_add(left).ok();
                            }
                            left -= available;
                        }
                    }
                    date = date.tomorrow().ok()?;
                    cursor = self.at(date, self.day_start)?.timestamp();
                }
                None
            }
        }
    }

    /// The working time between `from` and `to`, in seconds: the parts of
    /// each working day's hours that fall between them (0 when `to` is not
    /// after `from`). The health report's business lead times use it, so a
    /// weekend or a holiday inside a lead time does not count.
    pub fn working_seconds(&self, from: Timestamp, to: Timestamp) -> i64 {
        if to <= from {
            return 0;
        }
        let mut date = from.to_zoned(self.tz.clone()).date();
        let last = to.to_zoned(self.tz.clone()).date();
        let mut total = 0i64;
        while date <= last {
            if self.is_workday(date) {
                if let (Some(open), Some(close)) =
                    (self.at(date, self.day_start), self.at(date, self.day_end))
                {
                    let start = from.max(open.timestamp());
                    let end = to.min(close.timestamp());
                    if start < end {
                        total += start.duration_until(end).as_secs();
                    }
                }
            }
            match date.tomorrow() {
                Ok(d) => date = d,
                Err(_) => break,
            }
        }
        total
    }

    /// The length of one working day, in seconds (8 hours for 9:00 to 17:00).
    pub fn working_day_seconds(&self) -> i64 {
        i64::from(self.day_end.saturating_sub(self.day_start)) * 60
    }

    /// [`Self::add`] for a negative business duration.
    fn back(&self, local: &Zoned, d: &Duration) -> Option<Timestamp> {
        match d.unit {
            TimeUnit::Days | TimeUnit::Weeks => {
                let n = ((-d.amount).round() as i64).saturating_mul(workdays_per(d.unit));
                let date = self.nth_workday(local.date(), n, Date::yesterday)?;
                self.at(date, self.day_end).map(|z| z.timestamp())
            }
            TimeUnit::Hours | TimeUnit::Minutes => {
                let mut left = seconds(-d.seconds())?;
                let mut cursor = local.timestamp();
                let mut date = local.date();
                for _ in 0..SEARCH_DAYS {
                    if self.is_workday(date) {
                        let open = self.at(date, self.day_start)?.timestamp();
                        let close = self.at(date, self.day_end)?.timestamp();
                        let to = cursor.min(close);
                        if open < to {
                            let available = open.duration_until(to);
                            if left <= available {
                                return to.checked_sub(left).ok();
                            }
                            left -= available;
                        }
                    }
                    date = date.yesterday().ok()?;
                    cursor = self.at(date, self.day_end)?.timestamp();
                }
                None
            }
        }
    }

    /// The `n`th working day from `date` (not counting `date` itself),
    /// moving a day at a time with `step` (forwards or backwards); `date`
    /// when `n` is 0. `None` past [`SEARCH_DAYS`]: a calendar with no
    /// workdays (or holidays on every one) never finds one, and gives no
    /// date rather than loop.
    fn nth_workday(
        &self,
        mut date: Date,
        n: i64,
        step: fn(Date) -> Result<Date, jiff::Error>,
    ) -> Option<Date> {
        let mut left = n;
        let mut guard = 0;
        while left > 0 && guard < SEARCH_DAYS {
            date = step(date).ok()?;
            if self.is_workday(date) {
                left -= 1;
            }
            guard += 1;
        }
        (left <= 0).then_some(date)
    }

    fn at(&self, date: Date, minutes: u32) -> Option<Zoned> {
        if minutes >= 24 * 60 {
            return self.at(date.tomorrow().ok()?, minutes - 24 * 60);
        }
        let t = Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).ok()?;
        date.to_datetime(t).to_zoned(self.tz.clone()).ok()
    }
}

/// Working days in one unit of a business duration: a business week is 5.
fn workdays_per(unit: TimeUnit) -> i64 {
    if unit == TimeUnit::Weeks {
        5
    } else {
        1
    }
}

/// `secs` as an exact duration; `None` when it is out of range (or NaN).
fn seconds(secs: f64) -> Option<jiff::SignedDuration> {
    jiff::SignedDuration::try_from_secs_f64(secs).ok()
}
