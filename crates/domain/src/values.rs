//! Validated values. Each constructor enforces the limits of docs/api.md, so a value
//! of one of these types is known to be acceptable wherever it travels.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Why a value was refused; `reason` is the machine-readable code clients see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidValue {
    pub reason: &'static str,
    pub message: String,
}

impl InvalidValue {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        InvalidValue {
            reason,
            message: message.into(),
        }
    }
}

pub const MAX_ID_CHARS: usize = 200;
pub const MAX_USERNAME_CHARS: usize = 200;
pub const MAX_EMAIL_CHARS: usize = 200;
pub const MAX_PHONE_CHARS: usize = 20;
/// The limit on `data`, measured as compact JSON.
pub const MAX_DATA_BYTES: usize = 64 * 1024;
/// Usernames a single user may hold; generous for aliases, small enough to bound a row.
pub const MAX_USERNAMES_PER_USER: usize = 20;

/// The rule for every text a client sends, except inside `data`: no U+0000 nor any other
/// control character. Both backends then store and compare exactly what was sent
/// (PostgreSQL refuses NUL; SQLite would cut a pattern short at it).
pub fn check_plain_text(text: &str, what: &str, reason: &'static str) -> Result<(), InvalidValue> {
    if text.chars().any(char::is_control) {
        return Err(InvalidValue::new(
            reason,
            format!("{what} must not contain control characters"),
        ));
    }
    Ok(())
}

