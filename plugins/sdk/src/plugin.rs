//! The trait a plugin implements, and the capabilities it declares.

use std::fmt;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Call, Error};

/// A Cordon plugin. Implement it on a unit struct and pass that struct to
/// [`export_plugin!`](crate::export_plugin).
///
/// The constants become the plugin's descriptor (what `describe` returns);
/// [`export_plugin!`](crate::export_plugin) checks them at compile time
/// (name and connection syntax, version syntax, no duplicate capability, not
/// both compensable and irreversible).
///
/// Every call runs in a fresh instance of the component, so a plugin keeps
/// no state in statics between calls; per-run state goes to
/// [`scratch`](crate::scratch).
pub trait Plugin {
    /// The input, deserialized from the step's `with:`. Derive
    /// `Deserialize` and `JsonSchema`, and add
    /// `#[serde(deny_unknown_fields)]` so that a misspelt field is an error
    /// (the schema then says `additionalProperties: false`).
    type Input: DeserializeOwned + JsonSchema;
    /// The output, the step's `outputs`. Derive `Serialize`, `Deserialize`
    /// (compensation receives it back) and `JsonSchema`.
    type Output: Serialize + DeserializeOwned + JsonSchema;

    /// The name playbooks use in `uses: <name>@<major>`: 1 to 63 characters
    /// from `a-z`, `0-9` and `-`, starting with a letter.
    const NAME: &'static str;
    /// The plugin's semantic version, usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// One or two sentences for operators: what the plugin does to a device.
    const DESCRIPTION: &'static str;
    /// Everything the plugin may use. The host links an interface only for
    /// a capability that is declared here and granted by the operator.
    const CAPABILITIES: &'static [Capability];
    /// Running `execute` twice with the same idempotency key has the effect
    /// of running it once.
    const IDEMPOTENT: bool;
    /// [`Plugin::compensate`] can undo a successful `execute`.
    const COMPENSABLE: bool;
    /// The effect cannot be undone (playbooks must put an approval gate
    /// before the step). Never true together with `COMPENSABLE`.
    const IRREVERSIBLE: bool;

    /// Performs the action, or plans it when `call.dry_run` is true.
    fn execute(call: &Call, input: Self::Input) -> Result<Self::Output, Error>;

    /// Undoes a successful [`Plugin::execute`], given its input and output.
    /// Must be idempotent under `call.idempotency_key`. The default refuses,
    /// which is right for plugins that are not `COMPENSABLE` (the host never
    /// calls them).
    fn compensate(call: &Call, input: Self::Input, output: Self::Output) -> Result<(), Error> {
        let _ = (call, input, output);
        Err(Error::permanent(format!(
            "plugin {} cannot compensate",
            Self::NAME
        )))
    }
}

/// A capability a plugin declares (WIT `types.capability`). Its text form,
/// printed by `Display`, is the one descriptor files and the engine's
/// catalog use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `mqtt:<connection>`: publish and subscribe on this named connection
    /// (links the `mqtt` interface). `"*"` means any MQTT connection the
    /// operator grants to this plugin.
    Mqtt(&'static str),
    /// `http:<connection>`: send requests on this named connection (links
    /// the `http` interface). `"*"` means any HTTP connection the operator
    /// grants to this plugin.
    Http(&'static str),
    /// `inventory:read`: read device records (links `inventory`).
    InventoryRead,
    /// `state:run`: per-run key/value state (links `scratch`).
    StateRun,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::Mqtt(connection) => write!(f, "mqtt:{connection}"),
            Capability::Http(connection) => write!(f, "http:{connection}"),
            Capability::InventoryRead => f.write_str("inventory:read"),
            Capability::StateRun => f.write_str("state:run"),
        }
    }
}
