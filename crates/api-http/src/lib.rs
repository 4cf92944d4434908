//! userd's HTTP adapter: the routes of docs/api.md, its JSON conventions and its
//! error format, on actix-web. It talks to the application only through
//! [`userd_ports::service::UserService`].

mod body;
mod connection;
mod contact;
mod dto;
mod error;
mod handlers;
mod login;
mod observability;
mod openapi;
mod request_context;
mod routes;
mod search;
mod server;

pub use body::MAX_BODY_BYTES;
pub use error::{ApiError, grpc_code, http_status};
pub use observability::Metrics;
pub use openapi::ApiDoc;
pub use request_context::RequestId;
pub use routes::{Services, app, served_routes};
pub use server::{ServerSettings, listen, serve};

/// Entry points for the fuzz targets in `fuzz/`: each parses and validates one kind of
/// request body, exactly as the handlers do, and must never panic, whatever the bytes.
#[doc(hidden)]
pub mod fuzzing {
    use crate::body::parse_json;
    use crate::dto::{CreateTokenRequest, CreateUserRequest, MemberRequest, PatchUserRequest};

    pub fn create_user_body(data: &[u8]) {
        if let Ok(request) = parse_json::<CreateUserRequest>(data) {
            let _ = request.into_new_user();
        }
    }

    pub fn patch_user_body(data: &[u8]) {
        if let Ok(request) = parse_json::<PatchUserRequest>(data) {
            let _ = request.into_patch();
        }
    }

    pub fn member_body(data: &[u8]) {
        if let Ok(request) = parse_json::<MemberRequest>(data) {
            let _ = request.into_parts();
        }
    }

    pub fn token_body(data: &[u8]) {
        if let Ok(request) = parse_json::<CreateTokenRequest>(data) {
            let _ = request.expiration();
        }
    }

    /// The search body and query string, down to the filter tree's size.
    pub fn search(query: &str, body: &[u8]) {
        let mut request = userd_ports::search::SearchRequest::default();
        if crate::search::apply_query_string(&mut request, query).is_ok()
            && crate::search::apply_body(&mut request, body).is_ok()
        {
            for filter in &request.filters {
                let _ = filter.size();
            }
        }
    }

    #[cfg(test)]
    mod tests {
        /// The fuzz entry points on a few nasty inputs, so they are exercised on stable too.
        #[test]
        fn survive_hostile_bytes() {
            let inputs: [&[u8]; 8] = [
                b"",
                b"\xff\xfe",
                b"{\"data\": {\"a\": [[[[[[[[[[]]]]]]]]]]}}",
                b"{\"userId\": \"\\u0000\"}",
                b"[{\"notFilter\": {\"query\": {\"notFilter\": {}}}}]",
                b"{\"contact\": {\"email\": {\"address\": \"a@\\ud800\"}}}",
                b"{\"expirationDate\": \"9999-99-99T99:99:99Z\"}",
                b"{\"roles\": [null, 1, \"IAM_OWNER\"], \"userId\": []}",
            ];
            for input in inputs {
                super::create_user_body(input);
                super::patch_user_body(input);
                super::member_body(input);
                super::token_body(input);
                super::search(
                    "query.limit=99999999999999999999999&query.desc=maybe",
                    input,
                );
            }
        }
    }
}
