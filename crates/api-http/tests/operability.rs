//! The OpenAPI document against the routes actually served, the docs page, metrics, and
//! request timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{Method, StatusCode, header};
use actix_web::test::{self, TestRequest};
use async_trait::async_trait;
use serde_json::Value;
use userd_api_http::{ApiDoc, Metrics, Services, app, served_routes};
use userd_domain::authz::{Caller, Role, RoleSet};
use userd_domain::user::{Command, User, UserState};
use userd_domain::values::{OrgId, UserId};
use userd_ports::ServiceError;
use userd_ports::admin::MockAdminService;
use userd_ports::search::{SearchRequest, SortColumn, TextMethod};
use userd_ports::service::{
    Credentials, NewUser, OwnerType, ResourceDetails, SearchResult, UserRef, UserService,
};
use utoipa::OpenApi;

/// A service whose reads take `delay`, to see timeouts happen.
struct Slow {
    delay: Duration,
}

#[async_trait]
impl UserService for Slow {
    async fn authenticate(&self, _: &Credentials) -> Result<Caller, ServiceError> {
        Ok(Caller {
            user_id: UserId::new("admin").unwrap(),
            org_id: OrgId::new("org").unwrap(),
            roles: userd_domain::authz::Memberships {
                instance: RoleSet::new([Role::IamOwner]),
                organizations: BTreeMap::new(),
            },
            ceiling: None,
        })
    }
    async fn create_user(
        &self,
        _: &Caller,
        _: Option<OrgId>,
        _: NewUser,
    ) -> Result<userd_ports::service::WrittenUser, ServiceError> {
        Err(ServiceError::Unauthenticated)
    }
    async fn patch_user(
        &self,
        _: &Caller,
        _: &UserRef,
        _: userd_domain::user::UserPatch,
        _: userd_ports::service::CodeRequests,
    ) -> Result<userd_ports::service::WrittenUser, ServiceError> {
        Err(ServiceError::Unauthenticated)
    }
    async fn get_user(&self, _: &Caller, target: &UserRef) -> Result<User, ServiceError> {
        tokio::time::sleep(self.delay).await;
        Err(ServiceError::UserNotFound {
            user_id: target.id.to_string(),
        })
    }
    async fn execute(
        &self,
        _: &Caller,
        _: &UserRef,
        _: Command,
    ) -> Result<ResourceDetails, ServiceError> {
        Err(ServiceError::Unauthenticated)
    }
    async fn search_users(
        &self,
        _: &Caller,
        _: SearchRequest,
    ) -> Result<SearchResult, ServiceError> {
        Err(ServiceError::Unauthenticated)
    }
    async fn readiness(&self) -> Result<(), ServiceError> {
        Ok(())
    }
}

fn services(delay: Duration, timeout: Duration) -> Services {
    Services {
        request_timeout: timeout,
        ..Services::new(
            Arc::new(Slow { delay }),
            Arc::new(MockAdminService::new()),
            Arc::new(userd_ports::login::MockLoginService::new()),
            Arc::new(userd_ports::contact::MockContactService::new()),
            Arc::new(Metrics::new().unwrap()),
        )
    }
}

#[test]
fn the_document_describes_exactly_the_served_routes() {
    let document: Value = serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap();
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = served_routes().into_iter().collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
    assert_eq!(served.len(), 40);
}

