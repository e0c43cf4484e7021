//! Durations written as in playbooks: `500ms`, `30s`, `2m`, `1h`, `1d`.

use std::time::Duration;

use cordon_plugin_sdk::Error;

/// Parses `<digits><unit>`; the input schemas already restrict the form, so
/// an error here names the field for the rare input that slips through.
pub fn parse(field: &str, text: &str) -> Result<Duration, Error> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| Error::permanent(format!("{field}: `{text}` is not a duration")))?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    }
    .ok_or_else(|| Error::permanent(format!("{field}: `{text}` is not a duration")))?;
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_refuses_the_rest() {
        assert_eq!(parse("t", "250ms").ok(), Some(Duration::from_millis(250)));
        assert_eq!(parse("t", "2m").ok(), Some(Duration::from_secs(120)));
        assert_eq!(parse("t", "1d").ok(), Some(Duration::from_secs(86_400)));
        for bad in ["", "m", "5", "5w", "-1s", "1.5s"] {
            assert!(parse("t", bad).is_err(), "{bad}");
        }
    }
}
