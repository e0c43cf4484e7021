//! Small value types with a fixed textual form.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::patterns;

/// A duration written `500ms`, `30s`, `5m`, `2h` or `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

impl Duration {
    /// The duration as a standard library value.
    pub fn get(self) -> std::time::Duration {
        self.0
    }
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{s}` has no unit (use ms, s, m, h or d)"))?;
        let (digits, unit) = s.split_at(split);
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{s}` does not start with a number"))?;
        let millis = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => {
                return Err(format!(
                    "`{unit}` is not a duration unit (use ms, s, m, h or d)"
                ));
            }
        };
        Ok(Duration(std::time::Duration::from_millis(
            n.saturating_mul(millis),
        )))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms > 0 && ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

/// Implements serde and schemars for a type with a textual form checked by a pattern.
macro_rules! textual {
    ($ty:ty, $name:literal, $pattern:expr, $desc:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = Cow::<str>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "description": $desc,
                })
            }
        }
    };
}

textual!(
    Duration,
    "Duration",
    patterns::DURATION,
    "A duration: a whole number and a unit, `ms`, `s`, `m`, `h` or `d` (`500ms`, `30s`, `5m`, `2h`, `1d`)."
);

/// A plugin reference `name@major`: the plugin's name and the major version
/// of its contract. The published playbook version pins the exact digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PluginRef {
    /// The plugin's name, such as `isolate`.
    pub name: String,
    /// The major version of the plugin the step was written against.
    pub major: u64,
}

impl FromStr for PluginRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, major) = s
            .split_once('@')
            .ok_or_else(|| format!("`{s}` is not `name@major`"))?;
        let major = major
            .parse()
            .map_err(|_| format!("`{major}` is not a major version number"))?;
        if name.is_empty() {
            return Err(format!("`{s}` has no plugin name"));
        }
        Ok(PluginRef {
            name: name.to_string(),
            major,
        })
    }
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.major)
    }
}

textual!(
    PluginRef,
    "PluginRef",
    patterns::PLUGIN_REF,
    "A plugin reference `name@major`, such as `isolate@1`."
);

/// A sub-playbook reference `name@version`, pinned to one exact version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlaybookRef {
    /// The playbook's name.
    pub name: String,
    /// The exact version.
    pub version: semver::Version,
}

impl FromStr for PlaybookRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, version) = s
            .split_once('@')
            .ok_or_else(|| format!("`{s}` is not `name@version`"))?;
        let version = version
            .parse()
            .map_err(|e| format!("`{version}` is not a semantic version: {e}"))?;
        Ok(PlaybookRef {
            name: name.to_string(),
            version,
        })
    }
}

impl fmt::Display for PlaybookRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

textual!(
    PlaybookRef,
    "PlaybookRef",
    patterns::PLAYBOOK_REF,
    "A sub-playbook reference `name@version`, pinned to an exact semantic version, such as `restore-device@1.0.0`."
);

/// A boolean CEL expression, written bare (`inputs.force`) or wrapped
/// (`${{ inputs.force }}`). A plain YAML `true` or `false` is the constant
/// condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Condition(pub String);

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Constant(bool),
        }
        Ok(Condition(match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Constant(b) => b.to_string(),
        }))
    }
}

impl JsonSchema for Condition {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("Condition")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["string", "boolean"],
            "description": "A CEL condition, bare (`inputs.force`) or wrapped (`${{ inputs.force }}`), or the constant `true`/`false`.",
        })
    }
}

/// A string that may embed CEL expressions as `${{ … }}`. A value that is a
/// single `${{ … }}` takes the expression's type; otherwise the parts are
/// joined as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Template(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for (text, ms) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
        ] {
            let d: Duration = text.parse().expect(text);
            assert_eq!(d.get().as_millis(), ms);
            assert_eq!(d.to_string(), text);
        }
        assert!("5".parse::<Duration>().is_err());
        assert!("5w".parse::<Duration>().is_err());
        assert!("m".parse::<Duration>().is_err());
    }

    #[test]
    fn references_parse() {
        let r: PluginRef = "revoke-cert@1".parse().expect("ref");
        assert_eq!((r.name.as_str(), r.major), ("revoke-cert", 1));
        let p: PlaybookRef = "restore-device@1.2.0".parse().expect("ref");
        assert_eq!(p.version, semver::Version::new(1, 2, 0));
        assert!("isolate".parse::<PluginRef>().is_err());
    }
}
