//! `cordon:plugin/intent`: a plugin declares the side effects it is about
//! to have; they make a dry run's plan and an attempt's audit record.

use crate::bindings::HostError;
use crate::bindings::intent::Host;
use crate::host::{HostState, Intent, sanitise};

/// The largest `detail` accepted.
const DETAIL_BYTES: usize = 16 << 10;

impl Host for HostState {
    async fn declare(
        &mut self,
        kind: String,
        target: String,
        detail: String,
    ) -> wasmtime::Result<Result<(), HostError>> {
        if self.record.intents.len() >= self.context.limits.intents {
            return Ok(Err(HostError::Invalid(
                "too many intents in one attempt".into(),
            )));
        }
        if kind.is_empty()
            || kind.len() > 64
            || !kind.split('.').all(|w| {
                !w.is_empty()
                    && w.bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_')
            })
        {
            return Ok(Err(HostError::Invalid(format!(
                "intent kind `{}` is not lowercase words joined by `.`",
                sanitise(&kind, 64)
            ))));
        }
        if detail.len() > DETAIL_BYTES {
            return Ok(Err(HostError::Invalid(format!(
                "intent detail over {DETAIL_BYTES} bytes"
            ))));
        }
        let detail: serde_json::Value = match serde_json::from_str(&detail) {
            Ok(value @ serde_json::Value::Object(_)) => value,
            _ => {
                return Ok(Err(HostError::Invalid(
                    "intent detail is not a JSON object".into(),
                )));
            }
        };
        self.record.intents.push(Intent {
            kind,
            target: sanitise(&target, 256),
            detail,
            by_host: false,
        });
        Ok(Ok(()))
    }
}