#[test]
fn the_document_enums_and_patterns_come_from_the_domain() {
    let document: Value = serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap();
    let schemas = &document["components"]["schemas"];
    let listed = |name: &str| -> Vec<String> {
        schemas[name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is an enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let names = |list: &[&str]| -> Vec<String> { list.iter().map(|&n| n.to_owned()).collect() };
    assert_eq!(
        listed("UserState"),
        names(&UserState::ALL.map(UserState::as_str))
    );
    assert_eq!(listed("RoleName"), names(&Role::ALL.map(Role::as_str)));
    assert_eq!(
        listed("TextFilterMethod"),
        names(&TextMethod::ALL.map(TextMethod::as_str))
    );
    assert_eq!(
        listed("SortingColumn"),
        names(&SortColumn::ALL.map(SortColumn::as_str))
    );
    assert_eq!(
        listed("OwnerType"),
        names(&OwnerType::ALL.map(OwnerType::as_str))
    );
    assert_eq!(
        schemas["PhoneNumber"]["pattern"],
        userd_domain::values::Phone::PATTERN
    );
    let phone = &schemas["PhoneInput"]["properties"]["number"];
    assert!(
        phone
            .to_string()
            .contains("#/components/schemas/PhoneNumber"),
        "{phone}"
    );
}

#[test]
fn the_document_has_the_error_body_the_security_scheme_and_enums_by_name() {
    let document: Value = serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap();
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(schemas["Status"]["properties"]["details"].is_object());
    let states = schemas["UserState"]["enum"].as_array().unwrap();
    assert!(states.contains(&Value::from("USER_STATE_LOCKED")));
    let roles = schemas["RoleName"]["enum"].as_array().unwrap();
    assert_eq!(roles.len(), 6);
    let unlock = &document["paths"]["/resources/v3alpha/users/{id}/_unlock"]["post"];
    assert_eq!(unlock["security"][0]["bearer"], Value::Array(Vec::new()));
    assert!(unlock["responses"]["200"].is_object() && unlock["responses"]["default"].is_object());
    let params: Vec<&str> = unlock["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["id", "If-Match", "organization.orgId"]);
    assert!(unlock["responses"]["412"].is_object());
    assert!(unlock["responses"]["200"]["headers"]["ETag"].is_object());
    // Every operation but the operational ones needs the bearer token.
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let public =
                ["/healthz", "/readyz", "/metrics", "/openapi.json"].contains(&path.as_str());
            assert_eq!(
                operation.get("security").is_none(),
                public,
                "{method} {path}"
            );
        }
    }
}

#[actix_web::test]
async fn the_document_and_the_docs_page_are_served_without_a_token() {
    let app = test::init_service(app(services(Duration::ZERO, Duration::from_secs(5)))).await;
    let response =
        test::call_service(&app, TestRequest::get().uri("/openapi.json").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = test::read_body_json(response).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));

    let response = test::call_service(&app, TestRequest::get().uri("/docs").to_request()).await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    let response = test::call_service(&app, TestRequest::get().uri("/docs/").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    let response = test::call_service(
        &app,
        TestRequest::get()
            .uri("/docs/swagger-initializer.js")
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let script = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    assert!(
        script.contains("/openapi.json"),
        "the page reads our document: {script}"
    );
    let response = test::call_service(
        &app,
        TestRequest::get()
            .uri("/docs/swagger-ui-bundle.js")
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "assets are compiled in");
}

#[actix_web::test]
async fn metrics_count_requests_by_route_template_never_by_id() {
    let app = test::init_service(app(services(Duration::ZERO, Duration::from_secs(5)))).await;
    for id in ["secret-id-1", "secret-id-2"] {
        let request = TestRequest::get()
            .uri(&format!("/resources/v3alpha/users/{id}"))
            .insert_header((header::AUTHORIZATION, "Bearer x"))
            .to_request();
        assert_eq!(
            test::call_service(&app, request).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    let response = test::call_service(&app, TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    assert!(
        text.contains(
            r#"userd_http_requests_total{method="GET",route="/resources/v3alpha/users/{id}",status="404"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains("userd_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(!text.contains("secret-id"), "raw ids never become labels");
}

#[actix_web::test]
async fn a_slow_request_is_cut_off_with_504_code_4() {
    // The service would answer after a minute: only the timeout can end it sooner.
    let app = test::init_service(app(services(
        Duration::from_secs(60),
        Duration::from_millis(100),
    )))
    .await;
    let request = TestRequest::default()
        .method(Method::GET)
        .uri("/resources/v3alpha/users/u1")
        .insert_header((header::AUTHORIZATION, "Bearer x"))
        .insert_header(("x-request-id", "slow-1"))
        .to_request();
    let started = std::time::Instant::now();
    let response = test::call_service(&app, request).await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(response.headers().get("x-request-id").unwrap(), "slow-1");
    let body: Value = test::read_body_json(response).await;
    assert_eq!(body["code"], 4);
    assert_eq!(body["details"][0]["reason"], "DEADLINE_EXCEEDED");
}
