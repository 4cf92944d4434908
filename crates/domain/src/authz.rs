//! Who may do what: roles, the permissions they carry, and the decision for one request.
//!
//! A role is held either on the instance (it then applies in every organization) or on
//! one organization. The decision for an operation on a resource of organization `o` is
//! made in the order docs/api.md states: no role in `o` nor on the instance means the resource is
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
    /// Read login sessions.
    SessionRead,
    /// Create, check and end login sessions: what a login front end does.
    SessionWrite,
    /// Change login settings (lockout, password complexity).
    SettingsWrite,
}

impl Permission {
    pub const ALL: [Permission; 9] = [
        Permission::UserRead,
        Permission::UserWrite,
        Permission::UserDelete,
        Permission::MemberWrite,
        Permission::TokenWrite,
        Permission::InstanceWrite,
        Permission::SessionRead,
        Permission::SessionWrite,
        Permission::SettingsWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::UserRead => "user.read",
            Permission::UserWrite => "user.write",
            Permission::UserDelete => "user.delete",
            Permission::MemberWrite => "org.member.write",
            Permission::TokenWrite => "user.token.write",
            Permission::InstanceWrite => "instance.write",
            Permission::SessionRead => "session.read",
            Permission::SessionWrite => "session.write",
            Permission::SettingsWrite => "settings.write",
        }
    }

    const fn bit(self) -> u16 {
        1 << self as u16
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
    /// A login front end: reads users and runs their sessions (password checks).
    IamLoginClient,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::IamOwner,
        Role::IamUserManager,
        Role::OrgOwner,
        Role::OrgUserManager,
        Role::OrgUserViewer,
        Role::IamLoginClient,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::IamOwner => "IAM_OWNER",
            Role::IamUserManager => "IAM_USER_MANAGER",
            Role::OrgOwner => "ORG_OWNER",
            Role::OrgUserManager => "ORG_USER_MANAGER",
            Role::OrgUserViewer => "ORG_USER_VIEWER",
            Role::IamLoginClient => "IAM_LOGIN_CLIENT",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    pub fn scope(self) -> RoleScope {
        match self {
            Role::IamOwner | Role::IamUserManager | Role::IamLoginClient => RoleScope::Instance,
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
            Role::OrgOwner => PermissionSet::of(&[
                UserRead,
                UserWrite,
                UserDelete,
                MemberWrite,
                TokenWrite,
                SettingsWrite,
            ]),
            Role::OrgUserViewer => PermissionSet::of(&[UserRead]),
            Role::IamLoginClient => PermissionSet::of(&[UserRead, SessionRead, SessionWrite]),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u16);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    pub fn of(permissions: &[Permission]) -> Self {
        PermissionSet(permissions.iter().fold(0, |bits, p| bits | p.bit()))
    }

    pub fn all() -> Self {
        PermissionSet::of(&Permission::ALL)
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

    pub fn intersection(self, other: PermissionSet) -> Self {
        PermissionSet(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The permissions in the set, in [`Permission::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(permissions: I) -> Self {
        permissions
            .into_iter()
            .fold(PermissionSet::EMPTY, |set, p| {
                set.union(PermissionSet::of(&[p]))
            })
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

    /// The permissions these roles carry, scope by scope.
    pub fn grants(&self) -> Grants {
        Grants {
            instance: self.instance.permissions(),
            organizations: self
                .organizations
                .iter()
                .map(|(org, roles)| (org.clone(), roles.permissions()))
                .filter(|(_, permissions)| !permissions.is_empty())
                .collect(),
        }
    }
}

/// Permissions held on the instance (so in every organization) and in single
/// organizations: what roles carry, or what a token may carry at most.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    pub instance: PermissionSet,
    pub organizations: BTreeMap<OrgId, PermissionSet>,
}

impl Grants {
    /// Everything, everywhere: the grants of `IAM_OWNER`.
    pub fn everything() -> Grants {
        Grants {
            instance: PermissionSet::all(),
            organizations: BTreeMap::new(),
        }
    }

    /// The permissions that apply in organization `org`: the instance's and its own.
    pub fn permissions_in(&self, org: &OrgId) -> PermissionSet {
        let own = self.organizations.get(org).copied().unwrap_or_default();
        self.instance.union(own)
    }

    /// What both grant, scope by scope: a permission in an organization survives when
    /// each side holds it there (or on the instance).
    pub fn intersection(&self, other: &Grants) -> Grants {
        let orgs = self.organizations.keys().chain(other.organizations.keys());
        Grants {
            instance: self.instance.intersection(other.instance),
            organizations: orgs
                .map(|org| {
                    let both = self
                        .permissions_in(org)
                        .intersection(other.permissions_in(org));
                    (org.clone(), both)
                })
                .filter(|(_, permissions)| !permissions.is_empty())
                .collect(),
        }
    }

    /// Whether these grants hold every permission `target` carries. Instance-wide
    /// permissions can only be covered by instance-wide ones: a role in one organization
    /// never reaches the others.
    pub fn covers(&self, target: &Grants) -> bool {
        self.instance.is_superset_of(target.instance)
            && target
                .organizations
                .iter()
                .all(|(org, wanted)| self.permissions_in(org).is_superset_of(*wanted))
    }
}

/// The authenticated caller of a request: the roles its user holds and, for a token
/// issued by someone else, the ceiling that token acts under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    /// The organization the caller's user belongs to.
    pub org_id: OrgId,
    /// Every role the caller's user holds now.
    pub roles: Memberships,
    /// What the token's issuer held when issuing it, when the issuer was not the token's
    /// own user. The caller acts with its roles' permissions cut down to these, so a role
    /// granted to the user later never flows to a token somebody else holds.
    pub ceiling: Option<Grants>,
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
    /// A caller acting with exactly its user's roles.
    pub fn new(user_id: UserId, org_id: OrgId, roles: Memberships) -> Caller {
        Caller {
            user_id,
            org_id,
            roles,
            ceiling: None,
        }
    }

    /// What the caller may do, scope by scope: its roles' permissions within its ceiling.
    pub fn grants(&self) -> Grants {
        let held = self.roles.grants();
        match &self.ceiling {
            Some(ceiling) => held.intersection(ceiling),
            None => held,
        }
    }

    /// Whether the caller holds any permission that reaches organization `org`.
    pub fn sees(&self, org: &OrgId) -> bool {
        !self.permissions_in(org).is_empty()
    }

    /// Every permission the caller holds in organization `org`.
    pub fn permissions_in(&self, org: &OrgId) -> PermissionSet {
        let held = self.roles.grants().permissions_in(org);
        match &self.ceiling {
            Some(ceiling) => held.intersection(ceiling.permissions_in(org)),
            None => held,
        }
    }

    /// Every permission the caller holds on the instance (in every organization at once).
    pub fn instance_permissions(&self) -> PermissionSet {
        let held = self.roles.instance.permissions();
        match &self.ceiling {
            Some(ceiling) => held.intersection(ceiling.instance),
            None => held,
        }
    }

    /// Whether the caller holds every permission everywhere, and so covers anybody.
    pub fn holds_everything(&self) -> bool {
        self.instance_permissions() == PermissionSet::all()
    }

    /// The organizations where the caller holds something through an organization role
    /// (instance roles reach every organization and are not listed).
    pub fn organizations(&self) -> impl Iterator<Item = &OrgId> {
        self.roles.organizations.keys()
    }

    /// Whether the caller already holds every permission `target` carries, so that
    /// granting it, or acting on someone who holds it, raises nobody above the caller.
    pub fn covers(&self, target: &Grants) -> bool {
        self.holds_everything() || self.grants().covers(target)
    }

    /// The contract's decision for an operation needing `permission` on a resource of `org`.
    pub fn authorize(&self, org: &OrgId, permission: Permission) -> Result<(), AccessError> {
        let held = self.permissions_in(org);
        if held.is_empty() {
            return Err(AccessError::NotVisible);
        }
        if !held.contains(permission) {
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

    fn memberships(instance: &[Role], in_org: &[(&str, &[Role])]) -> Memberships {
        Memberships {
            instance: RoleSet::new(instance.iter().copied()),
            organizations: in_org
                .iter()
                .map(|(id, roles)| (org(id), RoleSet::new(roles.iter().copied())))
                .collect(),
        }
    }

    fn caller(instance: &[Role], in_org: &[(&str, &[Role])]) -> Caller {
        Caller::new(
            UserId::new("caller").unwrap(),
            org("home"),
            memberships(instance, in_org),
        )
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
        let memberships =
            |instance: &[Role], in_org: &[(&str, &[Role])]| memberships(instance, in_org).grants();
        let org_owner = caller(&[], &[("a", &[Role::OrgOwner])]);
        assert!(org_owner.covers(&memberships(&[], &[("a", &[Role::OrgOwner])])));
        assert!(org_owner.covers(&memberships(&[], &[("a", &[Role::OrgUserViewer])])));
        assert!(org_owner.covers(&Grants::default()));
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
        let table: [(Role, &[Permission]); 6] = [
            (Role::IamOwner, &Permission::ALL),
            (Role::IamUserManager, &[UserRead, UserWrite, UserDelete]),
            (
                Role::OrgOwner,
                &[
                    UserRead,
                    UserWrite,
                    UserDelete,
                    MemberWrite,
                    TokenWrite,
                    SettingsWrite,
                ],
            ),
            (Role::OrgUserManager, &[UserRead, UserWrite, UserDelete]),
            (Role::OrgUserViewer, &[UserRead]),
            (Role::IamLoginClient, &[UserRead, SessionRead, SessionWrite]),
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

    #[test]
    fn a_token_issued_by_someone_else_never_exceeds_its_ceiling() {
        // The token was issued by an ORG_OWNER of "a"; its user was made IAM_OWNER later.
        let mut capped = caller(&[Role::IamOwner], &[]);
        capped.ceiling = Some(memberships(&[], &[("a", &[Role::OrgOwner])]).grants());
        assert_eq!(
            capped.authorize(&org("b"), Permission::UserRead),
            Err(AccessError::NotVisible),
            "another organization stays invisible"
        );
        assert_eq!(capped.authorize(&org("a"), Permission::TokenWrite), Ok(()));
        assert_eq!(
            capped.authorize(&org("a"), Permission::InstanceWrite),
            Err(AccessError::Denied(Permission::InstanceWrite))
        );
        assert!(capped.instance_permissions().is_empty());
        assert!(!capped.holds_everything());
        assert!(!capped.covers(&memberships(&[Role::IamOwner], &[]).grants()));
        assert!(capped.covers(&memberships(&[], &[("a", &[Role::OrgUserManager])]).grants()));

        // A ceiling never adds: a viewer's token issued by an owner stays a viewer's.
        let mut viewer = caller(&[], &[("a", &[Role::OrgUserViewer])]);
        viewer.ceiling = Some(Grants::everything());
        assert_eq!(
            viewer.permissions_in(&org("a")),
            Role::OrgUserViewer.permissions()
        );
    }

    proptest::proptest! {
        #[test]
        fn effective_grants_are_within_roles_and_ceiling(
            user_instance in proptest::collection::vec(0..5usize, 0..3),
            user_org in proptest::collection::vec((0..3usize, 2..5usize), 0..4),
            cap_instance in proptest::collection::vec(0..5usize, 0..3),
            cap_org in proptest::collection::vec((0..3usize, 0..5usize), 0..4),
        ) {
            let orgs = ["a", "b", "c"];
            let roles = |instance: &[usize], in_org: &[(usize, usize)]| Memberships {
                instance: RoleSet::new(instance.iter().map(|i| Role::ALL[*i])),
                organizations: in_org
                    .iter()
                    .map(|(o, r)| (org(orgs[*o]), RoleSet::new([Role::ALL[*r]])))
                    .collect(),
            };
            let held = roles(&user_instance, &user_org);
            let ceiling = roles(&cap_instance, &cap_org).grants();
            let mut capped = Caller::new(UserId::new("u").unwrap(), org("a"), held.clone());
            capped.ceiling = Some(ceiling.clone());
            for name in orgs {
                let o = org(name);
                let effective = capped.permissions_in(&o);
                proptest::prop_assert!(held.grants().permissions_in(&o).is_superset_of(effective));
                proptest::prop_assert!(ceiling.permissions_in(&o).is_superset_of(effective));
            }
            proptest::prop_assert!(ceiling.covers(&capped.grants()));
            proptest::prop_assert!(held.grants().covers(&capped.grants()));
        }
    }
}
