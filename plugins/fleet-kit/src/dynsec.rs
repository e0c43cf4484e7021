//! A client of Mosquitto's dynamic-security API, over the host's MQTT
//! connection: one command document published on
//! `$CONTROL/dynamic-security/v1`, one response document on
//! `$CONTROL/dynamic-security/v1/response`.
//!
//! Mosquitto publishes every response on that one topic without copying the
//! MQTT 5 correlation data, so when several steps talk to the broker at once
//! a request may be answered with another caller's response. Each command
//! therefore carries a `correlationData` of its own, and a response that
//! does not echo it is discarded and the command sent again. That is safe
//! because every command used here is idempotent in effect (adding a role
//! the client already has, disabling a disabled client), and because the
//! plugins never trust a write's response alone: they read the client back.

use std::cell::Cell;
use std::time::Duration;

use cordon_plugin_sdk::{Error, HostError, mqtt};
use serde_json::{Value, json};

const TOPIC: &str = "$CONTROL/dynamic-security/v1";
const RESPONSE_TOPIC: &str = "$CONTROL/dynamic-security/v1/response";
/// How long one command may take; the broker answers in milliseconds.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Sends of one command before giving up on getting its own response.
const SENDS: u32 = 5;

/// A client as the broker describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its user name (a device's certificate CN).
    pub username: String,
    /// Its roles, with their priorities.
    pub roles: Vec<(String, i64)>,
    /// Whether it is disabled.
    pub disabled: bool,
}

impl Client {
    /// Whether it has the role `name`.
    pub fn has_role(&self, name: &str) -> bool {
        self.roles.iter().any(|(role, _)| role == name)
    }

    /// Its role names.
    pub fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|(role, _)| role.clone()).collect()
    }
}

/// The dynamic-security API on one connection, for one plugin call.
#[derive(Debug)]
pub struct Dynsec<'a> {
    connection: &'a str,
    /// The call's idempotency key: correlation ids start with it.
    key: &'a str,
    sent: Cell<u32>,
}

impl<'a> Dynsec<'a> {
    /// The API on `connection`, for the call with idempotency key `key`.
    pub fn new(connection: &'a str, key: &'a str) -> Dynsec<'a> {
        Dynsec {
            connection,
            key,
            sent: Cell::new(0),
        }
    }

    /// Sends one command (a JSON object with `command` and its fields) and
    /// returns its response object. A response with `error` is returned as
    /// `Err(Refused)`.
    pub fn call(&self, command: Value) -> Result<Value, Refused> {
        let name = command["command"].as_str().unwrap_or("?").to_string();
        for _ in 0..SENDS {
            let n = self.sent.get() + 1;
            self.sent.set(n);
            let correlation = format!("{}#{n}", self.key);
            let mut command = command.clone();
            command["correlationData"] = json!(correlation);
            let document = json!({ "commands": [command] });
            let message = mqtt::request(
                self.connection,
                TOPIC,
                document.to_string().as_bytes(),
                RESPONSE_TOPIC,
                TIMEOUT,
            )
            .map_err(Refused::Host)?;
            let Ok(reply) = serde_json::from_slice::<Value>(&message.payload) else {
                continue;
            };
            let Some(response) = reply["responses"]
                .as_array()
                .and_then(|all| {
                    all.iter()
                        .find(|r| r["correlationData"].as_str() == Some(&correlation))
                })
                .cloned()
            else {
                // Another caller's response: ours is lost to this wait.
                continue;
            };
            if let Some(error) = response["error"].as_str() {
                return Err(Refused::Broker {
                    command: name,
                    error: error.to_string(),
                });
            }
            return Ok(response);
        }
        Err(Refused::Host(HostError::Timeout(format!(
            "no response of its own to {name} after {SENDS} sends"
        ))))
    }

    /// Reads a client; `None` if the broker does not know it.
    pub fn client(&self, username: &str) -> Result<Option<Client>, Error> {
        let response = match self.call(json!({"command": "getClient", "username": username})) {
            Ok(response) => response,
            Err(Refused::Broker { error, .. }) if error.contains("not found") => return Ok(None),
            Err(refused) => return Err(refused.into()),
        };
        let client = &response["data"]["client"];
        let roles = client["roles"]
            .as_array()
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(|r| {
                        Some((
                            r["rolename"].as_str()?.to_string(),
                            r["priority"].as_i64().unwrap_or(-1),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(Client {
            username: username.to_string(),
            roles,
            disabled: client["disabled"].as_bool().unwrap_or(false),
        }))
    }

    /// Reads a client that must exist.
    pub fn existing_client(&self, username: &str) -> Result<Client, Error> {
        self.client(username)?
            .ok_or_else(|| Error::permanent(format!("the broker has no client named {username}")))
    }

    /// Gives `username` the role `role` at `priority`; having it already is
    /// success.
    pub fn add_role(&self, username: &str, role: &str, priority: i64) -> Result<(), Error> {
        let command = json!({"command": "addClientRole", "username": username,
                             "rolename": role, "priority": priority});
        ignore_already(self.call(command))
    }

    /// Takes `role` from `username`; not having it is success.
    pub fn remove_role(&self, username: &str, role: &str) -> Result<(), Error> {
        let command =
            json!({"command": "removeClientRole", "username": username, "rolename": role});
        ignore_already(self.call(command))
    }

    /// Disables `username` and so kicks its live session.
    pub fn disable(&self, username: &str) -> Result<(), Error> {
        ignore_already(self.call(json!({"command": "disableClient", "username": username})))
    }

    /// Enables `username` again.
    pub fn enable(&self, username: &str) -> Result<(), Error> {
        ignore_already(self.call(json!({"command": "enableClient", "username": username})))
    }
}

/// Success whatever the response says, as long as there was one: the caller
/// reads the client back to verify. Only a failure to talk to the broker is
/// an error here.
fn ignore_already(result: Result<Value, Refused>) -> Result<(), Error> {
    match result {
        Ok(_) | Err(Refused::Broker { .. }) => Ok(()),
        Err(refused) => Err(refused.into()),
    }
}

/// A command that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The host could not carry the request (broker down, timeout, denied,
    /// dry run).
    Host(HostError),
    /// The broker answered with an error.
    Broker {
        /// The command's name.
        command: String,
        /// The broker's error text.
        error: String,
    },
}

impl From<Refused> for Error {
    fn from(refused: Refused) -> Error {
        match refused {
            Refused::Host(error) => error.into(),
            Refused::Broker { command, error } => {
                Error::permanent(format!("the broker refused {command}: {error}"))
            }
        }
    }
}
