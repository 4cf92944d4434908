//! Messages to the use cases' types and back. Values are validated by the domain's own
//! constructors; a field at fault is named as the client spelled it.

use buffa::{EnumValue, Enumeration, MessageField};
use buffa_types::google::protobuf::{Struct, Timestamp as ProtoTimestamp};
use userd_domain::Timestamp;
use userd_domain::user::{
    Contact as DomainContact, EmailContact, PhoneContact, User, UserPatch, UserState,
};
use userd_domain::values::{Email, OrgId, Phone, SchemaId, UserData, UserId, Username};
use userd_ports::ServiceError;
use userd_ports::login::SetPassword;
use userd_ports::search::{Filter, SearchRequest, SortColumn, TextMatch, TextMethod};
use userd_ports::service::{CodeRequests, NewUser, NewUsername, ResourceDetails};

use crate::passwords::{self, Given, Proof};
use crate::proto::zitadel::object::v3alpha as object;
use crate::proto::zitadel::resources::object::v3alpha as resources;
use crate::proto::zitadel::resources::user::v3alpha as v3;
use v3::__buffa::oneof::search_filter::Filter as ProtoFilter;
use v3::__buffa::oneof::set_email::Verification as EmailVerification;
use v3::__buffa::oneof::set_phone::Verification as PhoneVerification;

pub(crate) fn invalid(field: &str, error: userd_domain::values::InvalidValue) -> ServiceError {
    ServiceError::invalid_field(field, error)
}

pub(crate) fn user_id(id: &str) -> Result<UserId, ServiceError> {
    UserId::new(id).map_err(|e| invalid("id", e))
}

/// `organization.org_id`, when given: where to create a user, or where to expect it.
pub(crate) fn organization(
    organization: Option<&object::Organization>,
) -> Result<Option<OrgId>, ServiceError> {
    use object::__buffa::oneof::organization::Property;
    match organization.and_then(|o| o.property.as_ref()) {
        None => Ok(None),
        Some(Property::OrgId(id)) => OrgId::new(id.as_str())
            .map(Some)
            .map_err(|e| invalid("organization.orgId", e)),
        Some(Property::OrgDomain(_)) => Err(ServiceError::InvalidArgument {
            reason: "UNSUPPORTED_ORGANIZATION_DOMAIN",
            message: "userd identifies organizations by id, not by domain".to_owned(),
            field: Some("organization.orgDomain".to_owned()),
        }),
    }
}

fn data_of(data: &Struct) -> Result<UserData, ServiceError> {
    let value = serde_json::to_value(data).map_err(|e| ServiceError::InvalidArgument {
        reason: "INVALID_DATA",
        message: format!("data is not a JSON object: {e}"),
        field: Some("data".to_owned()),
    })?;
    UserData::from_value(value).map_err(|e| invalid("data", e))
}

fn email_of(email: &v3::SetEmail) -> Result<EmailContact, ServiceError> {
    Ok(EmailContact {
        address: Email::new(email.address.as_str())
            .map_err(|e| invalid("contact.email.address", e))?,
        verified: matches!(
            email.verification,
            Some(EmailVerification::IsVerified(true))
        ),
    })
}

fn phone_of(phone: &v3::SetPhone) -> Result<PhoneContact, ServiceError> {
    Ok(PhoneContact {
        number: Phone::new(phone.number.as_str())
            .map_err(|e| invalid("contact.phone.number", e))?,
        verified: matches!(
            phone.verification,
            Some(PhoneVerification::IsVerified(true))
        ),
    })
}

fn schema_of(id: &str) -> Result<SchemaId, ServiceError> {
    SchemaId::new(id).map_err(|e| invalid("schemaId", e))
}

pub(crate) fn new_user(user: &v3::CreateUser) -> Result<NewUser, ServiceError> {
    let contact = user.contact.as_option();
    let usernames = user
        .authenticators
        .as_option()
        .map(|a| a.usernames.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Ok(NewUsername {
                username: Username::new(name.username.as_str())
                    .map_err(|e| invalid(&format!("authenticators.usernames[{i}].username"), e))?,
                organization_specific: name.is_organization_specific,
            })
        })
        .collect::<Result<Vec<_>, ServiceError>>()?;
    Ok(NewUser {
        user_id: user.user_id.as_deref().map(user_id).transpose()?,
        // proto3 cannot tell an empty schema id from none.
        schema_id: (!user.schema_id.is_empty())
            .then(|| schema_of(&user.schema_id))
            .transpose()?,
        data: user
            .data
            .as_option()
            .map(data_of)
            .transpose()?
            .unwrap_or_default(),
        contact: DomainContact {
            email: contact
                .and_then(|c| c.email.as_option())
                .map(email_of)
                .transpose()?,
            phone: contact
                .and_then(|c| c.phone.as_option())
                .map(phone_of)
                .transpose()?,
        },
        usernames,
        password: user
            .authenticators
            .as_option()
            .and_then(|a| a.password.as_option())
            .map(|p| set_password("authenticators.password", p))
            .transpose()?,
        codes: codes(contact),
    })
}

