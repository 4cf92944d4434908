//! The forms in which userd's own structured values are stored: versioned, and converted
//! to and from the domain's types here, so renaming something in the domain never
//! changes what is on disk nor breaks reading what is already there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use userd_domain::Timestamp;
use userd_domain::authz::{Grants, Permission, PermissionSet};
use userd_domain::password::{Lock, LockCause, PasswordCode, PasswordHash, UnlockCause};
use userd_domain::user::{
    Contact, ContactKind, EmailContact, PhoneContact, UserChange, UserCreated, UserPatch,
    UsernameEntry,
};
use userd_domain::values::{Email, OrgId, Phone, SchemaId, UserData, Username, UsernameId};
use userd_ports::error::StoreError;
use userd_ports::settings::{ComplexitySettings, LockoutSettings};

fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Internal(Box::new(e)))
}

/// The stored name of each permission. Fixed forever: stored data refers to these.
fn stored_permission_name(permission: Permission) -> &'static str {
    match permission {
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
    encode(&stored)
}

pub(crate) fn decode_grants(text: &str) -> Result<Grants, StoreError> {
    let corrupt = |cause: Box<dyn std::error::Error + Send + Sync>| {
        StoreError::corrupt("a token ceiling", cause)
    };
    let stored: StoredGrantsV1 = serde_json::from_str(text).map_err(|e| corrupt(Box::new(e)))?;
    if stored.v != 1 {
        return Err(corrupt(format!("unknown version {}", stored.v).into()));
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
        let org = OrgId::new(org.clone()).map_err(|e| corrupt(Box::new(e)))?;
        organizations.insert(org, set(granted));
    }
    Ok(Grants {
        instance: set(&stored.instance),
        organizations,
    })
}

// --- login settings ----------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredLockoutV1 {
    v: u8,
    max_password_attempts: u64,
    #[serde(default)]
    max_otp_attempts: u64,
    #[serde(default)]
    lockout_duration_us: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredComplexityV1 {
    v: u8,
    min_length: u64,
    #[serde(default)]
    requires_uppercase: bool,
    #[serde(default)]
    requires_lowercase: bool,
    #[serde(default)]
    requires_number: bool,
    #[serde(default)]
    requires_symbol: bool,
}

fn settings_corrupt(kind: &str) -> impl Fn(Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    let what = format!("the {kind} settings");
    move |cause| StoreError::corrupt(what.clone(), cause)
}

pub(crate) fn encode_lockout(settings: &LockoutSettings) -> Result<String, StoreError> {
    encode(&StoredLockoutV1 {
        v: 1,
        max_password_attempts: settings.max_password_attempts,
        max_otp_attempts: settings.max_otp_attempts,
        lockout_duration_us: u64::try_from(settings.lockout_duration.as_micros())
            .unwrap_or(u64::MAX),
    })
}

pub(crate) fn decode_lockout(text: &str) -> Result<LockoutSettings, StoreError> {
    let corrupt = settings_corrupt("lockout");
    let stored: StoredLockoutV1 = serde_json::from_str(text).map_err(|e| corrupt(Box::new(e)))?;
    if stored.v != 1 {
        return Err(corrupt(format!("unknown version {}", stored.v).into()));
    }
    Ok(LockoutSettings {
        max_password_attempts: stored.max_password_attempts,
        max_otp_attempts: stored.max_otp_attempts,
        lockout_duration: std::time::Duration::from_micros(stored.lockout_duration_us),
    })
}

pub(crate) fn encode_complexity(settings: &ComplexitySettings) -> Result<String, StoreError> {
    encode(&StoredComplexityV1 {
        v: 1,
        min_length: settings.min_length,
        requires_uppercase: settings.requires_uppercase,
        requires_lowercase: settings.requires_lowercase,
        requires_number: settings.requires_number,
        requires_symbol: settings.requires_symbol,
    })
}

pub(crate) fn decode_complexity(text: &str) -> Result<ComplexitySettings, StoreError> {
    let corrupt = settings_corrupt("password complexity");
    let stored: StoredComplexityV1 =
        serde_json::from_str(text).map_err(|e| corrupt(Box::new(e)))?;
    if stored.v != 1 {
        return Err(corrupt(format!("unknown version {}", stored.v).into()));
    }
    Ok(ComplexitySettings {
        min_length: stored.min_length,
        requires_uppercase: stored.requires_uppercase,
        requires_lowercase: stored.requires_lowercase,
        requires_number: stored.requires_number,
        requires_symbol: stored.requires_symbol,
    })
}

