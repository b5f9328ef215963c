//! Wall-clock time as stored and sent by every Phirepass service.

/// Milliseconds since the unix epoch (0 if the clock is before it, `i64::MAX`
/// past year 292 million).
pub fn now_millis() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_is_after_2024() {
        assert!(super::now_millis() > 1_704_067_200_000);
    }
}
