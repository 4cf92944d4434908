//! Data migrations: changes to stored data that need userd's own rules (Unicode folding,
//! role permissions), run once each right after the SQL migrations, inside the same
//! lock, each in one transaction with its record in `data_migrations`.

use std::collections::{BTreeMap, HashMap, HashSet};

use diesel::prelude::*;
use userd_domain::authz::Memberships;
use userd_domain::values::{OrgId, username_key, usernames_clash};
use userd_ports::error::StoreError;

use crate::auth::parse_roles;
use crate::connection::{DbConnection, write_transaction};
use crate::errors::store_error;
use crate::schema::{
    data_migrations, instance_members, org_members, personal_access_tokens, usernames, users,
};
use crate::stored::encode_grants;

/// What the data migrations did, for the operator.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DataMigrationReport {
    pub applied: Vec<&'static str>,
    /// Tokens made before ceilings existed whose user gained or changed roles after the
    /// token was made: they now carry only the roles provably held when they were made.
    pub tokens_capped: usize,
    pub username_clashes: Vec<UsernameClash>,
}

/// Two live usernames that became the same name when comparison learned Unicode
/// normalization and case folding. The one created first keeps the name; the other keeps
/// its spelling but no longer claims the name (it cannot be used to find that user by
/// name) until an operator renames or removes one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernameClash {
    pub username: String,
    pub user_id: String,
    pub kept_by_user_id: String,
}

type Step = fn(&mut DbConnection, &mut DataMigrationReport) -> Result<(), StoreError>;

/// Every data migration, in order. Names are recorded: never rename one.
const STEPS: [(&str, Step); 2] = [
    ("2026-12-02-token-ceilings", cap_existing_tokens),
    ("2026-12-02-username-keys-nfkc-casefold", rekey_usernames),
];

/// Marks a username key that lost a clash: never part of a username (control
/// characters are refused there), so the marked key matches no name.
const CLASH_MARK: char = '\u{1}';

pub(crate) fn run_pending(
    conn: &mut DbConnection,
    now_us: i64,
) -> Result<DataMigrationReport, StoreError> {
    let mut report = DataMigrationReport::default();
    for (name, step) in STEPS {
        write_transaction(conn, |conn| {
            let done = data_migrations::table
                .find(name)
                .select(data_migrations::name)
                .first::<String>(conn)
                .optional()
                .map_err(store_error)?
                .is_some();
            if done {
                return Ok(());
            }
            step(conn, &mut report)?;
            diesel::insert_into(data_migrations::table)
                .values((
                    data_migrations::name.eq(name),
                    data_migrations::applied_at_us.eq(now_us),
                ))
                .execute(conn)
                .map_err(store_error)?;
            report.applied.push(name);
            Ok(())
        })?;
    }
    Ok(report)
}

/// Tokens from before ceilings get one: the roles their user held when the token was
/// made, as far as the membership records can prove it. A membership created or changed
/// after the token is left out (what it held before is not recorded), so a token never
/// gains from this migration and keeps working exactly as before when its user's roles
/// did not change since.
fn cap_existing_tokens(
    conn: &mut DbConnection,
    report: &mut DataMigrationReport,
) -> Result<(), StoreError> {
    let tokens: Vec<(String, String, i64)> = personal_access_tokens::table
        .filter(personal_access_tokens::ceiling.is_null())
        .select((
            personal_access_tokens::id,
            personal_access_tokens::user_id,
            personal_access_tokens::created_at_us,
        ))
        .load(conn)
        .map_err(store_error)?;
    for (token_id, user_id, created) in tokens {
        let instance: Vec<(String, i64)> = instance_members::table
            .filter(instance_members::user_id.eq(&user_id))
            .select((instance_members::roles, instance_members::changed_at_us))
            .load(conn)
            .map_err(store_error)?;
        let in_orgs: Vec<(String, String, i64)> = org_members::table
            .filter(org_members::user_id.eq(&user_id))
            .select((
                org_members::org_id,
                org_members::roles,
                org_members::changed_at_us,
            ))
            .load(conn)
            .map_err(store_error)?;
        let mut capped = false;
        let mut held = Memberships::default();
        for (roles, changed) in instance {
            if changed <= created {
                held.instance = parse_roles(&roles);
            } else {
                capped = true;
            }
        }
        for (org, roles, changed) in in_orgs {
            if changed <= created {
                let org = OrgId::new(org)
                    .map_err(|e| StoreError::corrupt("a membership", Box::new(e)))?;
                held.organizations.insert(org, parse_roles(&roles));
            } else {
                capped = true;
            }
        }
        report.tokens_capped += usize::from(capped);
        diesel::update(personal_access_tokens::table.find(&token_id))
            .set(personal_access_tokens::ceiling.eq(encode_grants(&held.grants())?))
            .execute(conn)
            .map_err(store_error)?;
    }
    Ok(())
}

/// One stored username, as the key assignment sees it.
pub(crate) struct NameClaim {
    pub id: String,
    pub user_id: String,
    pub org_id: String,
    pub username: String,
    pub organization_specific: bool,
}

impl NameClaim {
    pub(crate) fn of(row: &crate::projection::UsernameRow) -> NameClaim {
        NameClaim {
            id: row.id.clone(),
            user_id: row.user_id.clone(),
            org_id: row.org_id.clone(),
            username: row.username.clone(),
            organization_specific: row.organization_specific,
        }
    }
}