// --- users -------------------------------------------------------------------------
//
// Version 1 of the event payloads and of the `users.usernames` column is the JSON userd
// wrote since its first release; it carries no version field. A later version adds
// `"v": 2`, and readers keep reading version 1.

/// The stored name of each event type. Fixed forever: the log refers to these.
pub(crate) fn stored_event_type(change: &UserChange) -> &'static str {
    match change {
        UserChange::Created(_) => "user.created",
        UserChange::Updated(_) => "user.updated",
        UserChange::Locked(_) => "user.locked",
        UserChange::Unlocked(_) => "user.unlocked",
        UserChange::Deactivated => "user.deactivated",
        UserChange::Activated => "user.activated",
        UserChange::Deleted => "user.deleted",
        UserChange::PasswordSet { .. } => "user.password.set",
        UserChange::PasswordRemoved => "user.password.removed",
        UserChange::PasswordCheckFailed { .. } => "user.password.check.failed",
        UserChange::PasswordCheckSucceeded => "user.password.check.succeeded",
        UserChange::PasswordCodeAdded { .. } => "user.password.code.added",
        UserChange::PasswordCodeCheckFailed => "user.password.code.check.failed",
        UserChange::ContactCodeAdded { kind, .. } => match kind {
            ContactKind::Email => "user.email.code.added",
            ContactKind::Phone => "user.phone.code.added",
        },
        UserChange::ContactVerified(kind) => match kind {
            ContactKind::Email => "user.email.verified",
            ContactKind::Phone => "user.phone.verified",
        },
        UserChange::ContactCodeCheckFailed(kind) => match kind {
            ContactKind::Email => "user.email.code.check.failed",
            ContactKind::Phone => "user.phone.code.check.failed",
        },
    }
}

/// `user.locked`. Events written before lockouts existed carry `{}`: an admin lock.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredLockV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
    /// RFC 3339, microseconds exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<String>,
}

