//! Reading a vendor's "come back later" hint from HTTP response headers, for HTTP adapters.
//!
//! [`from_headers`] understands `retry-after-ms` (milliseconds, OpenAI and others) and
//! `Retry-After` as delay-seconds or as an HTTP-date (RFC 9110: IMF-fixdate, plus the obsolete
//! RFC 850 and asctime forms). A date in the past gives zero. Header names are compared
//! without regard to case. The retry layer treats the result as a floor under its backoff and
//! caps it; adapters only report it ([`Error::with_retry_after`](crate::Error::with_retry_after)).

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

/// The wait a response asks for, if any, relative to `now`.
///
/// ```
/// use merchant_ai::retry_after::from_headers_at;
/// use chrono::{TimeZone, Utc};
/// use std::time::Duration;
/// let now = Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap();
/// assert_eq!(from_headers_at([("Retry-After", "3")], now), Some(Duration::from_secs(3)));
/// assert_eq!(from_headers_at([("retry-after-ms", "250")], now), Some(Duration::from_millis(250)));
/// assert_eq!(
///     from_headers_at([("Retry-After", "Thu, 26 Nov 2026 08:00:05 GMT")], now),
///     Some(Duration::from_secs(5))
/// );
/// ```
pub fn from_headers_at<'a, I>(headers: I, now: DateTime<Utc>) -> Option<Duration>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut seconds_form = None;
    for (name, value) in headers {
        let value = value.trim();
        if name.eq_ignore_ascii_case("retry-after-ms") {
            if let Ok(ms) = value.parse::<f64>()
                && ms.is_finite()
                && ms >= 0.0
            {
                // The millisecond form is the more precise one: it wins.
                return Some(Duration::from_secs_f64(ms / 1000.0));
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            seconds_form = parse_retry_after(value, now).or(seconds_form);
        }
    }
    seconds_form
}

/// [`from_headers_at`] with the current time.
pub fn from_headers<'a, I>(headers: I) -> Option<Duration>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    from_headers_at(headers, Utc::now())
}

/// One `Retry-After` value: delay-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = parse_http_date(v)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// An HTTP-date in any of the three forms RFC 9110 asks recipients to accept.
pub fn parse_http_date(v: &str) -> Option<DateTime<Utc>> {
    // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    if let Ok(d) = DateTime::parse_from_rfc2822(v) {
        return Some(d.with_timezone(&Utc));
    }
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    if let Ok(d) = NaiveDateTime::parse_from_str(v, "%A, %d-%b-%y %H:%M:%S GMT") {
        return Some(d.and_utc());
    }
    // asctime: Sun Nov  6 08:49:37 1994
    let squeezed = v.split_whitespace().collect::<Vec<_>>().join(" ");
    NaiveDateTime::parse_from_str(&squeezed, "%a %b %e %H:%M:%S %Y")
        .ok()
        .map(|d| d.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(1994, 11, 6, 8, 49, 30).unwrap()
    }

    #[test]
    fn all_three_date_forms() {
        for v in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(v, now()),
                Some(Duration::from_secs(7)),
                "{v}"
            );
        }
    }

    #[test]
    fn seconds_ms_past_dates_and_garbage() {
        assert_eq!(parse_retry_after("0", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now()),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("-3", now()), None);
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now()),
            Some(Duration::ZERO)
        );
        let h = [("RETRY-AFTER", "20"), ("Retry-After-Ms", "1500")];
        assert_eq!(from_headers_at(h, now()), Some(Duration::from_millis(1500)));
        assert_eq!(from_headers_at([("x-other", "1")], now()), None);
    }
}
