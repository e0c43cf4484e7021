//! What the operator configures: the server's own settings, the directory of
//! users (their groups and roles), and the API roles a token can carry.
//!
//! ```yaml
//! server:
//!   listen: 127.0.0.1:8080
//!   public_url: https://cordon.example.net
//!   body_limit_kib: 2048
//! users:
//!   alice: {email: alice@example.net, roles: [responder, security-lead], groups: [security]}
//!   bob: {roles: [plant-manager], groups: [plant-a]}
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The `server:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where to listen, `HOST:PORT` (port 0: any free port). `--listen` and
    /// `CORDON_LISTEN` override it.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The URL people reach this server at (links in mails); `CORDON_PUBLIC_URL` overrides it.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The largest request body accepted, KiB (default 2048: a playbook is at most 1 MiB).
    #[serde(default = "default_body_limit_kib")]
    pub body_limit_kib: usize,
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_string()
}

fn default_body_limit_kib() -> usize {
    2048
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            public_url: None,
            body_limit_kib: default_body_limit_kib(),
        }
    }
}

impl ServerConfig {
    /// The body limit in bytes.
    pub fn body_limit(&self) -> usize {
        self.body_limit_kib.saturating_mul(1024)
    }
}

/// One person of the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// Where mail for them goes.
    #[serde(default)]
    pub email: Option<String>,
    /// Their roles: custom names that playbooks' approvers refer to
    /// (`security-lead`); the built-in API role names may appear too.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Their groups (`security`, `plant-a`).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The `users:` section: who may hold tokens, with their groups and roles.
/// A token whose user is not here is refused, so removing someone from
/// the directory ends their access whatever tokens they hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Directory {
    users: BTreeMap<String, UserEntry>,
}

impl Directory {
    /// A directory of these users.
    pub fn new(users: BTreeMap<String, UserEntry>) -> Directory {
        Directory { users }
    }

    /// One user, if the directory has them.
    pub fn user(&self, name: &str) -> Option<&UserEntry> {
        self.users.get(name)
    }

    /// Every user, by name.
    pub fn users(&self) -> impl Iterator<Item = (&str, &UserEntry)> {
        self.users.iter().map(|(name, user)| (name.as_str(), user))
    }

    /// The users in `group`.
    pub fn members_of<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.users()
            .filter(move |(_, u)| u.groups.iter().any(|g| g == group))
            .map(|(name, _)| name)
    }

    /// The users holding `role`.
    pub fn holders_of<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.users()
            .filter(move |(_, u)| u.roles.iter().any(|r| r == role))
            .map(|(name, _)| name)
    }

    /// Whether nobody is configured.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// The role a token carries: what its holder may do through the API.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    /// Reads everything: playbooks, runs, inventory.
    Viewer,
    /// Reads, starts, cancels, pauses, resumes and reruns runs, imports inventory.
    Responder,
    /// Reads and decides approvals.
    Approver,
    /// Everything, including publishing playbooks and managing tokens.
    Admin,
}

impl ApiRole {
    /// Every role.
    pub const ALL: [ApiRole; 4] = [
        ApiRole::Viewer,
        ApiRole::Responder,
        ApiRole::Approver,
        ApiRole::Admin,
    ];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::Viewer => "viewer",
            ApiRole::Responder => "responder",
            ApiRole::Approver => "approver",
            ApiRole::Admin => "admin",
        }
    }

    /// The permission table: whether a holder of this role may do `p`.
    pub fn allows(self, p: Permission) -> bool {
        matches!(
            (self, p),
            (ApiRole::Admin, _)
                | (_, Permission::Read)
                | (ApiRole::Responder, Permission::Operate)
                | (ApiRole::Approver, Permission::Decide)
        )
    }
}

impl fmt::Display for ApiRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not an API role (viewer, responder, approver or admin)")
            })
    }
}

/// What a request does, as far as authorisation is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read playbooks, runs, inventory; validate.
    Read,
    /// Start, cancel, pause, resume and rerun runs; import inventory.
    Operate,
    /// Decide approvals.
    Decide,
    /// Publish playbook versions.
    Publish,
    /// Create, list and revoke API tokens.
    ManageTokens,
}

impl Permission {
    /// The least role that has it (admin has every permission too).
    pub fn needed_role(self) -> ApiRole {
        match self {
            Permission::Read => ApiRole::Viewer,
            Permission::Operate => ApiRole::Responder,
            Permission::Decide => ApiRole::Approver,
            Permission::Publish | Permission::ManageTokens => ApiRole::Admin,
        }
    }

    /// What it lets one do, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Permission::Read => "reading",
            Permission::Operate => "starting and controlling runs or importing inventory",
            Permission::Decide => "deciding approvals",
            Permission::Publish => "publishing playbooks",
            Permission::ManageTokens => "managing API tokens",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_table() {
        use Permission::*;
        let table = [
            (ApiRole::Viewer, vec![Read]),
            (ApiRole::Responder, vec![Read, Operate]),
            (ApiRole::Approver, vec![Read, Decide]),
            (
                ApiRole::Admin,
                vec![Read, Operate, Decide, Publish, ManageTokens],
            ),
        ];
        for (role, allowed) in table {
            for p in [Read, Operate, Decide, Publish, ManageTokens] {
                assert_eq!(role.allows(p), allowed.contains(&p), "{role} {p:?}");
            }
        }
        for p in [Read, Operate, Decide, Publish, ManageTokens] {
            assert!(p.needed_role().allows(p));
        }
    }

    #[test]
    fn the_directory_reads_as_configured() {
        let directory: Directory = serde_json::from_value(serde_json::json!({
            "alice": {"email": "a@x", "roles": ["responder", "security-lead"], "groups": ["security"]},
            "bob": {"groups": ["security"]},
        }))
        .expect("directory");
        assert_eq!(
            directory.members_of("security").collect::<Vec<_>>(),
            ["alice", "bob"]
        );
        assert_eq!(
            directory.holders_of("security-lead").collect::<Vec<_>>(),
            ["alice"]
        );
        assert!(directory.user("carol").is_none());
        let unknown: Result<Directory, _> =
            serde_json::from_value(serde_json::json!({"x": {"colour": "red"}}));
        assert!(unknown.is_err(), "unknown fields are refused");
    }
}
