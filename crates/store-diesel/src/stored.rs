//! The forms in which userd's own structured values are stored: versioned, and converted
//! to and from the domain's types here, so renaming something in the domain never
//! changes what is on disk nor breaks reading what is already there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use userd_domain::authz::{Grants, Permission, PermissionSet};
use userd_domain::values::OrgId;
use userd_ports::error::StoreError;

/// The stored name of each permission. Fixed forever: stored data refers to these.
fn stored_permission_name(permission: Permission) -> &'static str {
    match permission {
        Permission::UserRead => "user.read",
        Permission::UserWrite => "user.write",
        Permission::UserDelete => "user.delete",
        Permission::MemberWrite => "org.member.write",
        Permission::TokenWrite => "user.token.write",
        Permission::InstanceWrite => "instance.write",
    }
}

fn permission_of_stored_name(name: &str) -> Option<Permission> {
    Permission::ALL
        .into_iter()
        .find(|p| stored_permission_name(*p) == name)
}

/// A token's ceiling, `{"v": 1, "instance": [...], "organizations": {"<org>": [...]}}`.
#[derive(Debug, Serialize, Deserialize)]
struct StoredGrantsV1 {
    v: u8,
    #[serde(default)]
    instance: Vec<String>,
    #[serde(default)]
    organizations: BTreeMap<String, Vec<String>>,
}

fn names(set: PermissionSet) -> Vec<String> {
    set.iter()
        .map(|p| stored_permission_name(p).to_owned())
        .collect()
}

pub(crate) fn encode_grants(grants: &Grants) -> Result<String, StoreError> {
    let stored = StoredGrantsV1 {
        v: 1,
        instance: names(grants.instance),
        organizations: grants
            .organizations
            .iter()
            .map(|(org, set)| (org.to_string(), names(*set)))
            .collect(),
    };
    serde_json::to_string(&stored).map_err(|e| StoreError::Internal(Box::new(e)))
}

pub(crate) fn decode_grants(text: &str) -> Result<Grants, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(format!("token ceiling: {what}"));
    let stored: StoredGrantsV1 = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    if stored.v != 1 {
        return Err(corrupt(format!("unknown version {}", stored.v)));
    }
    // An unknown permission name grants nothing: never more than was stored.
    let set = |names: &[String]| -> PermissionSet {
        names
            .iter()
            .filter_map(|n| permission_of_stored_name(n))
            .collect()
    };
    let mut organizations = BTreeMap::new();
    for (org, granted) in &stored.organizations {
        let org = OrgId::new(org.clone()).map_err(|e| corrupt(e.to_string()))?;
        organizations.insert(org, set(granted));
    }
    Ok(Grants {
        instance: set(&stored.instance),
        organizations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_round_trip_in_version_one() {
        let grants = Grants {
            instance: PermissionSet::of(&[Permission::UserRead]),
            organizations: BTreeMap::from([(
                OrgId::new("o1").unwrap(),
                PermissionSet::of(&[Permission::UserWrite, Permission::TokenWrite]),
            )]),
        };
        let text = encode_grants(&grants).unwrap();
        assert_eq!(
            text,
            r#"{"v":1,"instance":["user.read"],"organizations":{"o1":["user.write","user.token.write"]}}"#
        );
        assert_eq!(decode_grants(&text).unwrap(), grants);
        assert!(decode_grants(r#"{"v":2}"#).is_err());
    }
}
