//! `zitadel.user.v2` messages to the use cases' types and back. A v2 human is a userd
//! user: its profile lives in `data` under the same keys, its e-mail and phone are the
//! contact, its username is the first username (not organization-specific).

use buffa::{EnumValue, Enumeration, MessageField};
use serde_json::{Map, Value};
use userd_domain::user::{Contact, EmailContact, PhoneContact, User, UserState};
use userd_domain::values::{Email, OrgId, Phone, UserData, UserId, Username};
use userd_ports::ServiceError;
use userd_ports::search::{Filter, SearchRequest, SortColumn, TextMatch, TextMethod};
use userd_ports::service::{CodeRequests, NewUser, NewUsername, ResourceDetails};

use userd_ports::login::SetPassword;

use crate::convert::{invalid, timestamp};
use crate::passwords::{self, Given};
use crate::proto::zitadel::object::v2 as object;
use crate::proto::zitadel::user::v2;
use v2::__buffa::oneof::search_query::Query;
use v2::__buffa::oneof::set_human_email::Verification as EmailVerification;
use v2::__buffa::oneof::set_human_phone::Verification as PhoneVerification;

/// The profile fields, as keys of `data`.
const GIVEN_NAME: &str = "givenName";
const FAMILY_NAME: &str = "familyName";
const NICK_NAME: &str = "nickName";
const DISPLAY_NAME: &str = "displayName";
const PREFERRED_LANGUAGE: &str = "preferredLanguage";
const GENDER: &str = "gender";

pub(crate) fn organization(
    organization: Option<&object::Organization>,
) -> Result<Option<OrgId>, ServiceError> {
    use object::__buffa::oneof::organization::Org;
    match organization.and_then(|o| o.org.as_ref()) {
        None => Ok(None),
        Some(Org::OrgId(id)) => OrgId::new(id.as_str())
            .map(Some)
            .map_err(|e| invalid("organization.orgId", e)),
        Some(Org::OrgDomain(_)) => Err(ServiceError::InvalidArgument {
            reason: "UNSUPPORTED_ORGANIZATION_DOMAIN",
            message: "userd identifies organizations by id, not by domain".to_owned(),
            field: Some("organization.orgDomain".to_owned()),
        }),
    }
}

/// Writes a profile into `data`, keeping every other key.
pub(crate) fn merge_profile(data: &mut Map<String, Value>, profile: &v2::SetHumanProfile) {
    let mut set = |key: &str, value: Option<&str>| match value {
        Some(value) => {
            data.insert(key.to_owned(), Value::String(value.to_owned()));
        }
        None => {
            data.remove(key);
        }
    };
    set(GIVEN_NAME, Some(&profile.given_name));
    set(FAMILY_NAME, Some(&profile.family_name));
    set(NICK_NAME, profile.nick_name.as_deref());
    set(DISPLAY_NAME, profile.display_name.as_deref());
    set(PREFERRED_LANGUAGE, profile.preferred_language.as_deref());
    set(
        GENDER,
        profile
            .gender
            .as_ref()
            .and_then(EnumValue::as_known)
            .filter(|g| *g != v2::Gender::GENDER_UNSPECIFIED)
            .map(|g| g.proto_name()),
    );
}

/// Writes the profile fields an update names into `data`; absent ones stay as they are.
pub(crate) fn merge_profile_update(
    data: &mut Map<String, Value>,
    profile: &v2::update_user_request::human::Profile,
) {
    let mut set = |key: &str, value: Option<&str>| {
        if let Some(value) = value {
            data.insert(key.to_owned(), Value::String(value.to_owned()));
        }
    };
    set(GIVEN_NAME, profile.given_name.as_deref());
    set(FAMILY_NAME, profile.family_name.as_deref());
    set(NICK_NAME, profile.nick_name.as_deref());
    set(DISPLAY_NAME, profile.display_name.as_deref());
    set(PREFERRED_LANGUAGE, profile.preferred_language.as_deref());
    match profile.gender.as_ref().and_then(EnumValue::as_known) {
        Some(v2::Gender::GENDER_UNSPECIFIED) => {
            data.remove(GENDER);
        }
        Some(gender) => {
            data.insert(
                GENDER.to_owned(),
                Value::String(gender.proto_name().to_owned()),
            );
        }
        None => {}
    }
}

