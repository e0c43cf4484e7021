//! Who `group:NAME` and `role:NAME` in a `notify.to` are (SPEC §3.1).
//!
//! The node's configuration knows its people (the server's `users:`
//! section, with their email, roles and groups); it gives the mailer a
//! [`Recipients`] map from each group and role to the addresses of its
//! members. A group or role with no member who has an address is an error,
//! not an empty list: a page that reaches nobody must fail loudly.

use std::collections::{BTreeMap, BTreeSet};

/// Groups and roles, resolved to email addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipients {
    groups: BTreeMap<String, BTreeSet<String>>,
    roles: BTreeMap<String, BTreeSet<String>>,
}

impl Recipients {
    /// Adds one person: their address, roles and groups.
    pub fn add_person<'a>(
        &mut self,
        email: &str,
        roles: impl IntoIterator<Item = &'a String>,
        groups: impl IntoIterator<Item = &'a String>,
    ) {
        for role in roles {
            self.roles
                .entry(role.clone())
                .or_default()
                .insert(email.to_string());
        }
        for group in groups {
            self.groups
                .entry(group.clone())
                .or_default()
                .insert(email.to_string());
        }
    }

    /// Expands one recipient: `group:X` and `role:X` to their members'
    /// addresses (sorted), anything else to itself.
    pub fn expand(&self, recipient: &str) -> Result<Vec<String>, String> {
        let trimmed = recipient.trim();
        let (kind, members) = match trimmed.split_once(':') {
            Some(("group", name)) => ("group", self.groups.get(name.trim())),
            Some(("role", name)) => ("role", self.roles.get(name.trim())),
            _ => return Ok(vec![recipient.to_string()]),
        };
        match members {
            Some(members) if !members.is_empty() => Ok(members.iter().cloned().collect()),
            _ => Err(format!(
                "no one in the configured users with an email address is in {kind} `{}`",
                trimmed.split_once(':').map_or("", |(_, n)| n.trim())
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_roles_expand_to_their_members_addresses() {
        let mut r = Recipients::default();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        r.add_person("otto@x.test", &s(&["on-call"]), &s(&["ot"]));
        r.add_person("ann@x.test", &s(&["on-call", "lead"]), &s(&[]));
        assert_eq!(
            r.expand("role:on-call"),
            Ok(s(&["ann@x.test", "otto@x.test"]))
        );
        assert_eq!(r.expand("group:ot"), Ok(s(&["otto@x.test"])));
        assert_eq!(r.expand("soc@x.test"), Ok(s(&["soc@x.test"])));
        assert!(r.expand("role:nobody").is_err());
        assert!(r.expand("group:ghosts").is_err());
    }
}