/// `user.unlocked`. Older events carry `{}`: an unlock by an administrator.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredUnlockV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredPasswordSetV1 {
    hash: String,
    #[serde(default)]
    change_required: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredCodeAddedV1 {
    hash: String,
    /// RFC 3339, microseconds exact.
    expires: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredCheckFailedV1 {
    failed_checks: u32,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredEmailV1 {
    address: String,
    #[serde(default)]
    verified: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredPhoneV1 {
    number: String,
    #[serde(default)]
    verified: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredContactV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<StoredEmailV1>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone: Option<StoredPhoneV1>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredUsernameV1 {
    id: String,
    username: String,
    #[serde(default)]
    organization_specific: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredCreatedV1 {
    org_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schema_id: Option<String>,
    #[serde(default)]
    data: Map<String, Value>,
    #[serde(default)]
    contact: StoredContactV1,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    usernames: Vec<StoredUsernameV1>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredPatchV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schema_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<StoredEmailV1>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone: Option<StoredPhoneV1>,
}

fn stored_email(email: &EmailContact) -> StoredEmailV1 {
    StoredEmailV1 {
        address: email.address.as_str().to_owned(),
        verified: email.verified,
    }
}

fn stored_phone(phone: &PhoneContact) -> StoredPhoneV1 {
    StoredPhoneV1 {
        number: phone.number.as_str().to_owned(),
        verified: phone.verified,
    }
}

fn stored_usernames(usernames: &[UsernameEntry]) -> Vec<StoredUsernameV1> {
    usernames
        .iter()
        .map(|entry| StoredUsernameV1 {
            id: entry.id.to_string(),
            username: entry.username.as_str().to_owned(),
            organization_specific: entry.organization_specific,
        })
        .collect()
}

type Invalid = userd_domain::values::InvalidValue;

fn email_of(stored: StoredEmailV1) -> Result<EmailContact, Invalid> {
    Ok(EmailContact {
        address: Email::new(stored.address)?,
        verified: stored.verified,
    })
}

fn phone_of(stored: StoredPhoneV1) -> Result<PhoneContact, Invalid> {
    Ok(PhoneContact {
        number: Phone::new(stored.number)?,
        verified: stored.verified,
    })
}

fn usernames_of(stored: Vec<StoredUsernameV1>) -> Result<Vec<UsernameEntry>, Invalid> {
    stored
        .into_iter()
        .map(|entry| {
            Ok(UsernameEntry {
                id: UsernameId::new(entry.id)?,
                username: Username::new(entry.username)?,
                organization_specific: entry.organization_specific,
            })
        })
        .collect()
}

/// The payload stored for a change: the "what" of the event, a JSON object.
pub(crate) fn encode_change(change: &UserChange) -> Result<String, StoreError> {
    match change {
        UserChange::Created(created) => encode(&StoredCreatedV1 {
            org_id: created.org_id.to_string(),
            schema_id: created.schema_id.as_ref().map(ToString::to_string),
            data: created.data.as_map().clone(),
            contact: StoredContactV1 {
                email: created.contact.email.as_ref().map(stored_email),
                phone: created.contact.phone.as_ref().map(stored_phone),
            },
            usernames: stored_usernames(&created.usernames),
        }),
        UserChange::Updated(patch) => encode(&StoredPatchV1 {
            schema_id: patch.schema_id.as_ref().map(ToString::to_string),
            data: patch.data.as_ref().map(|d| d.as_map().clone()),
            email: patch.email.as_ref().map(stored_email),
            phone: patch.phone.as_ref().map(stored_phone),
        }),
        UserChange::Locked(lock) => encode(&StoredLockV1 {
            cause: Some(lock.cause.as_str().to_owned()),
            until: lock.until.map(Timestamp::to_rfc3339),
        }),
        UserChange::Unlocked(cause) => encode(&StoredUnlockV1 {
            cause: Some(cause.as_str().to_owned()),
        }),
        UserChange::PasswordSet {
            hash,
            change_required,
        } => encode(&StoredPasswordSetV1 {
            hash: hash.encoded().to_owned(),
            change_required: *change_required,
        }),
        UserChange::PasswordCheckFailed { failed_checks } => encode(&StoredCheckFailedV1 {
            failed_checks: *failed_checks,
        }),
        UserChange::PasswordCodeAdded { hash, expires }
        | UserChange::ContactCodeAdded { hash, expires, .. } => encode(&StoredCodeAddedV1 {
            hash: hash.clone(),
            expires: expires.to_rfc3339(),
        }),
        UserChange::Deactivated
        | UserChange::Activated
        | UserChange::Deleted
        | UserChange::PasswordRemoved
        | UserChange::PasswordCheckSucceeded
        | UserChange::PasswordCodeCheckFailed
        | UserChange::ContactVerified(_)
        | UserChange::ContactCodeCheckFailed(_) => Ok("{}".to_owned()),
    }
}

/// A stored event's change, from its type and payload.
pub(crate) fn decode_change(event_type: &str, payload: &str) -> Result<UserChange, StoreError> {
    let corrupt = |cause: Box<dyn std::error::Error + Send + Sync>| {
        StoreError::corrupt(format!("the payload of a {event_type} event"), cause)
    };
    fn parse<T: serde::de::DeserializeOwned>(payload: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(payload)
    }
    let boxed = |e: Invalid| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) };
    Ok(match event_type {
        "user.created" => {
            let stored: StoredCreatedV1 = parse(payload).map_err(|e| corrupt(Box::new(e)))?;
            let created = (|| -> Result<UserCreated, Invalid> {
                Ok(UserCreated {
                    org_id: OrgId::new(stored.org_id)?,
                    schema_id: stored.schema_id.map(SchemaId::new).transpose()?,
                    data: UserData::new(stored.data)?,
                    contact: Contact {
                        email: stored.contact.email.map(email_of).transpose()?,
                        phone: stored.contact.phone.map(phone_of).transpose()?,
                    },
                    usernames: usernames_of(stored.usernames)?,
                })
            })()
            .map_err(|e| corrupt(boxed(e)))?;
            UserChange::Created(Box::new(created))
        }
        "user.updated" => {
            let stored: StoredPatchV1 = parse(payload).map_err(|e| corrupt(Box::new(e)))?;
            let patch = (|| -> Result<UserPatch, Invalid> {
                Ok(UserPatch {
                    schema_id: stored.schema_id.map(SchemaId::new).transpose()?,
                    data: stored.data.map(UserData::new).transpose()?,
                    email: stored.email.map(email_of).transpose()?,
                    phone: stored.phone.map(phone_of).transpose()?,
                })
            })()
            .map_err(|e| corrupt(boxed(e)))?;
            UserChange::Updated(Box::new(patch))
        }
        "user.locked" => {
            let stored: StoredLockV1 = parse(payload).map_err(|e| corrupt(Box::new(e)))?;
            let cause = match stored.cause.as_deref() {
                None => LockCause::Admin,
                Some(name) => LockCause::parse(name)
                    .ok_or_else(|| corrupt(format!("unknown lock cause {name:?}").into()))?,
            };
            let until = match stored.until.as_deref() {
                None => None,
                Some(text) => Some(
                    Timestamp::parse_rfc3339(text)
                        .ok_or_else(|| corrupt(format!("not a time: {text:?}").into()))?,
                ),
            };
            UserChange::Locked(Lock { cause, until })
        }
        "user.unlocked" => {
            let stored: StoredUnlockV1 = parse(payload).map_err(|e| corrupt(Box::new(e)))?;
            UserChange::Unlocked(match stored.cause.as_deref() {
                None => UnlockCause::Admin,
                Some(name) => UnlockCause::parse(name)
                    .ok_or_else(|| corrupt(format!("unknown unlock cause {name:?}").into()))?,
            })
        }
        "user.deactivated" => UserChange::Deactivated,
        "user.activated" => UserChange::Activated,
        "user.deleted" => UserChange::Deleted,
        "user.password.set" => {
            let stored: StoredPasswordSetV1 = parse(payload).map_err(|e| corrupt(Box::new(e)))?;
            UserChange::PasswordSet {
                hash: PasswordHash::new(stored.hash),
                change_required: stored.change_required,
            }
        }
        "user.password.removed" => UserChange::PasswordRemoved,
        "user.password.check.failed" => {
            let stored: StoredCheckFailedV1 = parse(payload).map_err(|e| corrupt(Box::new(e)))?;
            UserChange::PasswordCheckFailed {
                failed_checks: stored.failed_checks,
            }
        }
        "user.password.check.succeeded" => UserChange::PasswordCheckSucceeded,
        "user.password.code.added" | "user.email.code.added" | "user.phone.code.added" => {
            let stored: StoredCodeAddedV1 = parse(payload).map_err(|e| corrupt(Box::new(e)))?;
            let expires = Timestamp::parse_rfc3339(&stored.expires)
                .ok_or_else(|| corrupt(format!("not a time: {:?}", stored.expires).into()))?;
            let hash = stored.hash;
            match event_type {
                "user.email.code.added" => UserChange::ContactCodeAdded {
                    kind: ContactKind::Email,
                    hash,
                    expires,
                },
                "user.phone.code.added" => UserChange::ContactCodeAdded {
                    kind: ContactKind::Phone,
                    hash,
                    expires,
                },
                _ => UserChange::PasswordCodeAdded { hash, expires },
            }
        }
        "user.password.code.check.failed" => UserChange::PasswordCodeCheckFailed,
        "user.email.verified" => UserChange::ContactVerified(ContactKind::Email),
        "user.phone.verified" => UserChange::ContactVerified(ContactKind::Phone),
        "user.email.code.check.failed" => UserChange::ContactCodeCheckFailed(ContactKind::Email),
        "user.phone.code.check.failed" => UserChange::ContactCodeCheckFailed(ContactKind::Phone),
        other => {
            return Err(StoreError::corrupt(
                "an event",
                format!("unknown event type {other:?}"),
            ));
        }
    })
}

/// One outstanding code of the `users.contact_codes` column.
#[derive(Debug, Serialize, Deserialize)]
struct StoredCodeV1 {
    hash: String,
    expires_us: i64,
    failures: u32,
}

/// The `users.contact_codes` column: `{"v": 1, "email"?: {...}, "phone"?: {...}}`, NULL
/// when no code is outstanding.
#[derive(Debug, Serialize, Deserialize)]
struct StoredContactCodesV1 {
    v: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<StoredCodeV1>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone: Option<StoredCodeV1>,
}

/// The codes a user's addresses wait to be proven with.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ContactCodes {
    pub email: Option<PasswordCode>,
    pub phone: Option<PasswordCode>,
}

pub(crate) fn encode_contact_codes(
    email: Option<&PasswordCode>,
    phone: Option<&PasswordCode>,
) -> Result<Option<String>, StoreError> {
    if email.is_none() && phone.is_none() {
        return Ok(None);
    }
    let stored = |code: &PasswordCode| StoredCodeV1 {
        hash: code.hash.clone(),
        expires_us: code.expires.unix_micros(),
        failures: code.failed_attempts,
    };
    encode(&StoredContactCodesV1 {
        v: 1,
        email: email.map(stored),
        phone: phone.map(stored),
    })
    .map(Some)
}

pub(crate) fn decode_contact_codes(text: Option<&str>) -> Result<ContactCodes, serde_json::Error> {
    let Some(text) = text else {
        return Ok(ContactCodes::default());
    };
    let stored: StoredContactCodesV1 = serde_json::from_str(text)?;
    let code = |code: StoredCodeV1| PasswordCode {
        hash: code.hash,
        expires: Timestamp::from_unix_micros(code.expires_us),
        failed_attempts: code.failures,
    };
    Ok(ContactCodes {
        email: stored.email.map(code),
        phone: stored.phone.map(code),
    })
}

/// The `users.usernames` column: the user's usernames as the client wrote them.
pub(crate) fn encode_usernames(usernames: &[UsernameEntry]) -> Result<String, StoreError> {
    encode(&stored_usernames(usernames))
}

pub(crate) fn decode_usernames(text: &str) -> Result<Vec<UsernameEntry>, StoreError> {
    let corrupt = "the usernames of a user row";
    let stored: Vec<StoredUsernameV1> =
        serde_json::from_str(text).map_err(|e| StoreError::corrupt(corrupt, Box::new(e)))?;
    usernames_of(stored).map_err(|e| StoreError::corrupt(corrupt, Box::new(e)))
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

    #[test]
    fn changes_round_trip_and_version_one_payloads_still_read() {
        let written = concat!(
            r#"{"contact":{"email":{"address":"ada@example.com","verified":true}},"data":{"a":1},"#,
            r#""orgId":"o1","schemaId":"s","#,
            r#""usernames":[{"id":"n1","organizationSpecific":true,"username":"ada"}]}"#
        );
        let change = decode_change("user.created", written).unwrap();
        let UserChange::Created(created) = &change else {
            panic!("{change:?}");
        };
        assert_eq!(created.org_id.as_str(), "o1");
        assert_eq!(created.usernames[0].username.as_str(), "ada");
        assert!(created.usernames[0].organization_specific);
        let again = decode_change("user.created", &encode_change(&change).unwrap()).unwrap();
        assert_eq!(again, change);
        assert_eq!(stored_event_type(&change), "user.created");
        assert!(decode_change("user.renamed", "{}").is_err());
        assert!(decode_change("user.locked", r#"{"cause":"root"}"#).is_err());
        assert!(decode_change("user.updated", r#"{"email":{"address":"no"}}"#).is_err());
    }

    #[test]
    fn locks_written_before_lockouts_read_as_admin_locks() {
        assert_eq!(
            decode_change("user.locked", "{}").unwrap(),
            UserChange::Locked(Lock::ADMIN)
        );
        assert_eq!(
            decode_change("user.unlocked", "{}").unwrap(),
            UserChange::Unlocked(UnlockCause::Admin)
        );
    }

    #[test]
    fn password_and_lockout_events_round_trip() {
        let changes = [
            UserChange::Locked(Lock {
                cause: LockCause::Lockout,
                until: Some(Timestamp::from_unix_micros(1_732_292_825_645_001)),
            }),
            UserChange::Locked(Lock {
                cause: LockCause::Lockout,
                until: None,
            }),
            UserChange::Unlocked(UnlockCause::LockoutExpired),
            UserChange::PasswordSet {
                hash: PasswordHash::new("$2b$04$abcdefghijklmnopqrstuu"),
                change_required: true,
            },
            UserChange::PasswordRemoved,
            UserChange::PasswordCheckFailed { failed_checks: 4 },
            UserChange::PasswordCheckSucceeded,
            UserChange::PasswordCodeAdded {
                hash: "ab".repeat(32),
                expires: Timestamp::from_unix_micros(1_732_292_825_645_001),
            },
            UserChange::PasswordCodeCheckFailed,
            UserChange::ContactCodeAdded {
                kind: ContactKind::Phone,
                hash: "cd".repeat(32),
                expires: Timestamp::from_unix_micros(1_732_292_825_645_001),
            },
            UserChange::ContactVerified(ContactKind::Email),
            UserChange::ContactCodeCheckFailed(ContactKind::Phone),
        ];
        for change in changes {
            let payload = encode_change(&change).unwrap();
            let event_type = stored_event_type(&change);
            assert_eq!(event_type, change.event_type());
            assert_eq!(decode_change(event_type, &payload).unwrap(), change);
        }
    }
}
