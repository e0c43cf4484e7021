//! Per-step execution policy: fan-out, retries, failure handling, compensation.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::playbook::{is_false, is_true, yes};
use super::{Duration, Template};

/// Runs a step once per item, in rollout waves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Foreach {
    /// The items: a list, or an expression such as `${{ inventory.select("tag=line-3") }}`. Each is `item` in the step.
    pub items: ForeachItems,
    /// The most items in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub concurrency: Option<u32>,
    /// Rollout waves as cumulative counts or percentages (`[1, 10%, 100%]`):
    /// each wave starts only when the previous one finished within the failure threshold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<Amount>,
    /// The rollout stops (and the step fails) once more items than this have failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<Amount>,
    /// How long to wait between waves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Duration>,
}

/// The items of a `foreach`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ForeachItems {
    /// A literal list.
    List(Vec<Value>),
    /// An expression that yields a list.
    Expression(Template),
}

/// A count (`3`) or a percentage of the items (`10%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// A number of items.
    Count(u32),
    /// A percentage of all items, 0 to 100.
    Percent(u8),
}

impl Amount {
    /// The amount for `total` items (percentages round up, so `1%` of 10 is 1).
    pub fn of(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => usize::try_from(n).unwrap_or(usize::MAX).min(total),
            Amount::Percent(p) => (total * usize::from(p)).div_ceil(100),
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Count(n) => write!(f, "{n}"),
            Amount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl FromStr for Amount {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_suffix('%') {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= 100)
                .map(Amount::Percent)
                .ok_or_else(|| format!("`{s}` is not a percentage from 0% to 100%")),
            None => s
                .parse()
                .map(Amount::Count)
                .map_err(|_| format!("`{s}` is not a count or a percentage")),
        }
    }
}

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Amount::Count(n) => serializer.serialize_u32(*n),
            Amount::Percent(_) => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u32),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Count(n) => Ok(Amount::Count(n)),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl JsonSchema for Amount {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Amount".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A count of items (`3`) or a percentage of them (`10%`).",
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": u32::MAX},
                {"type": "string", "pattern": super::patterns::PERCENT}
            ]
        })
    }
}

/// Retries of a failed attempt. Only errors the plugin marks transient are retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// The most attempts in all, the first included.
    #[schemars(range(min = 1, max = 100))]
    pub attempts: u32,
    /// The wait before the second attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Duration>,
    /// Each further wait is the previous one times this factor (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0, max = 10.0))]
    pub factor: Option<f64>,
    /// The longest wait between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<Duration>,
}

/// What happens when a step fails for good (after its retries).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepFailurePolicy {
    /// Keep the run going: steps that need this one are skipped, independent branches carry on,
    /// and the run can still succeed. Default `false`: the run fails.
    #[serde(default, rename = "continue", skip_serializing_if = "is_false")]
    pub continue_run: bool,
    /// Handler steps (declared with `handler: true`) to run when this step fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handlers: Vec<String>,
}

/// How a step is undone when the run fails or is cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Compensation {
    /// Undo this step if it completed (default `true` for compensable plugins).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// The longest the undo may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}
