//! Declarations of side effects for dry-run plans and the audit trail (WIT
//! interface `intent`). Needs no capability.

use serde::Serialize;

use crate::Error;
use crate::bindings::cordon::plugin::intent as wit;

/// Declares a side effect the plugin is about to have, or would have in a
/// dry run. In a real run, declare before acting, so that an attempt cut
/// short still shows what it was about to do.
///
/// - `kind`: lowercase words joined by `.`, such as `broker.quarantine`;
/// - `target`: what it acts on, such as a device id;
/// - `detail`: the parameters a reviewer needs; must serialize to a JSON
///   object (`serde_json::json!({})` for none).
///
/// Fails (permanently) if `detail` is not an object, or with the host's
/// [`HostError::Invalid`](crate::HostError::Invalid) past its limits.
pub fn declare<T: Serialize + ?Sized>(kind: &str, target: &str, detail: &T) -> Result<(), Error> {
    let detail = serde_json::to_value(detail)
        .map_err(|error| Error::permanent(format!("intent detail does not serialize: {error}")))?;
    if !detail.is_object() {
        return Err(Error::permanent(format!(
            "intent detail must be a JSON object, not {detail}"
        )));
    }
    wit::declare(kind, target, &detail.to_string()).map_err(crate::HostError::from)?;
    Ok(())
}
