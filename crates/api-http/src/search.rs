//! `POST /resources/v3alpha/users/_search`: query parameters, the two body forms, and the
//! filter tree, parsed strictly into the ports' search model.

use serde::Serialize;
use serde_json::{Map, Value};
use userd_domain::user::UserState;
use userd_ports::search::{Filter, SearchRequest, SortColumn, TextMatch, TextMethod};
use userd_ports::service::SearchResult;

use crate::dto::UserOut;
use crate::error::ApiError;

const FILTER_NAMES: [&str; 10] = [
    "userIdFilter",
    "organizationIdFilter",
    "usernameFilter",
    "emailFilter",
    "phoneFilter",
    "stateFilter",
    "schemaIdFilter",
    "andFilter",
    "orFilter",
    "notFilter",
];

fn invalid(reason: &'static str, path: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(reason, format!("{path}: {message}")).with_field(path)
}

fn parse_u64(path: &str, value: &Value) -> Result<u64, ApiError> {
    match value {
        Value::Number(n) => n.as_u64(),
        // 64-bit integers may travel as strings (the gRPC-gateway convention).
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| invalid("INVALID_ARGUMENT", path, "expected a non-negative integer"))
}

fn parse_sort(path: &str, value: &str) -> Result<SortColumn, ApiError> {
    SortColumn::parse(value).ok_or_else(|| {
        invalid(
            "INVALID_ARGUMENT",
            path,
            format!("unknown sorting column {value:?}"),
        )
    })
}

/// Applies the query string: `query.offset`, `query.limit`, `query.desc`, `sortingColumn`.
pub(crate) fn apply_query_string(request: &mut SearchRequest, query: &str) -> Result<(), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded_pairs(query)?;
    for (key, value) in pairs {
        match key.as_str() {
            "query.offset" => request.offset = parse_u64(&key, &Value::String(value))?,
            "query.limit" => request.limit = parse_u64(&key, &Value::String(value))?,
            "query.desc" => {
                request.descending = match value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" | "" => false,
                    _ => return Err(invalid("INVALID_ARGUMENT", &key, "expected true or false")),
                }
            }
            "sortingColumn" => request.sort = Some(parse_sort(&key, &value)?),
            _ => {}
        }
    }
    Ok(())
}

fn serde_urlencoded_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    actix_web::web::Query::<Vec<(String, String)>>::from_query(query)
        .map(actix_web::web::Query::into_inner)
        .map_err(|e| ApiError::invalid("INVALID_QUERY", format!("invalid query string: {e}")))
}

/// Applies the body: a JSON array of filters, or `{"query", "sortingColumn", "filters"}`.
/// Values in the body win over the query string.
pub(crate) fn apply_body(request: &mut SearchRequest, body: &[u8]) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            "MALFORMED_JSON",
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    match value {
        Value::Array(filters) => {
            request.filters = parse_filters("filters", &filters)?;
        }
        Value::Object(object) => {
            if let Some(name) = object.keys().find(|k| k.ends_with("Filter")) {
                return Err(invalid(
                    "INVALID_FILTER",
                    name,
                    "filters go in a \"filters\" array (or send the array itself)",
                ));
            }
            if let Some(query) = object.get("query").filter(|q| !q.is_null()) {
                let query = query.as_object().ok_or_else(|| {
                    invalid("INVALID_REQUEST_BODY", "query", "expected an object")
                })?;
                if let Some(offset) = query.get("offset").filter(|v| !v.is_null()) {
                    request.offset = parse_u64("query.offset", offset)?;
                }
                if let Some(limit) = query.get("limit").filter(|v| !v.is_null()) {
                    request.limit = parse_u64("query.limit", limit)?;
                }
                if let Some(desc) = query.get("desc").filter(|v| !v.is_null()) {
                    request.descending = desc.as_bool().ok_or_else(|| {
                        invalid("INVALID_REQUEST_BODY", "query.desc", "expected a boolean")
                    })?;
                }
            }
            if let Some(column) = object.get("sortingColumn").filter(|v| !v.is_null()) {
                let name = column.as_str().ok_or_else(|| {
                    invalid("INVALID_REQUEST_BODY", "sortingColumn", "expected a string")
                })?;
                request.sort = Some(parse_sort("sortingColumn", name)?);
            }
            if let Some(filters) = object.get("filters").filter(|v| !v.is_null()) {
                let filters = filters.as_array().ok_or_else(|| {
                    invalid("INVALID_FILTER", "filters", "expected an array of filters")
                })?;
                request.filters = parse_filters("filters", filters)?;
            }
        }
        _ => {
            return Err(ApiError::invalid(
                "INVALID_REQUEST_BODY",
                "the body must be an array of filters or an object",
            ));
        }
    }
    Ok(())
}