/// The codes a v3alpha contact asks for (`send_code`, `return_code`).
pub(crate) fn codes(contact: Option<&v3::SetContact>) -> CodeRequests {
    use userd_ports::contact::CodeDelivery;
    CodeRequests {
        email: contact
            .and_then(|c| c.email.as_option())
            .and_then(|e| match &e.verification {
                Some(EmailVerification::SendCode(send)) => Some(CodeDelivery::Send {
                    url_template: send.url_template.clone(),
                }),
                Some(EmailVerification::ReturnCode(_)) => Some(CodeDelivery::Return),
                _ => None,
            }),
        phone: contact
            .and_then(|c| c.phone.as_option())
            .and_then(|p| match &p.verification {
                Some(PhoneVerification::SendCode(_)) => {
                    Some(CodeDelivery::Send { url_template: None })
                }
                Some(PhoneVerification::ReturnCode(_)) => Some(CodeDelivery::Return),
                _ => None,
            }),
    }
}

/// ZITADEL's v3alpha `SetPassword`; `field` is where the client put it.
pub(crate) fn set_password(
    field: &str,
    password: &v3::SetPassword,
) -> Result<SetPassword, ServiceError> {
    use v3::__buffa::oneof::set_password::{Type, Verification};
    passwords::set_password(
        &format!("{field}.password"),
        password.r#type.as_ref().map(|given| match given {
            Type::Password(text) => Given::Plain(text),
            Type::Hash(hash) => Given::Hash(hash),
        }),
        password.change_required,
        password.verification.as_ref().map(|proof| match proof {
            Verification::CurrentPassword(text) => Proof::CurrentPassword(text),
            Verification::VerificationCode(code) => Proof::VerificationCode(code),
        }),
    )
}

pub(crate) fn patch(user: &v3::PatchUser) -> Result<UserPatch, ServiceError> {
    let contact = user.contact.as_option();
    Ok(UserPatch {
        schema_id: user.schema_id.as_deref().map(schema_of).transpose()?,
        data: user.data.as_option().map(data_of).transpose()?,
        email: contact
            .and_then(|c| c.email.as_option())
            .map(email_of)
            .transpose()?,
        phone: contact
            .and_then(|c| c.phone.as_option())
            .map(phone_of)
            .transpose()?,
    })
}

// --- search ------------------------------------------------------------------------

fn method_of(method: &EnumValue<resources::TextFilterMethod>) -> Result<TextMethod, ServiceError> {
    method
        .as_known()
        .and_then(|m| TextMethod::parse(m.proto_name()))
        .ok_or_else(|| ServiceError::invalid("INVALID_FILTER", "unknown text filter method"))
}

fn text(
    value: &str,
    method: &EnumValue<resources::TextFilterMethod>,
) -> Result<TextMatch, ServiceError> {
    Ok(TextMatch {
        value: value.to_owned(),
        method: method_of(method)?,
    })
}

fn state_of(state: &EnumValue<v3::State>) -> Option<UserState> {
    state
        .as_known()
        .and_then(|s| UserState::parse(s.proto_name()))
}

fn filter_of(filter: &v3::SearchFilter) -> Result<Filter, ServiceError> {
    let Some(filter) = filter.Filter.as_ref() else {
        return Err(ServiceError::invalid(
            "INVALID_FILTER",
            "a filter must set one condition",
        ));
    };
    let all = |filters: &[v3::SearchFilter]| -> Result<Vec<Filter>, ServiceError> {
        filters.iter().map(filter_of).collect()
    };
    Ok(match filter {
        ProtoFilter::OrFilter(or) => Filter::Or(all(&or.queries)?),
        ProtoFilter::AndFilter(and) => Filter::And(all(&and.queries)?),
        ProtoFilter::NotFilter(not) => {
            let inner = not.query.as_option().ok_or_else(|| {
                ServiceError::invalid("INVALID_FILTER", "notFilter needs a query")
            })?;
            Filter::Not(Box::new(filter_of(inner)?))
        }
        ProtoFilter::UserIdFilter(f) => Filter::UserId(text(&f.id, &f.method)?),
        ProtoFilter::OrganizationIdFilter(f) => Filter::OrganizationId(text(&f.id, &f.method)?),
        ProtoFilter::UsernameFilter(f) => Filter::Username {
            text: text(&f.username, &f.method)?,
            // proto3 cannot tell false from unset: false means either kind.
            organization_specific: f.is_organization_specific.then_some(true),
        },
        ProtoFilter::EmailFilter(f) => Filter::Email(text(&f.address, &f.method)?),
        ProtoFilter::PhoneFilter(f) => Filter::Phone(text(&f.number, &f.method)?),
        ProtoFilter::StateFilter(f) => Filter::State(state_of(&f.state).ok_or_else(|| {
            ServiceError::invalid("INVALID_FILTER", "stateFilter needs a USER_STATE_* value")
        })?),
        ProtoFilter::SchemaIdFilter(f) => Filter::SchemaId(f.id.clone()),
        ProtoFilter::SchemaTypeFilter(_) => {
            return Err(ServiceError::invalid(
                "UNSUPPORTED_FILTER",
                "userd keeps no schema types; filter by schema id",
            ));
        }
    })
}