pub(crate) fn user_data(data: Map<String, Value>) -> Result<UserData, ServiceError> {
    UserData::new(data).map_err(|e| invalid("profile", e))
}

pub(crate) fn email(email: &v2::SetHumanEmail) -> Result<EmailContact, ServiceError> {
    Ok(EmailContact {
        address: Email::new(email.email.as_str()).map_err(|e| invalid("email.email", e))?,
        verified: matches!(
            email.verification,
            Some(EmailVerification::IsVerified(true))
        ),
    })
}

/// The codes a v2 e-mail and phone ask for (`send_code`, `return_code`).
pub(crate) fn codes(
    email: Option<&v2::SetHumanEmail>,
    phone: Option<&v2::SetHumanPhone>,
) -> CodeRequests {
    use userd_ports::contact::CodeDelivery;
    CodeRequests {
        email: email.and_then(|e| match &e.verification {
            Some(EmailVerification::SendCode(send)) => Some(CodeDelivery::Send {
                url_template: send.url_template.clone(),
            }),
            Some(EmailVerification::ReturnCode(_)) => Some(CodeDelivery::Return),
            _ => None,
        }),
        phone: phone
            .filter(|p| !p.phone.is_empty())
            .and_then(|p| match &p.verification {
                Some(PhoneVerification::SendCode(_)) => {
                    Some(CodeDelivery::Send { url_template: None })
                }
                Some(PhoneVerification::ReturnCode(_)) => Some(CodeDelivery::Return),
                _ => None,
            }),
    }
}

/// A phone, or none when the number is empty (v2 clears a phone that way).
pub(crate) fn phone(phone: &v2::SetHumanPhone) -> Result<Option<PhoneContact>, ServiceError> {
    if phone.phone.is_empty() {
        return Ok(None);
    }
    Ok(Some(PhoneContact {
        number: Phone::new(phone.phone.as_str()).map_err(|e| invalid("phone.phone", e))?,
        verified: matches!(
            phone.verification,
            Some(PhoneVerification::IsVerified(true))
        ),
    }))
}

/// What AddHumanUser and CreateUser's human both carry.
pub(crate) struct Human<'a> {
    pub user_id: Option<&'a str>,
    pub username: Option<&'a str>,
    pub profile: Option<&'a v2::SetHumanProfile>,
    pub email: Option<&'a v2::SetHumanEmail>,
    pub phone: Option<&'a v2::SetHumanPhone>,
    pub password: Option<Password<'a>>,
}

/// The password a new human user starts with.
pub(crate) enum Password<'a> {
    Plain(&'a v2::Password),
    Hashed(&'a v2::HashedPassword),
}

impl Password<'_> {
    fn request(&self) -> Result<SetPassword, ServiceError> {
        match self {
            Password::Plain(p) => passwords::set_password(
                "password.password",
                Some(Given::Plain(&p.password)),
                p.change_required,
                None,
            ),
            Password::Hashed(p) => passwords::set_password(
                "hashedPassword.hash",
                Some(Given::Hash(&p.hash)),
                p.change_required,
                None,
            ),
        }
    }
}

pub(crate) fn new_human(human: &Human<'_>) -> Result<NewUser, ServiceError> {
    let email_input = human
        .email
        .ok_or_else(|| ServiceError::invalid("INVALID_EMAIL", "a human user needs an e-mail"))?;
    let email = email(email_input)?;
    let mut data = Map::new();
    if let Some(profile) = human.profile {
        merge_profile(&mut data, profile);
    }
    let username = human
        .username
        .map_or_else(|| email.address.as_str().to_owned(), str::to_owned);
    Ok(NewUser {
        user_id: human
            .user_id
            .map(|id| UserId::new(id).map_err(|e| invalid("userId", e)))
            .transpose()?,
        schema_id: None,
        data: user_data(data)?,
        contact: Contact {
            email: Some(email),
            phone: human.phone.map(phone).transpose()?.flatten(),
        },
        usernames: vec![NewUsername {
            username: Username::new(username).map_err(|e| invalid("username", e))?,
            organization_specific: false,
        }],
        password: human.password.as_ref().map(Password::request).transpose()?,
        codes: codes(human.email, human.phone),
    })
}