fn parse_filters(path: &str, values: &[Value]) -> Result<Vec<Filter>, ApiError> {
    values
        .iter()
        .enumerate()
        .map(|(i, value)| parse_filter(&format!("{path}[{i}]"), value))
        .collect()
}

fn parse_filter(path: &str, value: &Value) -> Result<Filter, ApiError> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid("INVALID_FILTER", path, "a filter must be an object"))?;
    if let Some(unknown) = object
        .keys()
        .find(|k| k.ends_with("Filter") && !FILTER_NAMES.contains(&k.as_str()))
    {
        return Err(invalid(
            "UNKNOWN_FILTER",
            path,
            format!("unknown filter {unknown:?}"),
        ));
    }
    let present: Vec<(&String, &Value)> = object
        .iter()
        .filter(|(k, _)| FILTER_NAMES.contains(&k.as_str()))
        .collect();
    let [(name, body)] = present.as_slice() else {
        return Err(invalid(
            "INVALID_FILTER",
            path,
            format!(
                "a filter object must hold exactly one filter, found {}",
                present.len()
            ),
        ));
    };
    let path = format!("{path}.{name}");
    let body = body
        .as_object()
        .ok_or_else(|| invalid("INVALID_FILTER", &path, "expected an object"))?;
    Ok(match name.as_str() {
        "userIdFilter" => Filter::UserId(text(&path, body, "id")?),
        "organizationIdFilter" => Filter::OrganizationId(text(&path, body, "id")?),
        "usernameFilter" => Filter::Username {
            text: text(&path, body, "username")?,
            organization_specific: optional_bool(&path, body, "isOrganizationSpecific")?,
        },
        "emailFilter" => Filter::Email(text(&path, body, "address")?),
        "phoneFilter" => Filter::Phone(text(&path, body, "number")?),
        "stateFilter" => {
            let name = required_str(&path, body, "state")?;
            Filter::State(UserState::parse(name).ok_or_else(|| {
                invalid(
                    "INVALID_FILTER",
                    &format!("{path}.state"),
                    format!("unknown state {name:?}"),
                )
            })?)
        }
        "schemaIdFilter" => Filter::SchemaId(required_str(&path, body, "id")?.to_owned()),
        "andFilter" | "orFilter" => {
            let queries = body
                .get("queries")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    invalid(
                        "INVALID_FILTER",
                        &format!("{path}.queries"),
                        "expected an array of filters",
                    )
                })?;
            let children = parse_filters(&format!("{path}.queries"), queries)?;
            if name.as_str() == "andFilter" {
                Filter::And(children)
            } else {
                Filter::Or(children)
            }
        }
        _ => {
            let query = body.get("query").ok_or_else(|| {
                invalid(
                    "INVALID_FILTER",
                    &format!("{path}.query"),
                    "a filter is required",
                )
            })?;
            Filter::Not(Box::new(parse_filter(&format!("{path}.query"), query)?))
        }
    })
}

fn required_str<'a>(
    path: &str,
    body: &'a Map<String, Value>,
    key: &str,
) -> Result<&'a str, ApiError> {
    body.get(key).and_then(Value::as_str).ok_or_else(|| {
        invalid(
            "INVALID_FILTER",
            &format!("{path}.{key}"),
            "a string is required",
        )
    })
}

fn optional_bool(
    path: &str,
    body: &Map<String, Value>,
    key: &str,
) -> Result<Option<bool>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(
            "INVALID_FILTER",
            &format!("{path}.{key}"),
            "expected a boolean",
        )),
    }
}

fn text(path: &str, body: &Map<String, Value>, key: &str) -> Result<TextMatch, ApiError> {
    let value = required_str(path, body, key)?.to_owned();
    let method = match body.get("method") {
        None | Some(Value::Null) => TextMethod::Equals,
        Some(Value::String(name)) => TextMethod::parse(name).ok_or_else(|| {
            invalid(
                "INVALID_FILTER",
                &format!("{path}.method"),
                format!("unknown method {name:?}"),
            )
        })?,
        Some(_) => {
            return Err(invalid(
                "INVALID_FILTER",
                &format!("{path}.method"),
                "expected a string",
            ));
        }
    };
    Ok(TextMatch { value, method })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListDetails {
    /// Every match, not only this page's; a 64-bit integer as a string.
    total_result: String,
    applied_limit: String,
    timestamp: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchResponse {
    details: ListDetails,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::openapi::SortingColumn>)]
    sorting_column: Option<&'static str>,
    /// Users in the GetUser shape; omitted when nothing matches.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    result: Vec<UserOut>,
}