/// The key of each username, given in the order their users were created: the
/// uniqueness rule of docs/api.md applied to [`username_key`]s, the first holder of a name
/// keeping it, later ones marked (see [`UsernameClash`]).
pub(crate) fn assign_keys(claims: &[NameClaim]) -> (Vec<String>, Vec<UsernameClash>) {
    // The claims that kept each key so far.
    let mut holders: HashMap<String, Vec<&NameClaim>> = HashMap::new();
    let mut keys = Vec::with_capacity(claims.len());
    let mut clashes = Vec::new();
    for claim in claims {
        let key = username_key(&claim.username);
        let kept = holders.entry(key.clone()).or_default();
        if let Some(holder) = kept.iter().find(|held| {
            usernames_clash(
                (&held.org_id, held.organization_specific),
                (&claim.org_id, claim.organization_specific),
            )
        }) {
            clashes.push(UsernameClash {
                username: claim.username.clone(),
                user_id: claim.user_id.clone(),
                kept_by_user_id: holder.user_id.clone(),
            });
            keys.push(format!("{key}{CLASH_MARK}{}", claim.id));
            continue;
        }
        kept.push(claim);
        keys.push(key);
    }
    (keys, clashes)
}

/// Usernames were compared in Unicode lowercase; they are now compared after NFKC and
/// case folding. Every stored key is recomputed; names that now clash are reported, never
/// merged.
fn rekey_usernames(
    conn: &mut DbConnection,
    report: &mut DataMigrationReport,
) -> Result<(), StoreError> {
    let rows: Vec<(String, String, String, String, bool, String)> = usernames::table
        .inner_join(users::table)
        .order((users::created_at_us, users::id, usernames::id))
        .select((
            usernames::id,
            usernames::user_id,
            usernames::org_id,
            usernames::username,
            usernames::organization_specific,
            usernames::username_key,
        ))
        .load(conn)
        .map_err(store_error)?;
    let claims: Vec<NameClaim> = rows
        .iter()
        .map(|(id, user_id, org_id, username, specific, _)| NameClaim {
            id: id.clone(),
            user_id: user_id.clone(),
            org_id: org_id.clone(),
            username: username.clone(),
            organization_specific: *specific,
        })
        .collect();
    let (keys, clashes) = assign_keys(&claims);
    let changed: Vec<(&String, &String)> = rows
        .iter()
        .zip(&keys)
        .filter(|((_, _, _, _, _, old), new)| old != *new)
        .map(|((id, ..), new)| (id, new))
        .collect();
    // Two passes, so no intermediate state trips the unique (organization, key) index.
    let parked: HashSet<&String> = changed.iter().map(|(id, _)| *id).collect();
    for id in &parked {
        diesel::update(usernames::table.find(*id))
            .set(usernames::username_key.eq(format!("{CLASH_MARK}{CLASH_MARK}{id}")))
            .execute(conn)
            .map_err(store_error)?;
    }
    for (id, key) in changed {
        diesel::update(usernames::table.find(id))
            .set(usernames::username_key.eq(key))
            .execute(conn)
            .map_err(store_error)?;
    }
    report.username_clashes = clashes;
    Ok(())
}

/// Usernames that lost a clash and still wait for an operator.
pub(crate) fn outstanding_clashes(
    conn: &mut DbConnection,
) -> Result<Vec<UsernameClash>, StoreError> {
    let marked: Vec<(String, String, String)> = usernames::table
        .filter(usernames::username_key.like(format!("%{CLASH_MARK}%")))
        .select((
            usernames::user_id,
            usernames::username,
            usernames::username_key,
        ))
        .load(conn)
        .map_err(store_error)?;
    let mut holders: BTreeMap<String, String> = BTreeMap::new();
    let mut clashes = Vec::new();
    for (user_id, username, key) in marked {
        let name_key = key.split(CLASH_MARK).next().unwrap_or_default().to_owned();
        let kept_by = match holders.get(&name_key) {
            Some(holder) => holder.clone(),
            None => {
                let holder: Option<String> = usernames::table
                    .filter(usernames::username_key.eq(&name_key))
                    .select(usernames::user_id)
                    .first(conn)
                    .optional()
                    .map_err(store_error)?;
                let holder = holder.unwrap_or_default();
                holders.insert(name_key, holder.clone());
                holder
            }
        };
        clashes.push(UsernameClash {
            username,
            user_id,
            kept_by_user_id: kept_by,
        });
    }
    Ok(clashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(id: &str, user: &str, org: &str, name: &str, specific: bool) -> NameClaim {
        NameClaim {
            id: id.into(),
            user_id: user.into(),
            org_id: org.into(),
            username: name.into(),
            organization_specific: specific,
        }
    }

    #[test]
    fn the_first_holder_keeps_a_name_and_later_ones_are_reported() {
        let claims = [
            claim("n1", "u1", "o1", "jos\u{e9}", false),
            claim("n2", "u2", "o2", "jose\u{301}", false),
            claim("n3", "u3", "o1", "Boss", true),
            claim("n4", "u4", "o2", "ｂｏｓｓ", true),
            claim("n5", "u5", "o1", "BOSS", true),
        ];
        let (keys, clashes) = assign_keys(&claims);
        assert_eq!(keys[0], "jos\u{e9}");
        assert!(keys[1].contains(CLASH_MARK));
        assert_eq!(keys[2], "boss");
        assert_eq!(
            keys[3], "boss",
            "organization-specific in another organization"
        );
        assert!(keys[4].contains(CLASH_MARK));
        assert_eq!(
            clashes,
            [
                UsernameClash {
                    username: "jose\u{301}".into(),
                    user_id: "u2".into(),
                    kept_by_user_id: "u1".into()
                },
                UsernameClash {
                    username: "BOSS".into(),
                    user_id: "u5".into(),
                    kept_by_user_id: "u3".into()
                },
            ]
        );
    }
}