fn check_text(
    text: &str,
    what: &str,
    max_chars: usize,
    reason: &'static str,
) -> Result<(), InvalidValue> {
    let chars = text.chars().count();
    if chars == 0 || chars > max_chars {
        return Err(InvalidValue::new(
            reason,
            format!("{what} must be 1 to {max_chars} characters long, got {chars}"),
        ));
    }
    check_plain_text(text, what, reason)
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $what:literal, $reason:literal) => {
        identifier!($(#[$doc])* $name, $what, $reason, |_value: &str| Ok(()));
    };
    ($(#[$doc:meta])* $name:ident, $what:literal, $reason:literal, $extra:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const REASON: &'static str = $reason;

            pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
                let value = value.into();
                check_text(&value, $what, MAX_ID_CHARS, $reason)?;
                let extra: fn(&str) -> Result<(), InvalidValue> = $extra;
                extra(&value)?;
                Ok($name(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, InvalidValue> {
                $name::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier!(
    /// A user's id: chosen by the client (1 to 200 characters) or made by the server.
    /// Never beginning with `_`, which names actions in paths (`_search`, `_lock`).
    UserId,
    "a user id",
    "INVALID_USER_ID",
    |value: &str| {
        if value.starts_with('_') {
            return Err(InvalidValue::new(
                "INVALID_USER_ID",
                "a user id must not begin with '_' (reserved for actions such as _search)",
            ));
        }
        Ok(())
    }
);
identifier!(
    /// An organization's id.
    OrgId,
    "an organization id",
    "INVALID_ORGANIZATION_ID"
);
identifier!(
    /// The id of the schema a user's `data` follows.
    SchemaId,
    "a schema id",
    "INVALID_SCHEMA_ID"
);
identifier!(
    /// The server-made id of one username of a user.
    UsernameId,
    "a username id",
    "INVALID_USERNAME_ID"
);

/// The display name of an organization: 1 to 200 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrganizationName(String);

impl OrganizationName {
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
        let value = value.into();
        check_text(
            &value,
            "an organization name",
            MAX_ID_CHARS,
            "INVALID_ORGANIZATION_NAME",
        )?;
        if value.trim().is_empty() {
            return Err(InvalidValue::new(
                "INVALID_ORGANIZATION_NAME",
                "an organization name must not be blank",
            ));
        }
        Ok(OrganizationName(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A login name, kept as the client wrote it. Two usernames are the same name when their
/// [`Username::key`]s are equal: `Ada` and `ada`, `josé` composed and decomposed, and
/// fullwidth `ｂｏｓｓ` and `boss` each clash.
///
/// Names that only look alike are refused at the door: leading or trailing spaces, and
/// invisible formatting characters (zero-width spaces and joiners, bidirectional
/// controls, and the rest of Unicode's "format" category).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub const REASON: &'static str = "INVALID_USERNAME";

    pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
        use unicode_normalization::UnicodeNormalization;
        use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
        let value = value.into();
        check_text(&value, "a username", MAX_USERNAME_CHARS, Self::REASON)?;
        if value
            .chars()
            .any(|c| c.general_category() == GeneralCategory::Format)
        {
            return Err(InvalidValue::new(
                Self::REASON,
                "a username must not contain invisible formatting characters \
                 (zero-width characters, bidirectional controls)",
            ));
        }
        let compatible: String = value.nfkc().collect();
        if compatible.starts_with(char::is_whitespace) || compatible.ends_with(char::is_whitespace)
        {
            return Err(InvalidValue::new(
                Self::REASON,
                "a username must not begin or end with a space",
            ));
        }
        Ok(Username(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form two usernames are compared in (see [`username_key`]).
    pub fn key(&self) -> String {
        username_key(&self.0)
    }
}

/// The comparison form of a username, or of text searched among usernames: Unicode
/// compatibility normalization (NFKC) and full case folding, as the PRECIS username
/// profile (RFC 8265) compares names, applied until stable (NFKC, fold, NFKC).
pub fn username_key(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let compatible: String = text.nfkc().collect();
    caseless::default_case_fold_str(&compatible)
        .nfkc()
        .collect()
}

/// Whether two live usernames with the same [`username_key`] cannot both exist, given
/// each one's organization and whether it is organization-specific: an
/// organization-specific username is unique in its organization, any other among all
/// users. The stores enforce this same rule in SQL; their tests check it against this.
pub fn usernames_clash(
    (first_org, first_specific): (&str, bool),
    (second_org, second_specific): (&str, bool),
) -> bool {
    !(first_specific && second_specific) || first_org == second_org
}

impl TryFrom<String> for Username {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, InvalidValue> {
        Username::new(value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> String {
        value.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A syntactically valid email address (RFC 5321/5322 local and domain parts), without a
/// display name, at most 200 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
        let value = value.into();
        check_plain_text(&value, "an email address", "INVALID_EMAIL")?;
        let chars = value.chars().count();
        if chars == 0 || chars > MAX_EMAIL_CHARS {
            return Err(InvalidValue::new(
                "INVALID_EMAIL",
                format!(
                    "an email address must be 1 to {MAX_EMAIL_CHARS} characters long, got {chars}"
                ),
            ));
        }
        let options = email_address::Options::default()
            .without_display_text()
            .without_domain_literal();
        if email_address::EmailAddress::parse_with_options(&value, options).is_err() {
            return Err(InvalidValue::new(
                "INVALID_EMAIL",
                "the email address is not syntactically valid",
            ));
        }
        Ok(Email(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, InvalidValue> {
        Email::new(value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> String {
        value.0
    }
}

/// A phone number: 1 to 20 characters, digits with an optional leading `+`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// What [`Phone::new`] accepts, as a regular expression for API documents.
    pub const PATTERN: &'static str = r"^(\+[0-9]{1,19}|[0-9]{1,20})$";

    pub fn new(value: impl Into<String>) -> Result<Self, InvalidValue> {
        let value = value.into();
        let chars = value.chars().count();
        let digits = value.strip_prefix('+').unwrap_or(&value);
        if chars > MAX_PHONE_CHARS
            || digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(InvalidValue::new(
                "INVALID_PHONE",
                format!(
                    "a phone number must be 1 to {MAX_PHONE_CHARS} characters: digits with an optional leading '+'"
                ),
            ));
        }
        Ok(Phone(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Phone {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, InvalidValue> {
        Phone::new(value)
    }
}

impl From<Phone> for String {
    fn from(value: Phone) -> String {
        value.0
    }
}

/// The free-form profile of a user: a JSON object of at most 64 KiB (compact encoding).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>", into = "Map<String, Value>")]
pub struct UserData(Map<String, Value>);

impl UserData {
    pub fn new(object: Map<String, Value>) -> Result<Self, InvalidValue> {
        // Serializing a Map cannot fail (its keys are strings).
        let size = serde_json::to_vec(&object)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_DATA_BYTES {
            return Err(InvalidValue::new(
                "DATA_TOO_LARGE",
                format!("data must be at most {MAX_DATA_BYTES} bytes of JSON, got {size}"),
            ));
        }
        Ok(UserData(object))
    }

    /// Accepts any JSON value that is an object within the size limit.
    pub fn from_value(value: Value) -> Result<Self, InvalidValue> {
        match value {
            Value::Object(object) => UserData::new(object),
            _ => Err(InvalidValue::new(
                "INVALID_DATA",
                "data must be a JSON object",
            )),
        }
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Map<String, Value>> for UserData {
    type Error = InvalidValue;
    fn try_from(value: Map<String, Value>) -> Result<Self, InvalidValue> {
        UserData::new(value)
    }
}

impl From<UserData> for Map<String, Value> {
    fn from(value: UserData) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_one_to_two_hundred_printable_characters() {
        assert!(UserId::new("").is_err());
        assert!(UserId::new("a".repeat(200)).is_ok());
        assert!(
            UserId::new("ä".repeat(200)).is_ok(),
            "the limit counts characters, not bytes"
        );
        assert!(UserId::new("a".repeat(201)).is_err());
        assert!(UserId::new("a\nb").is_err());
        assert_eq!(
            UserId::new("x").map(|id| id.to_string()),
            Ok("x".to_owned())
        );
    }

    #[test]
    fn usernames_compare_case_insensitively() {
        let upper = Username::new("ÄDA").unwrap();
        let lower = Username::new("äda").unwrap();
        assert_eq!(upper.key(), lower.key());
    }

    #[test]
    fn usernames_compare_after_normalization_and_case_folding() {
        let key = |name: &str| Username::new(name).unwrap().key();
        assert_eq!(
            key("jos\u{e9}"),
            key("jose\u{301}"),
            "composed and decomposed"
        );
        assert_eq!(key("ｂｏｓｓ"), "boss", "fullwidth");
        assert_eq!(key("STRASSE"), key("straße"), "full case folding");
        assert_eq!(key("ﬁle"), key("FILE"), "ligature");
        assert_ne!(key("ada"), key("adb"));
        assert_eq!(username_key("JOSE\u{301}"), key("josé"));
    }

    #[test]
    fn look_alike_usernames_are_refused() {
        for bad in [
            " ada",
            "ada ",
            "\u{3000}ada",
            "ada\u{a0}",
            "a\u{200b}da",
            "a\u{200d}da",
            "\u{feff}ada",
            "ad\u{202e}a",
            "ad\u{2066}a",
            "a\u{200e}da",
            "a\u{0}da",
        ] {
            assert_eq!(
                Username::new(bad).map_err(|e| e.reason),
                Err("INVALID_USERNAME"),
                "{bad:?}"
            );
        }
        assert!(
            Username::new("Ada Lovelace").is_ok(),
            "inner spaces are fine"
        );
        assert!(Username::new("ada@example.com").is_ok());
    }

    #[test]
    fn user_ids_never_begin_with_an_underscore() {
        assert!(UserId::new("_search").is_err());
        assert!(UserId::new("a_b").is_ok());
    }

    #[test]
    fn text_never_carries_control_characters() {
        assert!(check_plain_text("a\u{0}b", "x", "R").is_err());
        assert!(check_plain_text("a\u{1b}b", "x", "R").is_err());
        assert!(check_plain_text("plain ü text", "x", "R").is_ok());
        assert_eq!(
            Email::new("a\u{0}b@example.com").map_err(|e| e.reason),
            Err("INVALID_EMAIL")
        );
    }

    #[test]
    fn emails_must_be_plain_valid_addresses() {
        assert!(Email::new("ada@example.com").is_ok());
        assert!(Email::new("ada.lovelace+tag@sub.example.org").is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "Ada <ada@example.com>",
            "a b@example.com",
        ] {
            assert_eq!(
                Email::new(bad).map_err(|e| e.reason),
                Err("INVALID_EMAIL"),
                "{bad:?}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(190));
        assert!(Email::new(long).is_err(), "over 200 characters");
    }

    #[test]
    fn phones_are_digits_with_optional_plus() {
        assert!(Phone::new("+41790000000").is_ok());
        assert!(Phone::new("0790000000").is_ok());
        for bad in ["", "+", "+41 79", "41-79", "+123456789012345678901", "٣٣"] {
            assert_eq!(
                Phone::new(bad).map_err(|e| e.reason),
                Err("INVALID_PHONE"),
                "{bad:?}"
            );
        }
        assert!(
            Phone::new("+".to_owned() + &"1".repeat(19)).is_ok(),
            "20 characters"
        );
    }

    #[test]
    fn data_must_be_a_small_object() {
        assert!(UserData::from_value(json!({"a": 1})).is_ok());
        assert_eq!(
            UserData::from_value(json!([1])).map_err(|e| e.reason),
            Err("INVALID_DATA")
        );
        let big = json!({ "k": "x".repeat(MAX_DATA_BYTES) });
        assert_eq!(
            UserData::from_value(big).map_err(|e| e.reason),
            Err("DATA_TOO_LARGE")
        );
    }

    proptest::proptest! {
        #[test]
        fn the_phone_pattern_accepts_what_phone_new_accepts(number in "[+0-9a ]{0,22}") {
            let pattern = regex::Regex::new(Phone::PATTERN).unwrap();
            proptest::prop_assert_eq!(pattern.is_match(&number), Phone::new(number.clone()).is_ok());
        }
    }

    #[test]
    fn organization_specific_names_repeat_only_across_organizations() {
        let (a, b) = ("org-a", "org-b");
        assert!(!usernames_clash((a, true), (b, true)));
        assert!(usernames_clash((a, true), (a, true)));
        for (first, second) in [(true, false), (false, true), (false, false)] {
            assert!(usernames_clash((a, first), (b, second)), "{first} {second}");
            assert!(usernames_clash((a, first), (a, second)), "{first} {second}");
        }
    }
}