impl From<&SearchResult> for SearchResponse {
    fn from(found: &SearchResult) -> Self {
        SearchResponse {
            details: ListDetails {
                total_result: found.total.to_string(),
                applied_limit: found.applied_limit.to_string(),
                timestamp: found.timestamp.to_rfc3339(),
            },
            sorting_column: found.sort.map(SortColumn::as_str),
            result: found.users.iter().map(UserOut::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Result<SearchRequest, ApiError> {
        let mut request = SearchRequest::default();
        apply_body(&mut request, text.as_bytes()).map(|()| request)
    }

    #[test]
    fn both_body_forms_give_the_same_request() {
        let bare =
            body(r#"[{"emailFilter": {"address": "a", "method": "TEXT_FILTER_METHOD_CONTAINS"}}]"#)
                .unwrap();
        let wrapped = body(
            r#"{"filters": [{"emailFilter": {"address": "a", "method": "TEXT_FILTER_METHOD_CONTAINS"}}],
                "query": {"offset": "5", "limit": 7, "desc": true},
                "sortingColumn": "FIELD_NAME_EMAIL"}"#,
        )
            .unwrap();
        assert_eq!(bare.filters, wrapped.filters);
        assert_eq!(
            (wrapped.offset, wrapped.limit, wrapped.descending),
            (5, 7, true)
        );
        assert_eq!(wrapped.sort, Some(SortColumn::Email));
    }

    #[test]
    fn filter_trees_parse_with_defaults() {
        let request = body(
            r#"[{"andFilter": {"queries": [{"stateFilter": {"state": "USER_STATE_LOCKED"}},
                 {"notFilter": {"query": {"usernameFilter": {"username": "x", "isOrganizationSpecific": true}}}}]}}]"#,
        )
        .unwrap();
        assert_eq!(
            request.filters,
            vec![Filter::And(vec![
                Filter::State(UserState::Locked),
                Filter::Not(Box::new(Filter::Username {
                    text: TextMatch {
                        value: "x".into(),
                        method: TextMethod::Equals
                    },
                    organization_specific: Some(true),
                })),
            ])]
        );
    }

    #[test]
    fn bad_filters_are_refused_with_their_path() {
        let cases = [
            (r#"[{"fooFilter": {}}]"#, "UNKNOWN_FILTER"),
            (r#"[{}]"#, "INVALID_FILTER"),
            (
                r#"[{"emailFilter": {"address": "a"}, "phoneFilter": {"number": "1"}}]"#,
                "INVALID_FILTER",
            ),
            (
                r#"[{"stateFilter": {"state": "USER_STATE_HAPPY"}}]"#,
                "INVALID_FILTER",
            ),
            (r#"[{"emailFilter": {"address": 5}}]"#, "INVALID_FILTER"),
            (
                r#"[{"emailFilter": {"address": "a", "method": "REGEX"}}]"#,
                "INVALID_FILTER",
            ),
            (r#"[{"andFilter": {"queries": {}}}]"#, "INVALID_FILTER"),
            (r#"[5]"#, "INVALID_FILTER"),
            (r#"{"emailFilter": {"address": "a"}}"#, "INVALID_FILTER"),
            (r#"{"query": {"limit": -1}}"#, "INVALID_ARGUMENT"),
            (
                r#"{"sortingColumn": "FIELD_NAME_SHOE_SIZE"}"#,
                "INVALID_ARGUMENT",
            ),
            ("\"text\"", "INVALID_REQUEST_BODY"),
            ("[", "MALFORMED_JSON"),
        ];
        for (text, reason) in cases {
            let error = body(text).unwrap_err();
            assert_eq!(error.reason(), reason, "{text}");
        }
    }

    #[test]
    fn the_query_string_sets_paging_and_order() {
        let mut request = SearchRequest::default();
        apply_query_string(
            &mut request,
            "query.offset=10&query.limit=20&query.desc=true&sortingColumn=FIELD_NAME_ID&x=1",
        )
        .unwrap();
        assert_eq!(
            (
                request.offset,
                request.limit,
                request.descending,
                request.sort
            ),
            (10, 20, true, Some(SortColumn::Id))
        );
        assert!(apply_query_string(&mut request, "query.limit=many").is_err());
    }
}