// --- search ------------------------------------------------------------------------

fn unsupported(what: &str) -> ServiceError {
    ServiceError::invalid(
        "UNSUPPORTED_QUERY",
        format!("userd cannot search by {what}"),
    )
}

fn text(
    value: &str,
    method: &EnumValue<object::TextQueryMethod>,
) -> Result<TextMatch, ServiceError> {
    // TEXT_QUERY_METHOD_X is TEXT_FILTER_METHOD_X by another prefix.
    let method = method
        .as_known()
        .and_then(|m| m.proto_name().strip_prefix("TEXT_QUERY_METHOD_"))
        .and_then(|m| TextMethod::parse(&format!("TEXT_FILTER_METHOD_{m}")))
        .ok_or_else(|| ServiceError::invalid("INVALID_FILTER", "unknown text query method"))?;
    Ok(TextMatch {
        value: value.to_owned(),
        method,
    })
}

fn equals(value: &str) -> TextMatch {
    TextMatch {
        value: value.to_owned(),
        method: TextMethod::Equals,
    }
}

fn filter(query: &v2::SearchQuery) -> Result<Filter, ServiceError> {
    let Some(query) = query.query.as_ref() else {
        return Err(ServiceError::invalid(
            "INVALID_FILTER",
            "a query must set one condition",
        ));
    };
    let all = |queries: &[v2::SearchQuery]| -> Result<Vec<Filter>, ServiceError> {
        queries.iter().map(filter).collect()
    };
    Ok(match query {
        Query::OrQuery(or) => Filter::Or(all(&or.queries)?),
        Query::AndQuery(and) => Filter::And(all(&and.queries)?),
        Query::NotQuery(not) => {
            let inner = not
                .query
                .as_option()
                .ok_or_else(|| ServiceError::invalid("INVALID_FILTER", "notQuery needs a query"))?;
            Filter::Not(Box::new(filter(inner)?))
        }
        Query::InUserIdsQuery(q) => Filter::Or(
            q.user_ids
                .iter()
                .map(|id| Filter::UserId(equals(id)))
                .collect(),
        ),
        Query::InUserEmailsQuery(q) => Filter::Or(
            q.user_emails
                .iter()
                .map(|address| Filter::Email(equals(address)))
                .collect(),
        ),
        Query::UserNameQuery(q) => Filter::Username {
            text: text(&q.user_name, &q.method)?,
            organization_specific: None,
        },
        Query::EmailQuery(q) => Filter::Email(text(&q.email_address, &q.method)?),
        Query::PhoneQuery(q) => Filter::Phone(text(&q.number, &q.method)?),
        Query::StateQuery(q) => Filter::State(
            q.state
                .as_known()
                .and_then(|s| UserState::parse(s.proto_name()))
                .ok_or_else(|| unsupported("this state"))?,
        ),
        Query::OrganizationIdQuery(q) => Filter::OrganizationId(equals(&q.organization_id)),
        Query::FirstNameQuery(_) => return Err(unsupported("first name")),
        Query::LastNameQuery(_) => return Err(unsupported("last name")),
        Query::NickNameQuery(_) => return Err(unsupported("nickname")),
        Query::DisplayNameQuery(_) => return Err(unsupported("display name")),
        Query::LoginNameQuery(_) => return Err(unsupported("login name")),
        Query::TypeQuery(_) => return Err(unsupported("user type")),
    })
}

