//! Reading a delivery's body into alerts, whatever the source's format:
//! Alertmanager v4 and Grafana natively (Grafana's is a superset of
//! Alertmanager's, so one reader with optional fields covers both), any
//! JSON through a mapping of JSON Pointers. Anything else is a
//! [`PayloadError`] (400 `invalid_webhook_payload`), never a panic.

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::config::{Format, JsonMapping};

/// Firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// The condition holds: start runs.
    Firing,
    /// It no longer holds: record, and start the follow-up if any.
    Resolved,
}

impl Status {
    /// `firing` or `resolved`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Alert {
    /// Its status.
    pub(crate) status: Status,
    /// Its stable identity (Alertmanager's `fingerprint`, the mapped
    /// field, or a digest of its labels).
    pub(crate) fingerprint: String,
    /// When this episode of it started, if the sender says (a new episode
    /// after a resolution is a new alert; repeats keep it).
    pub(crate) starts_at: Option<String>,
    /// The alert as expressions read it (`alert.labels.device`).
    pub(crate) value: Value,
}

impl Alert {
    /// The labels object, or an empty one.
    pub(crate) fn labels(&self) -> Value {
        self.value
            .get("labels")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()))
    }
}

/// A delivery's alerts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Delivery {
    /// Alertmanager's `groupKey` (Grafana's too); `None` for generic JSON.
    pub(crate) group_key: Option<String>,
    /// The alerts, in the order sent.
    pub(crate) alerts: Vec<Alert>,
}

/// Why a body is not a delivery of its source's format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct PayloadError(pub(crate) String);

fn bad(message: impl Into<String>) -> PayloadError {
    PayloadError(message.into())
}

/// The most alerts one delivery may carry.
pub(crate) const MAX_ALERTS: usize = 1000;

/// Reads `body` as `format`.
pub(crate) fn parse(
    format: Format,
    mapping: Option<&JsonMapping>,
    body: &[u8],
) -> Result<Delivery, PayloadError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    match format {
        Format::Alertmanager => alertmanager(&value, true),
        Format::Grafana => alertmanager(&value, false),
        Format::Json => json(&value, mapping.cloned().unwrap_or_default()),
    }
}

/// A digest of the labels, for senders that give no fingerprint.
fn labels_fingerprint(labels: &Value) -> String {
    // serde_json's maps are sorted, so the text is canonical enough for identity.
    let digest = Sha256::digest(labels.to_string().as_bytes());
    format!("labels:{}", hex::encode(&digest[..16]))
}