pub(crate) fn search_request(
    request: &v3::SearchUsersRequest,
) -> Result<SearchRequest, ServiceError> {
    let query = request.query.as_option();
    let sort = match request.sorting_column.as_known() {
        None | Some(v3::FieldName::FIELD_NAME_UNSPECIFIED) => None,
        Some(column) => Some(SortColumn::parse(column.proto_name()).ok_or_else(|| {
            ServiceError::invalid("INVALID_SORTING_COLUMN", "userd cannot sort by this column")
        })?),
    };
    Ok(SearchRequest {
        filters: request
            .filters
            .iter()
            .map(filter_of)
            .collect::<Result<_, _>>()?,
        sort,
        descending: query.is_some_and(|q| q.desc),
        offset: query.map_or(0, |q| q.offset),
        limit: query.map_or(0, |q| u64::from(q.limit)),
        organization: None,
    })
}

// --- answers -----------------------------------------------------------------------

pub(crate) fn timestamp(at: Timestamp) -> ProtoTimestamp {
    let micros = at.unix_micros();
    let seconds = micros.div_euclid(1_000_000);
    let nanos = i32::try_from(micros.rem_euclid(1_000_000) * 1_000).unwrap_or_default();
    ProtoTimestamp::from_unix(seconds, nanos)
}

pub(crate) fn details(details: &ResourceDetails) -> resources::Details {
    resources::Details {
        id: details.id.clone(),
        created: MessageField::some(timestamp(details.created)),
        changed: MessageField::some(timestamp(details.changed)),
        owner: MessageField::some(object::Owner {
            r#type: EnumValue::from(
                object::OwnerType::from_proto_name(details.owner.kind.as_str())
                    .unwrap_or(object::OwnerType::OWNER_TYPE_UNSPECIFIED),
            ),
            id: details.owner.id.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn user(user: &User) -> v3::GetUser {
    let contact = &user.contact;
    let has_contact = contact.email.is_some() || contact.phone.is_some();
    v3::GetUser {
        details: MessageField::some(details(&ResourceDetails::of_user(user))),
        schema: user
            .schema_id
            .as_ref()
            .map(|id| v3::GetSchema {
                id: id.to_string(),
                ..Default::default()
            })
            .into(),
        data: serde_json::from_value::<Struct>(serde_json::Value::Object(
            user.data.as_map().clone(),
        ))
        .ok()
        .into(),
        contact: has_contact
            .then(|| v3::Contact {
                email: contact
                    .email
                    .as_ref()
                    .map(|e| v3::Email {
                        address: e.address.as_str().to_owned(),
                        is_verified: e.verified,
                        ..Default::default()
                    })
                    .into(),
                phone: contact
                    .phone
                    .as_ref()
                    .map(|p| v3::Phone {
                        number: p.number.as_str().to_owned(),
                        is_verified: p.verified,
                        ..Default::default()
                    })
                    .into(),
                ..Default::default()
            })
            .into(),
        authenticators: (!user.usernames.is_empty() || user.password.is_some())
            .then(|| v3::Authenticators {
                usernames: user
                    .usernames
                    .iter()
                    .map(|u| v3::Username {
                        username_id: u.id.to_string(),
                        username: u.username.as_str().to_owned(),
                        is_organization_specific: u.organization_specific,
                        ..Default::default()
                    })
                    .collect(),
                password: user
                    .password
                    .as_ref()
                    .map(|p| v3::Password {
                        last_changed: MessageField::some(timestamp(p.changed)),
                        ..Default::default()
                    })
                    .into(),
                ..Default::default()
            })
            .into(),
        state: EnumValue::from(
            v3::State::from_proto_name(user.state().as_str())
                .unwrap_or(v3::State::USER_STATE_UNSPECIFIED),
        ),
        ..Default::default()
    }
}