pub(crate) fn search_request(
    request: &v2::ListUsersRequest,
) -> Result<SearchRequest, ServiceError> {
    let query = request.query.as_option();
    let sort = match request.sorting_column.as_known() {
        None | Some(v2::UserFieldName::USER_FIELD_NAME_UNSPECIFIED) => None,
        Some(v2::UserFieldName::USER_FIELD_NAME_CREATION_DATE) => Some(SortColumn::CreationDate),
        Some(v2::UserFieldName::USER_FIELD_NAME_EMAIL) => Some(SortColumn::Email),
        Some(v2::UserFieldName::USER_FIELD_NAME_STATE) => Some(SortColumn::State),
        Some(_) => {
            return Err(ServiceError::invalid(
                "INVALID_SORTING_COLUMN",
                "userd sorts by creation date, email or state",
            ));
        }
    };
    Ok(SearchRequest {
        filters: request
            .queries
            .iter()
            .map(filter)
            .collect::<Result<_, _>>()?,
        sort,
        // ZITADEL's v2 lists newest first unless asked otherwise.
        descending: !query.is_some_and(|q| q.asc),
        offset: query.map_or(0, |q| q.offset),
        limit: query.map_or(0, |q| u64::from(q.limit)),
        organization: None,
    })
}

// --- answers -----------------------------------------------------------------------

pub(crate) fn details(details: &ResourceDetails) -> object::Details {
    object::Details {
        sequence: details.sequence,
        change_date: MessageField::some(timestamp(details.changed)),
        resource_owner: details.owner.id.clone(),
        creation_date: MessageField::some(timestamp(details.created)),
        ..Default::default()
    }
}

fn text_of(data: &Map<String, Value>, key: &str) -> Option<String> {
    data.get(key).and_then(Value::as_str).map(str::to_owned)
}

pub(crate) fn user(user: &User) -> v2::User {
    let data = user.data.as_map();
    let username = user
        .usernames
        .first()
        .map(|u| u.username.as_str().to_owned())
        .unwrap_or_default();
    let state = EnumValue::from(
        v2::UserState::from_proto_name(user.state().as_str())
            .unwrap_or(v2::UserState::USER_STATE_UNSPECIFIED),
    );
    let login_names: Vec<String> = user
        .usernames
        .iter()
        .map(|u| u.username.as_str().to_owned())
        .collect();
    let profile = v2::HumanProfile {
        given_name: text_of(data, GIVEN_NAME).unwrap_or_default(),
        family_name: text_of(data, FAMILY_NAME).unwrap_or_default(),
        nick_name: text_of(data, NICK_NAME),
        display_name: text_of(data, DISPLAY_NAME),
        preferred_language: text_of(data, PREFERRED_LANGUAGE),
        gender: text_of(data, GENDER)
            .and_then(|g| v2::Gender::from_proto_name(&g))
            .map(EnumValue::from),
        ..Default::default()
    };
    let human = v2::HumanUser {
        user_id: user.id.to_string(),
        state,
        username: username.clone(),
        login_names: login_names.clone(),
        preferred_login_name: username.clone(),
        profile: MessageField::some(profile),
        email: user
            .contact
            .email
            .as_ref()
            .map(|e| v2::HumanEmail {
                email: e.address.as_str().to_owned(),
                is_verified: e.verified,
                ..Default::default()
            })
            .into(),
        phone: user
            .contact
            .phone
            .as_ref()
            .map(|p| v2::HumanPhone {
                phone: p.number.as_str().to_owned(),
                is_verified: p.verified,
                ..Default::default()
            })
            .into(),
        password_change_required: user.password.as_ref().is_some_and(|p| p.change_required),
        password_changed: user.password.as_ref().map(|p| timestamp(p.changed)).into(),
        ..Default::default()
    };
    v2::User {
        user_id: user.id.to_string(),
        details: MessageField::some(details(&ResourceDetails::of_user(user))),
        state,
        username: username.clone(),
        login_names,
        preferred_login_name: username,
        r#type: Some(v2::__buffa::oneof::user::Type::Human(Box::new(human))),
        ..Default::default()
    }
}
