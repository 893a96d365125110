//! Core Data timestamps: seconds (a float) since 2001-01-01 00:00:00 UTC.

use chrono::{DateTime, FixedOffset, Offset, Utc};

/// Seconds from the Unix epoch to Core Data's reference date.
pub(crate) const CORE_DATA_EPOCH: i64 = 978_307_200;

/// Converts Core Data seconds to an instant shown at `offset_seconds` east of UTC, to the millisecond.
///
/// `None` for a NaN/infinite/out-of-range date; an impossible offset (beyond ±24 h) falls back to UTC, because
/// the instant is still right and a wrong wall clock beats dropping the photo.
pub(crate) fn from_core_data(seconds: f64, offset_seconds: i64) -> Option<DateTime<FixedOffset>> {
    if !seconds.is_finite() {
        return None;
    }
    let millis = ((seconds + CORE_DATA_EPOCH as f64) * 1000.0).round();
    if millis.abs() > 8.0e15 {
        return None;
    }
    let instant = DateTime::<Utc>::from_timestamp_millis(millis as i64)?;
    let offset = i32::try_from(offset_seconds)
        .ok()
        .and_then(FixedOffset::east_opt)
        .unwrap_or_else(utc);
    Some(instant.with_timezone(&offset))
}

/// The UTC offset.
pub(crate) fn utc() -> FixedOffset {
    Utc.fix()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_data_seconds_with_offset() {
        // 741787200 s after 2001-01-01 = 2024-07-04T12:00:00Z.
        let t = from_core_data(741_787_200.0, 7200).unwrap();
        assert_eq!(t.to_rfc3339(), "2024-07-04T14:00:00+02:00");
        let t = from_core_data(519_637_736.518, 34200).unwrap();
        assert_eq!(t.timestamp_millis(), (519_637_736_518 + CORE_DATA_EPOCH * 1000));
        assert_eq!(t.offset().local_minus_utc(), 34200);
    }

    #[test]
    fn bad_values_do_not_panic() {
        assert_eq!(from_core_data(f64::NAN, 0), None);
        assert_eq!(from_core_data(1e300, 0), None);
        assert_eq!(
            from_core_data(0.0, 10_000_000)
                .unwrap()
                .offset()
                .local_minus_utc(),
            0
        );
    }
}