fn alertmanager(value: &Value, strict: bool) -> Result<Delivery, PayloadError> {
    let object = value
        .as_object()
        .ok_or_else(|| bad("the body must be a JSON object with `alerts`"))?;
    if strict {
        match object.get("version").and_then(Value::as_str) {
            Some("4") => {}
            Some(other) => {
                return Err(bad(format!(
                    "Alertmanager webhook version `{other}` is not supported (only \"4\")"
                )));
            }
            None => return Err(bad("`version` is missing (Alertmanager sends \"4\")")),
        }
    }
    let group_key = match object.get("groupKey") {
        Some(Value::String(key)) => Some(key.clone()),
        None | Some(Value::Null) if !strict => None,
        _ => return Err(bad("`groupKey` must be a string")),
    };
    let alerts = object
        .get("alerts")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`alerts` must be a list"))?;
    if alerts.len() > MAX_ALERTS {
        return Err(bad(format!(
            "more than {MAX_ALERTS} alerts in one delivery"
        )));
    }
    let alerts = alerts
        .iter()
        .enumerate()
        .map(|(i, alert)| {
            let at = |what: &str| bad(format!("`alerts[{i}]`: {what}"));
            let fields = alert.as_object().ok_or_else(|| at("not an object"))?;
            let status = match fields.get("status").and_then(Value::as_str) {
                Some("firing") => Status::Firing,
                Some("resolved") => Status::Resolved,
                _ => return Err(at("`status` must be `firing` or `resolved`")),
            };
            let labels = fields
                .get("labels")
                .filter(|l| l.is_object())
                .ok_or_else(|| at("`labels` must be an object"))?;
            let fingerprint = match fields.get("fingerprint") {
                Some(Value::String(f)) if !f.is_empty() => f.clone(),
                _ if strict => return Err(at("`fingerprint` must be a non-empty string")),
                _ => labels_fingerprint(labels),
            };
            let starts_at = fields
                .get("startsAt")
                .and_then(Value::as_str)
                .map(str::to_string);
            Ok(Alert {
                status,
                fingerprint,
                starts_at,
                value: alert.clone(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Delivery { group_key, alerts })
}

fn pointer<'a>(value: &'a Value, pointer: &str, what: &str) -> Result<&'a Value, PayloadError> {
    if pointer.is_empty() {
        return Ok(value);
    }
    value
        .pointer(pointer)
        .ok_or_else(|| bad(format!("nothing at `{pointer}` ({what})")))
}

fn json(value: &Value, mapping: JsonMapping) -> Result<Delivery, PayloadError> {
    let alerts: Vec<&Value> = match &mapping.alerts {
        Some(at) => pointer(value, at, "the alerts")?
            .as_array()
            .ok_or_else(|| bad(format!("`{at}` must be a list of alerts")))?
            .iter()
            .collect(),
        None => vec![value],
    };
    if alerts.len() > MAX_ALERTS {
        return Err(bad(format!(
            "more than {MAX_ALERTS} alerts in one delivery"
        )));
    }
    let resolved: Vec<String> = if mapping.resolved.is_empty() {
        vec!["resolved".to_string()]
    } else {
        mapping.resolved.clone()
    };
    let labels_at = mapping.labels.as_deref().unwrap_or("/labels");
    let alerts = alerts
        .into_iter()
        .enumerate()
        .map(|(i, alert)| {
            if !alert.is_object() {
                return Err(bad(format!("alert {i} is not an object")));
            }
            let labels = match alert.pointer(labels_at) {
                Some(labels @ Value::Object(_)) => labels.clone(),
                Some(_) => return Err(bad(format!("alert {i}: `{labels_at}` is not an object"))),
                None => alert.clone(),
            };
            let status = match &mapping.status {
                None => Status::Firing,
                Some(at) => match alert.pointer(at).and_then(Value::as_str) {
                    Some(s) if resolved.iter().any(|r| r == s) => Status::Resolved,
                    Some(_) => Status::Firing,
                    None => return Err(bad(format!("alert {i}: no status text at `{at}`"))),
                },
            };
            let fingerprint = match &mapping.fingerprint {
                Some(at) => match alert.pointer(at) {
                    Some(Value::String(s)) if !s.is_empty() => s.clone(),
                    Some(v @ Value::Number(_)) => v.to_string(),
                    _ => return Err(bad(format!("alert {i}: no identity at `{at}`"))),
                },
                None => labels_fingerprint(&labels),
            };
            let mut shaped = alert.clone();
            if let Value::Object(fields) = &mut shaped {
                fields.insert("labels".into(), labels);
                fields.insert("status".into(), Value::from(status.as_str()));
                fields
                    .entry("fingerprint")
                    .or_insert_with(|| Value::from(fingerprint.clone()));
            }
            Ok(Alert {
                status,
                fingerprint,
                starts_at: None,
                value: shaped,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Delivery {
        group_key: None,
        alerts,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn alertmanager_v4_is_read_and_anything_else_refused() {
        let body = json!({"version": "4", "groupKey": "{}:{alertname=\"X\"}", "status": "firing",
            "alerts": [{"status": "firing", "labels": {"alertname": "X", "device": "plc-1"},
                "annotations": {}, "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "abc"}]});
        let d = parse(Format::Alertmanager, None, body.to_string().as_bytes()).expect("v4");
        assert_eq!(d.alerts[0].fingerprint, "abc");
        assert_eq!(d.alerts[0].status, Status::Firing);
        assert_eq!(d.alerts[0].labels()["device"], "plc-1");
        for broken in [
            "not json",
            "[]",
            r#"{"version":"3","groupKey":"g","alerts":[]}"#,
            r#"{"version":"4","groupKey":"g","alerts":[{"status":"odd","labels":{},"fingerprint":"f"}]}"#,
            r#"{"version":"4","groupKey":"g","alerts":[{"status":"firing","labels":{}}]}"#,
            r#"{"version":"4","groupKey":1,"alerts":[]}"#,
        ] {
            assert!(
                parse(Format::Alertmanager, None, broken.as_bytes()).is_err(),
                "{broken}"
            );
        }
    }

    #[test]
    fn generic_json_follows_its_mapping() {
        let mapping = JsonMapping {
            alerts: Some("/findings".into()),
            labels: Some("/tags".into()),
            fingerprint: Some("/id".into()),
            status: Some("/state".into()),
            resolved: vec!["closed".into()],
        };
        let body = json!({"findings": [
            {"id": 7, "state": "open", "tags": {"device": "plc-2"}},
            {"id": "x", "state": "closed", "tags": {"device": "plc-3"}}]});
        let d = parse(Format::Json, Some(&mapping), body.to_string().as_bytes()).expect("json");
        assert_eq!(d.alerts[0].fingerprint, "7");
        assert_eq!(d.alerts[0].value["labels"]["device"], "plc-2");
        assert_eq!(d.alerts[1].status, Status::Resolved);
        assert!(parse(Format::Json, Some(&mapping), br#"{"findings": 3}"#).is_err());
    }
}
