//! `noop`: does nothing and echoes its input's `message`.
//!
//! The baseline for the host's "instantiate and call" benchmark and the
//! simplest end-to-end check of the contract. It declares no capability and
//! calls no host interface, so its component imports only
//! `cordon:plugin/types` (types, no functions) and the WASI interfaces that
//! Rust's standard library needs. It is compensable (compensation does
//! nothing), so compensation paths can be tested with a real component too.

#![forbid(unsafe_code)]

use cordon_plugin_sdk::{Call, Capability, Error, Plugin, export_plugin};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The step's input.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Returned as is in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The step's output.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct Output {
    /// The input's `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The plugin.
#[derive(Debug)]
pub struct Noop;

impl Plugin for Noop {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "noop";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Does nothing and returns the input's message; a baseline for benchmarks and tests.";
    const CAPABILITIES: &'static [Capability] = &[];
    const IDEMPOTENT: bool = true;
    const COMPENSABLE: bool = true;
    const IRREVERSIBLE: bool = false;

    fn execute(_call: &Call, input: Input) -> Result<Output, Error> {
        Ok(Output {
            message: input.message,
        })
    }

    fn compensate(_call: &Call, _input: Input, _output: Output) -> Result<(), Error> {
        Ok(())
    }
}

export_plugin!(Noop);
