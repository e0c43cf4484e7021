//! Addresses and header values, checked before they reach a header: a line
//! break in either would let a value add headers of its own (header
//! injection), so it is refused, never cleaned up.

use lettre::message::Mailbox;

/// Parses one mailbox (`a@example.org` or `Name <a@example.org>`), or says
/// why it is not one.
pub(crate) fn mailbox(text: &str) -> Result<Mailbox, String> {
    if text.contains(['\r', '\n']) {
        return Err("it contains a line break (header injection)".into());
    }
    if text.chars().any(char::is_control) {
        return Err("it contains a control character".into());
    }
    let trimmed = text.trim();
    if let Some((kind @ ("group" | "role"), _)) = trimmed.split_once(':') {
        // SPEC §3.1 lets `notify.to` name groups and roles; the executor
        // expands them through the configured users (`Recipients`) before
        // a mail is built, so one that reaches here names nobody known.
        return Err(format!(
            "a {kind} is not an address; it must name a {kind} of the configured users"
        ));
    }
    trimmed.parse::<Mailbox>().map_err(|e| e.to_string())
}

/// Checks a header value (a subject): one line, no control characters.
pub(crate) fn header_value(what: &str, text: &str) -> Result<(), String> {
    if text.contains(['\r', '\n']) {
        return Err(format!(
            "the {what} contains a line break (header injection)"
        ));
    }
    // A tab is folding whitespace, harmless in a header; other controls are not.
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!("the {what} contains a control character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_with_and_without_names_parse() {
        let m = mailbox("Cordon <cordon@example.org>").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.email.to_string(), "cordon@example.org");
        assert_eq!(m.name.as_deref(), Some("Cordon"));
        let m = mailbox(" soc@example.org ").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.email.to_string(), "soc@example.org");
    }

    #[test]
    fn line_breaks_controls_groups_and_garbage_are_refused() {
        for (text, why) in [
            ("a@example.org\r\nBcc: evil@example.org", "line break"),
            ("a@example.org\nX: y", "line break"),
            ("a@exa\u{0}mple.org", "control character"),
            ("group:oncall", "is not an address"),
            ("role:security-lead", "is not an address"),
            ("not an address", ""),
            ("", ""),
        ] {
            match mailbox(text) {
                Ok(m) => panic!("{text:?} accepted as {m}"),
                Err(e) => assert!(e.contains(why), "{text:?}: {e}"),
            }
        }
    }

    #[test]
    fn header_values_are_one_line() {
        assert!(header_value("subject", "Run r-1 failed").is_ok());
        let e = header_value("subject", "x\r\nBcc: evil@example.org").err();
        assert!(e.is_some_and(|e| e.contains("header injection")));
        assert!(header_value("subject", "tab\there").is_ok());
        assert!(header_value("subject", "bell\u{7}").is_err());
    }
}
