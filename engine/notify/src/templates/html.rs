//! The HTML side of the templates: escaping and the page around a body.
//! Every value that reaches HTML goes through [`escape`], including the
//! ones that look harmless (ids, digests): the rule is simpler to keep
//! than a list of exceptions.

use std::borrow::Cow;

/// Escapes `&`, `<`, `>`, `"` and `'`: safe in element text and in a
/// quoted attribute alike.
pub(super) fn escape(text: &str) -> Cow<'_, str> {
    html_escape::encode_quoted_attribute(text)
}

/// Escaped text whose line breaks stay line breaks.
pub(super) fn escape_lines(text: &str) -> String {
    text.lines()
        .map(|line| escape(line).into_owned())
        .collect::<Vec<_>>()
        .join("<br>\n")
}

/// A link to `url` labelled `label`, as a button. Only `https://` and
/// `http://` URLs become links: anything else (`javascript:`, `data:`) is
/// shown as text, never made clickable.
pub(super) fn button(url: &str, label: &str) -> String {
    if is_web_url(url) {
        format!(
            "<p><a href=\"{}\" style=\"display:inline-block;padding:10px 18px;background:#1f4e8c;color:#ffffff;text-decoration:none;border-radius:4px;\">{}</a></p>\n<p style=\"font-size:12px;color:#555555;\">{}</p>",
            escape(url),
            escape(label),
            escape(url)
        )
    } else {
        format!("<p><code>{}</code></p>", escape(url))
    }
}

/// Whether `url` is a web address a mail may link to.
pub(super) fn is_web_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// A whole HTML document around `body` (inline styles only: mail clients
/// drop style sheets).
pub(super) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n</head>\n<body style=\"font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;line-height:1.5;color:#1a1a1a;max-width:720px;\">\n{body}\n<p style=\"font-size:12px;color:#555555;\">Sent by Cordon.</p>\n</body>\n</html>\n",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#x27;x&#x27;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(escape_lines("a<b\nc&d"), "a&lt;b<br>\nc&amp;d");
    }

    #[test]
    fn only_web_urls_become_links() {
        assert!(
            button("https://cordon.example/a?x=1&y=2", "Open")
                .contains("href=\"https://cordon.example/a?x=1&amp;y=2\"")
        );
        for url in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<b>x</b>",
            "https://ok.example/\" onclick=\"x",
        ] {
            let html = button(url, "Open");
            assert!(!html.contains("href"), "{url}: {html}");
        }
    }
}
