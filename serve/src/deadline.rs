//! The call's deadline: the `grpc-timeout` request header, capped by `--max-call-duration`. The
//! call gate holds every call to it, streams included (see `gate`).

use std::time::Duration;

use tokio::time::Instant;
use tonic::Status;

/// When a call that arrived at `now` must end: the client's deadline, if any, capped by the
/// server's longest call, if any.
pub(crate) fn capped(
    client: Option<Instant>,
    max_call_duration: Option<Duration>,
    now: Instant,
) -> Option<Instant> {
    let server = max_call_duration.map(|limit| now + limit);
    match (client, server) {
        (Some(client), Some(server)) => Some(client.min(server)),
        (client, server) => client.or(server),
    }
}

/// Parses `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n).
pub(crate) fn parse_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The status a call ends with when its deadline passes.
pub(crate) fn exceeded() -> Status {
    Status::deadline_exceeded("deadline exceeded before the call completed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
    }

    #[test]
    fn rejects_malformed_values() {
        for value in ["", "S", "5", "123456789S", "5s", "-5S", "5 S", "1.5S"] {
            assert_eq!(parse_timeout(value), None, "{value:?}");
        }
    }
}
