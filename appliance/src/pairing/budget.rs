//! Budget periods: when the current one started and when the next one starts. Calendar
//! periods in UTC, so "renews at" means the same on the box, the page and the phone.

use super::connection::Renewal;
use crate::status::UnixTime;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

/// The start of the period `now` falls in (0 for a budget that never renews: everything
/// ever spent counts).
pub fn period_start(renewal: Renewal, now: UnixTime) -> UnixTime {
    let Some(today) = date_of(now) else {
        return 0;
    };
    let start = match renewal {
        Renewal::Never => return 0,
        Renewal::Daily => today,
        Renewal::Weekly => {
            today - Duration::days(i64::from(today.weekday().num_days_from_monday()))
        }
        Renewal::Monthly => today.with_day(1).unwrap_or(today),
        Renewal::Yearly => NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today),
    };
    seconds_of(start)
}

/// When the next period starts (`None` for a budget that never renews).
pub fn next_renewal(renewal: Renewal, now: UnixTime) -> Option<UnixTime> {
    let start = date_of(period_start(renewal, now))?;
    let next = match renewal {
        Renewal::Never => return None,
        Renewal::Daily => start + Duration::days(1),
        Renewal::Weekly => start + Duration::days(7),
        Renewal::Monthly => start.checked_add_months(chrono::Months::new(1))?,
        Renewal::Yearly => start.checked_add_months(chrono::Months::new(12))?,
    };
    Some(seconds_of(next))
}

fn date_of(time: UnixTime) -> Option<NaiveDate> {
    let time: DateTime<Utc> = Utc.timestamp_opt(i64::try_from(time).ok()?, 0).single()?;
    Some(time.date_naive())
}

fn seconds_of(date: NaiveDate) -> UnixTime {
    date.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp().max(0) as UnixTime)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-09 15:30:00 UTC, a Wednesday.
    const WEDNESDAY: UnixTime = 1_796_830_200;

    fn at(y: i32, m: u32, d: u32) -> UnixTime {
        seconds_of(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    #[test]
    fn periods_are_calendar_periods_in_utc() {
        assert_eq!(period_start(Renewal::Daily, WEDNESDAY), at(2026, 12, 9));
        assert_eq!(
            next_renewal(Renewal::Daily, WEDNESDAY),
            Some(at(2026, 12, 10))
        );
        assert_eq!(period_start(Renewal::Weekly, WEDNESDAY), at(2026, 12, 7));
        assert_eq!(
            next_renewal(Renewal::Weekly, WEDNESDAY),
            Some(at(2026, 12, 14))
        );
        assert_eq!(period_start(Renewal::Monthly, WEDNESDAY), at(2026, 12, 1));
        assert_eq!(
            next_renewal(Renewal::Monthly, WEDNESDAY),
            Some(at(2027, 1, 1))
        );
        assert_eq!(period_start(Renewal::Yearly, WEDNESDAY), at(2026, 1, 1));
        assert_eq!(
            next_renewal(Renewal::Yearly, WEDNESDAY),
            Some(at(2027, 1, 1))
        );
        assert_eq!(period_start(Renewal::Never, WEDNESDAY), 0);
        assert_eq!(next_renewal(Renewal::Never, WEDNESDAY), None);
    }

    #[test]
    fn the_first_second_of_a_period_belongs_to_it() {
        let midnight = at(2026, 12, 10);
        assert_eq!(period_start(Renewal::Daily, midnight), midnight);
        assert_eq!(period_start(Renewal::Daily, midnight - 1), at(2026, 12, 9));
    }
}
