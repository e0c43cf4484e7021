//! Inventory selectors: `tag=line-3,site=plant-a,criticality>=high`.
//!
//! Used in `inventory.select("…")` inside expressions. The validator checks
//! literal selectors; the inventory (a later crate) evaluates them.

use std::fmt;
use std::str::FromStr;

/// A conjunction of conditions on inventory records; `*` selects every device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Every term must hold. Empty means every device.
    pub terms: Vec<SelectorTerm>,
}

/// One condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorTerm {
    /// The inventory field.
    pub field: SelectorField,
    /// The comparison.
    pub op: SelectorOp,
    /// The value compared against (for `tag`, a tag the device must carry).
    pub value: String,
}

/// The inventory fields a selector can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorField {
    /// The device id.
    Id,
    /// The device type (`plc`, `gateway`, `sensor`…).
    Type,
    /// The site.
    Site,
    /// One of the device's tags.
    Tag,
    /// The criticality, ordered low < medium < high < critical.
    Criticality,
    /// The owner.
    Owner,
    /// The firmware version.
    Firmware,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>=` (criticality only)
    Ge,
    /// `>` (criticality only)
    Gt,
    /// `<=` (criticality only)
    Le,
    /// `<` (criticality only)
    Lt,
}

/// Device criticality, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Criticality {
    /// Loss is an inconvenience.
    Low,
    /// Loss degrades a process.
    Medium,
    /// Loss stops a process.
    High,
    /// Loss endangers safety.
    Critical,
}

impl FromStr for Criticality {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "low" => Criticality::Low,
            "medium" => Criticality::Medium,
            "high" => Criticality::High,
            "critical" => Criticality::Critical,
            _ => return Err(()),
        })
    }
}

/// Why a selector does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError(pub String);

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, SelectorError> {
        let s = s.trim();
        if s == "*" {
            return Ok(Selector { terms: Vec::new() });
        }
        if s.is_empty() {
            return Err(SelectorError(
                "the selector is empty (use `*` for every device)".into(),
            ));
        }
        s.split(',')
            .map(parse_term)
            .collect::<Result<_, _>>()
            .map(|terms| Selector { terms })
    }
}

fn parse_term(term: &str) -> Result<SelectorTerm, SelectorError> {
    let term = term.trim();
    // Longest operators first, so `>=` is not read as `>`.
    let (at, op, len) = [
        (">=", SelectorOp::Ge),
        ("<=", SelectorOp::Le),
        ("!=", SelectorOp::Ne),
        ("=", SelectorOp::Eq),
        (">", SelectorOp::Gt),
        ("<", SelectorOp::Lt),
    ]
    .iter()
    .filter_map(|(text, op)| term.find(text).map(|at| (at, *op, text.len())))
    .min_by_key(|(at, _, len)| (*at, usize::MAX - len))
    .ok_or_else(|| SelectorError(format!("`{term}` has no comparison (`=`, `!=`, `>=`…)")))?;
    let name = term[..at].trim();
    let value = term[at + len..].trim();
    let field = match name {
        "id" => SelectorField::Id,
        "type" => SelectorField::Type,
        "site" => SelectorField::Site,
        "tag" => SelectorField::Tag,
        "criticality" => SelectorField::Criticality,
        "owner" => SelectorField::Owner,
        "firmware" => SelectorField::Firmware,
        "" => {
            return Err(SelectorError(format!(
                "`{term}` has no field before the comparison"
            )));
        }
        other => {
            return Err(SelectorError(format!(
                "`{other}` is not an inventory field (id, type, site, tag, criticality, owner, firmware)"
            )));
        }
    };
    if value.is_empty() {
        return Err(SelectorError(format!(
            "`{term}` has no value after the comparison"
        )));
    }
    let ordered = matches!(
        op,
        SelectorOp::Ge | SelectorOp::Gt | SelectorOp::Le | SelectorOp::Lt
    );
    if ordered && field != SelectorField::Criticality {
        return Err(SelectorError(format!(
            "`{name}` cannot be ordered; only `criticality` takes `<`, `<=`, `>`, `>=`"
        )));
    }
    if field == SelectorField::Criticality && value.parse::<Criticality>().is_err() {
        return Err(SelectorError(format!(
            "`{value}` is not a criticality (low, medium, high, critical)"
        )));
    }
    Ok(SelectorTerm {
        field,
        op,
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_examples() {
        for s in [
            "tag=line-3",
            "criticality>=high",
            "site=plant-a",
            "site=plant-a, type!=gateway",
            "*",
        ] {
            assert!(s.parse::<Selector>().is_ok(), "{s}");
        }
        let sel: Selector = "criticality>=high".parse().expect("ok");
        assert_eq!(sel.terms[0].op, SelectorOp::Ge);
    }

    #[test]
    fn rejects_nonsense() {
        for s in [
            "",
            "line-3",
            "colour=red",
            "site>=a",
            "criticality>=extreme",
            "tag=",
        ] {
            assert!(s.parse::<Selector>().is_err(), "{s}");
        }
    }
}
