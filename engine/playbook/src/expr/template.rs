//! Finding `${{ … }}` in strings.

/// One `${{ … }}` expression inside a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// The expression between the braces, trimmed.
    pub source: &'a str,
    /// Byte offset of `${{` in the string.
    pub offset: usize,
}

/// A template that cannot be split into text and expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset of the `${{` that is never closed.
    pub offset: usize,
}

const OPEN: &str = "${{";
const CLOSE: &str = "}}";

/// The expressions embedded in `text`, in order.
pub fn segments(text: &str) -> Result<Vec<Segment<'_>>, TemplateError> {
    let mut found = Vec::new();
    let mut rest = 0;
    while let Some(start) = text[rest..].find(OPEN).map(|i| i + rest) {
        let body = start + OPEN.len();
        let end = text[body..]
            .find(CLOSE)
            .map(|i| i + body)
            .ok_or(TemplateError { offset: start })?;
        found.push(Segment {
            source: text[body..end].trim(),
            offset: start,
        });
        rest = end + CLOSE.len();
    }
    Ok(found)
}

/// The expression, when `text` is exactly one `${{ … }}` (its value then
/// keeps the expression's type instead of becoming text).
pub fn whole_expression(text: &str) -> Option<&str> {
    let trimmed = text.trim();
    let inner = trimmed.strip_prefix(OPEN)?.strip_suffix(CLOSE)?;
    (!inner.contains(OPEN) && !inner.contains(CLOSE)).then(|| inner.trim())
}

/// The CEL source of a condition, which may be written bare or wrapped.
pub fn condition_source(text: &str) -> &str {
    whole_expression(text).unwrap_or(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_expression() {
        let found = segments("isolate ${{ inputs.device }} at ${{run.id}}").expect("ok");
        assert_eq!(
            found.iter().map(|s| s.source).collect::<Vec<_>>(),
            ["inputs.device", "run.id"]
        );
        assert_eq!(found[0].offset, 8);
    }

    #[test]
    fn unterminated_is_an_error() {
        assert_eq!(
            segments("a ${{ inputs.x").expect_err("unterminated").offset,
            2
        );
    }

    #[test]
    fn whole_expressions() {
        assert_eq!(whole_expression(" ${{ item.id }} "), Some("item.id"));
        assert_eq!(whole_expression("x-${{ item.id }}"), None);
        assert_eq!(whole_expression("${{ a }}-${{ b }}"), None);
        assert_eq!(condition_source("inputs.force"), "inputs.force");
    }
}
