//! CronJob schedules: the five-field cron syntax of `spec.schedule` (and
//! the `@hourly`-style macros) in `spec.timeZone`, parsed with `croner`.
//!
//! Upstream parses with robfig/cron's standard parser; the rules that
//! matter agree: minute, hour, day of month, month, day of week; names
//! (`MON`, `JAN`); `*/n` and `n/m` steps; when both day fields are restricted a day
//! matching either runs (a `*` in one makes the other decide). Like
//! upstream's validation, `TZ=`/`CRON_TZ=` prefixes are refused (the
//! field is `spec.timeZone`); `@every` is not supported.

use std::str::FromStr;

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Most missed start times counted before giving up counting (upstream
/// warns "too many missed start times" past 100).
pub const MAX_MISSED: usize = 100;

/// A parsed schedule in its time zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    zone: TimeZone,
}

/// The most recent start time that is due, and how many were missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// The latest start time after the earliest allowed and at most now.
    pub time: Timestamp,
    /// How many start times fell in that window (capped just past
    /// [`MAX_MISSED`]).
    pub missed: usize,
}

impl Schedule {
    /// Parses `schedule` in `time_zone` (an IANA name; UTC when `None`).
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Self, String> {
        let text = schedule.trim();
        let upper = text.to_ascii_uppercase();
        if upper.starts_with("TZ=") || upper.starts_with("CRON_TZ=") {
            return Err(format!(
                "unsupported schedule {schedule:?}: TZ or CRON_TZ prefixes are not allowed, use spec.timeZone"
            ));
        }
        let text = match upper.as_str() {
            "@MIDNIGHT" => "0 0 * * *",
            _ if upper.starts_with("@EVERY") => {
                return Err(format!(
                    "unsupported schedule {schedule:?}: @every is not supported"
                ))
            }
            _ => text,
        };
        if !text.starts_with('@') && text.split_whitespace().count() != 5 {
            return Err(format!(
                "invalid schedule {schedule:?}: expected 5 fields (minute hour day-of-month month day-of-week)"
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            // robfig/cron reads `5/15` as `5-59/15`; so do we.
            .sloppy_ranges(true)
            .build();
        let cron = parser
            .parse(text)
            .map_err(|e| format!("invalid schedule {schedule:?}: {e}"))?;
        let zone = match time_zone {
            None | Some("") => TimeZone::UTC,
            Some(name) => {
                TimeZone::get(name).map_err(|e| format!("invalid time zone {name:?}: {e}"))?
            }
        };
        Ok(Self { cron, zone })
    }

    /// The first start time strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let zoned = after.to_zoned(self.zone.clone());
        self.cron
            .find_next_occurrence(&zoned, false)
            .ok()
            .map(|z| z.timestamp())
    }

    /// The latest start time in `(earliest, now]`, if any (upstream's
    /// `mostRecentScheduleTime`).
    pub fn most_recent(&self, earliest: Timestamp, now: Timestamp) -> Option<Due> {
        let first = self.next_after(earliest)?;
        if first > now {
            return None;
        }
        let zoned = now.to_zoned(self.zone.clone());
        let latest = self
            .cron
            .find_previous_occurrence(&zoned, true)
            .ok()
            .map(|z| z.timestamp())
            .filter(|t| *t > earliest)
            .unwrap_or(first);
        let mut missed = 1;
        let mut t = first;
        while missed <= MAX_MISSED {
            match self.next_after(t) {
                Some(next) if next <= now => {
                    missed += 1;
                    t = next;
                }
                _ => break,
            }
        }
        Some(Due {
            time: latest,
            missed,
        })
    }
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    #[test]
    fn next_start_times_follow_the_fields() {
        let every_5 = Schedule::parse("*/5 * * * *", None).expect("parse");
        assert_eq!(
            every_5.next_after(ts("2025-01-01T10:02:30Z")),
            Some(ts("2025-01-01T10:05:00Z"))
        );
        assert_eq!(
            every_5.next_after(ts("2025-01-01T10:05:00Z")),
            Some(ts("2025-01-01T10:10:00Z"))
        );
        let weekdays = Schedule::parse("30 9 * * MON-FRI", None).expect("parse");
        // 2025-01-04 is a Saturday: next is Monday the 6th.
        assert_eq!(
            weekdays.next_after(ts("2025-01-04T00:00:00Z")),
            Some(ts("2025-01-06T09:30:00Z"))
        );
        let hourly = Schedule::parse("@hourly", None).expect("parse");
        assert_eq!(
            hourly.next_after(ts("2025-01-01T10:00:00Z")),
            Some(ts("2025-01-01T11:00:00Z"))
        );
        let midnight = Schedule::parse("@midnight", None).expect("parse");
        assert_eq!(
            midnight.next_after(ts("2025-01-01T10:00:00Z")),
            Some(ts("2025-01-02T00:00:00Z"))
        );
    }

    #[test]
    fn restricted_day_fields_match_either() {
        // The 13th, or any Friday (standard cron, as robfig/cron).
        let s = Schedule::parse("0 0 13 * FRI", None).expect("parse");
        // 2025-06-06 is a Friday.
        assert_eq!(
            s.next_after(ts("2025-06-01T00:00:00Z")),
            Some(ts("2025-06-06T00:00:00Z"))
        );
        assert_eq!(
            s.next_after(ts("2025-06-12T00:00:00Z")),
            Some(ts("2025-06-13T00:00:00Z"))
        );
    }

    #[test]
    fn time_zones_shift_start_times() {
        let s = Schedule::parse("0 9 * * *", Some("Europe/Paris")).expect("parse");
        // 09:00 in Paris in January is 08:00 UTC.
        assert_eq!(
            s.next_after(ts("2025-01-10T00:00:00Z")),
            Some(ts("2025-01-10T08:00:00Z"))
        );
        assert!(Schedule::parse("0 9 * * *", Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn bad_schedules_are_refused() {
        for bad in [
            "",
            "* * * *",
            "* * * * * *",
            "61 * * * *",
            "TZ=UTC * * * * *",
            "CRON_TZ=UTC 0 * * * *",
            "@every 5m",
            "@sometimes",
        ] {
            assert!(
                Schedule::parse(bad, None).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn the_most_recent_due_time_counts_missed_ones() {
        let s = Schedule::parse("* * * * *", None).expect("parse");
        let due = s
            .most_recent(ts("2025-01-01T10:00:00Z"), ts("2025-01-01T10:03:30Z"))
            .expect("due");
        assert_eq!(due.time, ts("2025-01-01T10:03:00Z"));
        assert_eq!(due.missed, 3);
        assert_eq!(
            s.most_recent(ts("2025-01-01T10:00:00Z"), ts("2025-01-01T10:00:59Z")),
            None
        );
        let many = s
            .most_recent(ts("2025-01-01T00:00:00Z"), ts("2025-01-02T00:00:00Z"))
            .expect("due");
        assert_eq!(many.time, ts("2025-01-02T00:00:00Z"));
        assert!(many.missed > MAX_MISSED);
    }

    proptest! {
        #[test]
        fn due_times_are_start_times_in_the_window(minute in 0u32..60, step in 1u32..30, start in 0i64..10_000_000, span in 0i64..100_000) {
            let s = Schedule::parse(&format!("{minute}/{step} * * * *"), None).expect("parse");
            let earliest = Timestamp::from_second(1_700_000_000 + start).expect("ts");
            let now = Timestamp::from_second(1_700_000_000 + start + span).expect("ts");
            if let Some(due) = s.most_recent(earliest, now) {
                prop_assert!(due.time > earliest && due.time <= now);
                prop_assert!(due.missed >= 1);
                // Nothing is due after it.
                prop_assert!(s.next_after(due.time).is_none_or(|n| n > now));
                let dt = due.time.to_zoned(TimeZone::UTC);
                prop_assert_eq!(dt.second(), 0);
                prop_assert!(dt.minute() as u32 >= minute && (dt.minute() as u32 - minute).is_multiple_of(step));
            } else {
                prop_assert!(s.next_after(earliest).is_none_or(|n| n > now));
            }
        }
    }
}
