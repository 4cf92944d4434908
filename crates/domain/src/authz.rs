//! Who may do what: roles, the permissions they carry, and the decision for one request.
//!
//! A role is held either on the instance (it then applies in every organization) or on
//! one organization. The decision for an operation on a resource of organization `o` is
//! made in the contract's order: no role in `o` nor on the instance means the resource is
//! invisible (reported exactly like a missing one); a role without the permission is a
//! denial.

use std::collections::BTreeMap;
use std::fmt;

use crate::values::{OrgId, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    UserRead,
    UserWrite,
    UserDelete,
    /// Add and remove members of an organization.
    MemberWrite,
    /// Issue and revoke personal access tokens.
    TokenWrite,
    /// Create organizations and manage instance members.
    InstanceWrite,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::UserRead,
        Permission::UserWrite,
        Permission::UserDelete,
        Permission::MemberWrite,
        Permission::TokenWrite,
        Permission::InstanceWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::UserRead => "user.read",
            Permission::UserWrite => "user.write",
            Permission::UserDelete => "user.delete",
            Permission::MemberWrite => "org.member.write",
            Permission::TokenWrite => "user.token.write",
            Permission::InstanceWrite => "instance.write",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoleScope {
    Instance,
    Organization,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    IamOwner,
    IamUserManager,
    OrgOwner,
    OrgUserManager,
    OrgUserViewer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::IamOwner,
        Role::IamUserManager,
        Role::OrgOwner,
        Role::OrgUserManager,
        Role::OrgUserViewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::IamOwner => "IAM_OWNER",
            Role::IamUserManager => "IAM_USER_MANAGER",
            Role::OrgOwner => "ORG_OWNER",
            Role::OrgUserManager => "ORG_USER_MANAGER",
            Role::OrgUserViewer => "ORG_USER_VIEWER",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    pub fn scope(self) -> RoleScope {
        match self {
            Role::IamOwner | Role::IamUserManager => RoleScope::Instance,
            Role::OrgOwner | Role::OrgUserManager | Role::OrgUserViewer => RoleScope::Organization,
        }
    }

    pub fn permissions(self) -> PermissionSet {
        use Permission::*;
        match self {
            Role::IamOwner => PermissionSet::of(&Permission::ALL),
            Role::IamUserManager | Role::OrgUserManager => {
                PermissionSet::of(&[UserRead, UserWrite, UserDelete])
            }
            Role::OrgOwner => {
                PermissionSet::of(&[UserRead, UserWrite, UserDelete, MemberWrite, TokenWrite])
            }
            Role::OrgUserViewer => PermissionSet::of(&[UserRead]),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u8);

impl PermissionSet {
    pub fn of(permissions: &[Permission]) -> Self {
        PermissionSet(permissions.iter().fold(0, |bits, p| bits | p.bit()))
    }

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    pub fn is_superset_of(self, other: PermissionSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: PermissionSet) -> Self {
        PermissionSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The roles held in one scope.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RoleSet(Vec<Role>);

impl RoleSet {
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Self {
        let mut roles: Vec<Role> = roles.into_iter().collect();
        roles.sort();
        roles.dedup();
        RoleSet(roles)
    }

    pub fn roles(&self) -> &[Role] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn permissions(&self) -> PermissionSet {
        self.0.iter().fold(PermissionSet::default(), |set, role| {
            set.union(role.permissions())
        })
    }
}

/// Every role one user holds: on the instance, and per organization.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memberships {
    pub instance: RoleSet,
    pub organizations: BTreeMap<OrgId, RoleSet>,
}

impl Memberships {
    pub fn is_empty(&self) -> bool {
        self.instance.is_empty() && self.organizations.values().all(RoleSet::is_empty)
    }
}

/// The authenticated caller of a request, with every role it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    /// The organization the caller's user belongs to.
    pub org_id: OrgId,
    pub instance_roles: RoleSet,
    pub org_roles: BTreeMap<OrgId, RoleSet>,
}

/// Why a caller may not act on a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No role in the resource's organization nor on the instance: for the caller the
    /// resource does not exist.
    #[error("not visible to the caller")]
    NotVisible,
    #[error("the caller lacks the permission {0}")]
    Denied(Permission),
}

impl Caller {
    /// Whether the caller holds any role that reaches organization `org`.
    pub fn sees(&self, org: &OrgId) -> bool {
        !self.instance_roles.is_empty() || self.org_roles.get(org).is_some_and(|r| !r.is_empty())
    }

    /// Every permission the caller holds in organization `org`.
    pub fn permissions_in(&self, org: &OrgId) -> PermissionSet {
        let in_org = self
            .org_roles
            .get(org)
            .map(RoleSet::permissions)
            .unwrap_or_default();
        self.instance_roles.permissions().union(in_org)
    }

    /// Every permission the caller holds on the instance (in every organization at once).
    pub fn instance_permissions(&self) -> PermissionSet {
        self.instance_roles.permissions()
    }

    /// Whether the caller already holds every permission `target` carries, so that
    /// granting it, or acting with it, raises nobody above the caller.
    ///
    /// Instance-wide permissions can only be covered by instance-wide permissions: a role
    /// in one organization never reaches the others.
    pub fn covers(&self, target: &Memberships) -> bool {
        self.instance_permissions()
            .is_superset_of(target.instance.permissions())
            && target
                .organizations
                .iter()
                .all(|(org, roles)| self.permissions_in(org).is_superset_of(roles.permissions()))
    }

    /// The contract's decision for an operation needing `permission` on a resource of `org`.
    pub fn authorize(&self, org: &OrgId, permission: Permission) -> Result<(), AccessError> {
        if !self.sees(org) {
            return Err(AccessError::NotVisible);
        }
        if !self.permissions_in(org).contains(permission) {
            return Err(AccessError::Denied(permission));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str) -> OrgId {
        OrgId::new(id).unwrap()
    }

    fn caller(instance: &[Role], in_org: &[(&str, &[Role])]) -> Caller {
        Caller {
            user_id: UserId::new("caller").unwrap(),
            org_id: org("home"),
            instance_roles: RoleSet::new(instance.iter().copied()),
            org_roles: in_org
                .iter()
                .map(|(id, roles)| (org(id), RoleSet::new(roles.iter().copied())))
                .collect(),
        }
    }

    #[test]
    fn instance_roles_reach_every_organization() {
        let admin = caller(&[Role::IamOwner], &[]);
        for permission in Permission::ALL {
            assert_eq!(admin.authorize(&org("any"), permission), Ok(()));
        }
        let manager = caller(&[Role::IamUserManager], &[]);
        assert_eq!(
            manager.authorize(&org("any"), Permission::UserDelete),
            Ok(())
        );
        assert_eq!(
            manager.authorize(&org("any"), Permission::MemberWrite),
            Err(AccessError::Denied(Permission::MemberWrite))
        );
    }

    #[test]
    fn organization_roles_stay_in_their_organization() {
        let viewer = caller(&[], &[("a", &[Role::OrgUserViewer])]);
        assert_eq!(viewer.authorize(&org("a"), Permission::UserRead), Ok(()));
        assert_eq!(
            viewer.authorize(&org("a"), Permission::UserWrite),
            Err(AccessError::Denied(Permission::UserWrite))
        );
        assert_eq!(
            viewer.authorize(&org("b"), Permission::UserRead),
            Err(AccessError::NotVisible)
        );
    }

    #[test]
    fn nobody_covers_more_than_they_hold() {
        let memberships = |instance: &[Role], in_org: &[(&str, &[Role])]| Memberships {
            instance: RoleSet::new(instance.iter().copied()),
            organizations: in_org
                .iter()
                .map(|(id, roles)| (org(id), RoleSet::new(roles.iter().copied())))
                .collect(),
        };
        let org_owner = caller(&[], &[("a", &[Role::OrgOwner])]);
        assert!(org_owner.covers(&memberships(&[], &[("a", &[Role::OrgOwner])])));
        assert!(org_owner.covers(&memberships(&[], &[("a", &[Role::OrgUserViewer])])));
        assert!(org_owner.covers(&Memberships::default()));
        assert!(
            !org_owner.covers(&memberships(&[Role::IamUserManager], &[])),
            "instance-wide"
        );
        assert!(
            !org_owner.covers(&memberships(&[], &[("b", &[Role::OrgUserViewer])])),
            "other org"
        );

        let iam_manager = caller(&[Role::IamUserManager], &[]);
        assert!(iam_manager.covers(&memberships(&[], &[("z", &[Role::OrgUserManager])])));
        assert!(
            !iam_manager.covers(&memberships(&[], &[("z", &[Role::OrgOwner])])),
            "members, tokens"
        );

        let admin = caller(&[Role::IamOwner], &[]);
        assert!(admin.covers(&memberships(&[Role::IamOwner], &[("a", &[Role::OrgOwner])])));
    }

    #[test]
    fn the_role_table_of_the_contract() {
        use Permission::*;
        let table: [(Role, &[Permission]); 5] = [
            (Role::IamOwner, &Permission::ALL),
            (Role::IamUserManager, &[UserRead, UserWrite, UserDelete]),
            (
                Role::OrgOwner,
                &[UserRead, UserWrite, UserDelete, MemberWrite, TokenWrite],
            ),
            (Role::OrgUserManager, &[UserRead, UserWrite, UserDelete]),
            (Role::OrgUserViewer, &[UserRead]),
        ];
        for (role, granted) in table {
            for permission in Permission::ALL {
                assert_eq!(
                    role.permissions().contains(permission),
                    granted.contains(&permission),
                    "{role} / {permission}"
                );
            }
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("ROOT"), None);
    }
}
