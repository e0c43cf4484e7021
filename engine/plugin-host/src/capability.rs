//! Capabilities: what a plugin declares it needs, what the operator grants
//! it, and what it finally gets (the intersection).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One capability, in the text form of the WIT contract (`types.capability`):
/// `mqtt:<connection>`, `http:<connection>`, `inventory:read`, `state:run`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Publish and subscribe on a named MQTT connection (`*`: any granted one).
    Mqtt(String),
    /// Send requests on a named HTTP connection (`*`: any granted one).
    Http(String),
    /// Read device records.
    InventoryRead,
    /// Per-run scratch state.
    StateRun,
}

/// The WIT interface a capability links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Interface {
    /// `cordon:plugin/mqtt`
    Mqtt,
    /// `cordon:plugin/http`
    Http,
    /// `cordon:plugin/inventory`
    Inventory,
    /// `cordon:plugin/scratch`
    Scratch,
}

impl Interface {
    /// The interface's name inside the `cordon:plugin` package.
    pub fn name(self) -> &'static str {
        match self {
            Interface::Mqtt => "mqtt",
            Interface::Http => "http",
            Interface::Inventory => "inventory",
            Interface::Scratch => "scratch",
        }
    }
}

impl Capability {
    /// The interface this capability links into the plugin.
    pub fn interface(&self) -> Interface {
        match self {
            Capability::Mqtt(_) => Interface::Mqtt,
            Capability::Http(_) => Interface::Http,
            Capability::InventoryRead => Interface::Inventory,
            Capability::StateRun => Interface::Scratch,
        }
    }

    /// Whether a declared capability (which may name the connection `*`)
    /// covers a granted one. The operator always names connections.
    fn covers(&self, granted: &Capability) -> bool {
        match (self, granted) {
            (Capability::Mqtt(d), Capability::Mqtt(g))
            | (Capability::Http(d), Capability::Http(g)) => d == "*" || d == g,
            _ => self == granted,
        }
    }
}

/// A connection name: `[a-z][a-z0-9-]{0,62}`.
pub fn valid_connection_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::Mqtt(c) => write!(f, "mqtt:{c}"),
            Capability::Http(c) => write!(f, "http:{c}"),
            Capability::InventoryRead => f.write_str("inventory:read"),
            Capability::StateRun => f.write_str("state:run"),
        }
    }
}

/// A capability's text form did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a capability (expected mqtt:<connection>, http:<connection>, inventory:read or state:run)"
)]
pub struct BadCapability(pub String);

impl FromStr for Capability {
    type Err = BadCapability;

    fn from_str(text: &str) -> Result<Capability, BadCapability> {
        let bad = || BadCapability(text.to_string());
        match text {
            "inventory:read" => return Ok(Capability::InventoryRead),
            "state:run" => return Ok(Capability::StateRun),
            _ => {}
        }
        let (kind, connection) = text.split_once(':').ok_or_else(bad)?;
        if connection != "*" && !valid_connection_name(connection) {
            return Err(bad());
        }
        match kind {
            "mqtt" => Ok(Capability::Mqtt(connection.to_string())),
            "http" => Ok(Capability::Http(connection.to_string())),
            _ => Err(bad()),
        }
    }
}

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Capability, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What one plugin may really use: its declared capabilities intersected
/// with the operator's grants. Connections are always named here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effective {
    granted: BTreeSet<Capability>,
}

impl Effective {
    /// The intersection of what a plugin declares and what it is granted.
    pub fn new(declared: &[Capability], granted: &BTreeSet<Capability>) -> Effective {
        let granted = granted
            .iter()
            .filter(|g| declared.iter().any(|d| d.covers(g)))
            .cloned()
            .collect();
        Effective { granted }
    }

    /// Nothing at all (for `describe`).
    pub fn none() -> Effective {
        Effective::default()
    }

    /// The interfaces to link.
    pub fn interfaces(&self) -> BTreeSet<Interface> {
        self.granted.iter().map(Capability::interface).collect()
    }

    /// Whether a call on `connection` of this interface is allowed.
    pub fn allows_connection(&self, interface: Interface, connection: &str) -> bool {
        self.granted.iter().any(|g| match g {
            Capability::Mqtt(c) => interface == Interface::Mqtt && c == connection,
            Capability::Http(c) => interface == Interface::Http && c == connection,
            _ => false,
        })
    }

    /// The effective capabilities, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &Capability> {
        self.granted.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip_and_bad_ones_are_refused() {
        for text in ["mqtt:fleet-broker", "http:*", "inventory:read", "state:run"] {
            let cap: Capability = text.parse().expect(text);
            assert_eq!(cap.to_string(), text);
        }
        for text in [
            "mqtt:",
            "mqtt:Fleet",
            "ftp:x",
            "inventory",
            "http:-x",
            "mqtt:a/b",
        ] {
            assert!(text.parse::<Capability>().is_err(), "{text} parsed");
        }
    }

    #[test]
    fn effective_grants_are_the_intersection() {
        let declared: Vec<Capability> = ["mqtt:fleet", "http:*", "state:run"]
            .iter()
            .map(|t| t.parse().expect("cap"))
            .collect();
        let granted: BTreeSet<Capability> =
            ["mqtt:fleet", "mqtt:other", "http:ca", "inventory:read"]
                .iter()
                .map(|t| t.parse().expect("cap"))
                .collect();
        let effective = Effective::new(&declared, &granted);
        let names: Vec<String> = effective.iter().map(ToString::to_string).collect();
        // mqtt:other is granted but not declared; inventory:read likewise;
        // state:run is declared but not granted.
        assert_eq!(names, ["mqtt:fleet", "http:ca"]);
        assert!(effective.allows_connection(Interface::Mqtt, "fleet"));
        assert!(!effective.allows_connection(Interface::Mqtt, "other"));
        assert!(!effective.allows_connection(Interface::Http, "fleet"));
        assert_eq!(
            effective.interfaces().into_iter().collect::<Vec<_>>(),
            [Interface::Mqtt, Interface::Http]
        );
    }
}
