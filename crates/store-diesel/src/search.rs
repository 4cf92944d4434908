//! User search: a filter tree becomes a diesel boxed expression (never SQL text), with
//! the same meaning on both backends:
//!
//! - text matches are literal: `%`, `_` and `\` in a value are escaped for LIKE;
//! - case-insensitive matches compare the `*_key` columns with the value folded the same
//!   way, by userd (Unicode lowercase; for usernames NFKC and case folding), so
//!   non-ASCII letters fold alike on both backends;
//! - a condition on a column that may be NULL is false, never NULL, when it is, so `not`
//!   keeps two-valued logic;
//! - ordering is byte order (PostgreSQL columns are `COLLATE "C"`), NULLs last when
//!   ascending, ties broken by id: a total order, so pages never overlap.

use diesel::dsl::{count_star, not};
use diesel::expression::AsExpression;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Integer, Nullable, Text};
use userd_domain::user::UserState;
use userd_domain::values::username_key;
use userd_ports::error::StoreError;
use userd_ports::search::{
    Filter, ReadScope, SortColumn, TextMatch, TextMethod, UserPage, UserQuery,
};

use crate::connection::{Database, DbConnection, MultiBackend, snapshot_transaction};
use crate::errors::store_error;
use crate::projection::ProjectionRow;
use crate::schema::{usernames, users};

type Condition<T> = Box<dyn BoxableExpression<T, MultiBackend, SqlType = Nullable<Bool>>>;

/// `value` as a LIKE pattern that matches it literally.
fn escape_like(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The value to compare and, unless it is plain equality, the LIKE pattern. Ignoring
/// case, the value is folded as the column's `*_key` twin was.
fn comparison_with(text: &TextMatch, fold: fn(&str) -> String) -> (String, Option<String>) {
    let value = if text.method.ignores_case() {
        fold(&text.value)
    } else {
        text.value.clone()
    };
    let pattern = match text.method {
        TextMethod::Equals | TextMethod::EqualsIgnoreCase => None,
        TextMethod::StartsWith | TextMethod::StartsWithIgnoreCase => {
            Some(format!("{}%", escape_like(&value)))
        }
        TextMethod::Contains | TextMethod::ContainsIgnoreCase => {
            Some(format!("%{}%", escape_like(&value)))
        }
        TextMethod::EndsWith | TextMethod::EndsWithIgnoreCase => {
            Some(format!("%{}", escape_like(&value)))
        }
    };
    (value, pattern)
}

/// [`comparison_with`] for columns whose key is the Unicode lowercase.
fn comparison(text: &TextMatch) -> (String, Option<String>) {
    comparison_with(text, str::to_lowercase)
}

/// A text condition on a NOT NULL column, or on its lowercased twin for ignore-case.
macro_rules! text_condition {
    ($table:ty, $column:expr, $key:expr, $text:expr) => {{
        let text: &TextMatch = $text;
        let (value, pattern) = comparison(text);
        let condition: Condition<$table> = match (text.method.ignores_case(), pattern) {
            (false, None) => Box::new($column.eq(value).nullable()),
            (true, None) => Box::new($key.eq(value).nullable()),
            (false, Some(pattern)) => Box::new($column.like(pattern).escape('\\').nullable()),
            (true, Some(pattern)) => Box::new($key.like(pattern).escape('\\').nullable()),
        };
        condition
    }};
}

/// The same for a column that may be NULL: a missing value matches nothing.
macro_rules! nullable_text_condition {
    ($column:expr, $key:expr, $text:expr) => {{
        let text: &TextMatch = $text;
        let (value, pattern) = comparison(text);
        let condition: Condition<users::table> = match (text.method.ignores_case(), pattern) {
            (false, None) => Box::new($column.is_not_null().and($column.eq(value))),
            (true, None) => Box::new($key.is_not_null().and($key.eq(value))),
            (false, Some(pattern)) => Box::new(
                $column
                    .is_not_null()
                    .and($column.like(pattern).escape('\\')),
            ),
            (true, Some(pattern)) => {
                Box::new($key.is_not_null().and($key.like(pattern).escape('\\')))
            }
        };
        condition
    }};
}

/// Users with a username matching `text` (and of the given organization-specificity):
/// `id IN (SELECT user_id FROM usernames WHERE ...)`. The subquery keeps concrete types,
/// which diesel can render for either backend; only the outer condition is boxed.
fn username_condition(
    text: &TextMatch,
    organization_specific: Option<bool>,
) -> Condition<users::table> {
    let (value, pattern) = comparison_with(text, username_key);
    // `specific = $1 OR $2`, with $2 true when any specificity will do: one statement
    // shape for both cases.
    let specificity = usernames::organization_specific
        .eq(organization_specific.unwrap_or(false))
        .or(AsExpression::<Bool>::as_expression(
            organization_specific.is_none(),
        ));
    macro_rules! users_having {
        ($matches:expr) => {
            Box::new(
                users::id
                    .eq_any(
                        usernames::table
                            .filter($matches.and(specificity))
                            .select(usernames::user_id),
                    )
                    .nullable(),
            )
        };
    }
    match (text.method.ignores_case(), pattern) {
        (false, None) => users_having!(usernames::username.eq(value)),
        (true, None) => users_having!(usernames::username_key.eq(value)),
        (false, Some(pattern)) => users_having!(usernames::username.like(pattern).escape('\\')),
        (true, Some(pattern)) => users_having!(usernames::username_key.like(pattern).escape('\\')),
    }
}

fn constant(value: bool) -> Condition<users::table> {
    Box::new(AsExpression::<Bool>::as_expression(value).nullable())
}

/// Users in `state` at `at` (unix microseconds): a timed lockout that ran out still has
/// its row at LOCKED until the expiry is acted on, yet reads ACTIVE, as GetUser shows it.
fn state_condition(state: UserState, at: i64) -> Condition<users::table> {
    let recorded = |state: UserState| users::state.eq(state.as_str());
    match state {
        UserState::Active => Box::new(
            recorded(UserState::Active)
                // Spelled out NULL-safe, so that NOT of it is exact too.
                .or(recorded(UserState::Locked)
                    .and(users::locked_until_us.is_not_null())
                    .and(users::locked_until_us.le(at)))
                .nullable(),
        ),
        UserState::Locked => Box::new(
            recorded(UserState::Locked)
                .and(
                    users::locked_until_us
                        .is_null()
                        .or(users::locked_until_us.gt(at)),
                )
                .nullable(),
        ),
        other => Box::new(recorded(other).nullable()),
    }
}

fn condition(filter: &Filter, at: i64) -> Condition<users::table> {
    match filter {
        Filter::UserId(text) => text_condition!(users::table, users::id, users::id_key, text),
        // Organization ids are server-made decimals: lowercasing changes nothing.
        Filter::OrganizationId(text) => {
            text_condition!(users::table, users::org_id, users::org_id, text)
        }
        Filter::Email(text) => nullable_text_condition!(users::email, users::email_key, text),
        // Phone numbers are digits: lowercasing changes nothing.
        Filter::Phone(text) => nullable_text_condition!(users::phone, users::phone, text),
        Filter::State(state) => state_condition(*state, at),
        Filter::SchemaId(id) => Box::new(
            users::schema_id
                .is_not_null()
                .and(users::schema_id.eq(id.clone())),
        ),
        Filter::Username {
            text,
            organization_specific,
        } => username_condition(text, *organization_specific),
        Filter::And(children) => children
            .iter()
            .map(|child| condition(child, at))
            .reduce(|all, next| Box::new(all.and(next)))
            .unwrap_or_else(|| constant(true)),
        Filter::Or(children) => children
            .iter()
            .map(|child| condition(child, at))
            .reduce(|any, next| Box::new(any.or(next)))
            .unwrap_or_else(|| constant(false)),
        Filter::Not(child) => Box::new(not(condition(child, at))),
    }
}

/// Every condition of a query: the filter and the caller's scope.
fn matching(query: &UserQuery) -> users::BoxedQuery<'static, MultiBackend> {
    let mut selected = users::table
        .into_boxed()
        .filter(condition(&query.filter, query.at.unix_micros()));
    if let ReadScope::Organizations(orgs) = &query.scope {
        let orgs: Vec<String> = orgs.iter().map(ToString::to_string).collect();
        selected = selected.filter(users::org_id.eq_any(orgs));
    }
    selected
}

fn page_query(query: &UserQuery) -> users::BoxedQuery<'static, MultiBackend> {
    use SortColumn::*;
    let selected = matching(query);
    let ordered = match (query.sort, query.descending) {
        (Id, false) => selected.order(users::id.asc()),
        (Id, true) => selected.order(users::id.desc()),
        (CreationDate, false) => selected.order((users::created_at_us.asc(), users::id.asc())),
        (CreationDate, true) => selected.order((users::created_at_us.desc(), users::id.desc())),
        (ChangeDate, false) => selected.order((users::changed_at_us.asc(), users::id.asc())),
        (ChangeDate, true) => selected.order((users::changed_at_us.desc(), users::id.desc())),
        (State, false) => selected.order((users::state.asc(), users::id.asc())),
        (State, true) => selected.order((users::state.desc(), users::id.desc())),
        (Email, false) => selected.order((
            users::email.is_null().asc(),
            users::email.asc(),
            users::id.asc(),
        )),
        (Email, true) => selected.order((
            users::email.is_null().desc(),
            users::email.desc(),
            users::id.desc(),
        )),
        (Phone, false) => selected.order((
            users::phone.is_null().asc(),
            users::phone.asc(),
            users::id.asc(),
        )),
        (Phone, true) => selected.order((
            users::phone.is_null().desc(),
            users::phone.desc(),
            users::id.desc(),
        )),
        (SchemaId, false) => selected.order((
            users::schema_id.is_null().asc(),
            users::schema_id.asc(),
            users::id.asc(),
        )),
        (SchemaId, true) => selected.order((
            users::schema_id.is_null().desc(),
            users::schema_id.desc(),
            users::id.desc(),
        )),
    };
    ordered
        .offset(i64::try_from(query.offset).unwrap_or(i64::MAX))
        .limit(i64::try_from(query.limit).unwrap_or(i64::MAX))
}

fn run_search(conn: &mut DbConnection, query: &UserQuery) -> Result<UserPage, StoreError> {
    let rows: Vec<ProjectionRow> = page_query(query)
        .select(ProjectionRow::as_select())
        .load(conn)
        .map_err(store_error)?;
    let total: i64 = matching(query)
        .select(count_star())
        .first(conn)
        .map_err(store_error)?;
    Ok(UserPage {
        total: u64::try_from(total).unwrap_or_default(),
        users: rows
            .into_iter()
            .map(ProjectionRow::into_user)
            .collect::<Result<_, _>>()?,
    })
}

impl Database {
    pub(crate) async fn search_users(&self, query: &UserQuery) -> Result<UserPage, StoreError> {
        let query = query.clone();
        // One snapshot, so the total and the page agree.
        self.run(move |conn| snapshot_transaction(conn, |conn| run_search(conn, &query)))
            .await
    }

    /// The database's plan for a search's page query (`EXPLAIN` on PostgreSQL,
    /// `EXPLAIN QUERY PLAN` on SQLite), one line per row. For diagnosis and tests.
    pub async fn explain_search(&self, query: &UserQuery) -> Result<Vec<String>, StoreError> {
        let query = query.clone();
        self.run(move |conn| {
            let page = page_query(&query).select(ProjectionRow::as_select());
            match conn {
                DbConnection::Postgres(_) => Explain {
                    prefix: "EXPLAIN ",
                    query: page,
                    rows: std::marker::PhantomData::<Text>,
                }
                .load::<String>(conn)
                .map_err(store_error),
                DbConnection::Sqlite(_) => Explain {
                    prefix: "EXPLAIN QUERY PLAN ",
                    query: page,
                    rows: std::marker::PhantomData::<(Integer, Integer, Integer, Text)>,
                }
                .load::<(i32, i32, i32, String)>(conn)
                .map(|rows| rows.into_iter().map(|(_, _, _, detail)| detail).collect())
                .map_err(store_error),
            }
        })
        .await
    }
}

/// A query prefixed with EXPLAIN: the plan of exactly the statement diesel would run,
/// with its bind values.
struct Explain<Q, Rows> {
    prefix: &'static str,
    query: Q,
    rows: std::marker::PhantomData<Rows>,
}

impl<Q, Rows> QueryId for Explain<Q, Rows> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, Rows: diesel::sql_types::SqlType> Query for Explain<Q, Rows> {
    type SqlType = Rows;
}

impl<Q: QueryFragment<MultiBackend>, Rows> QueryFragment<MultiBackend> for Explain<Q, Rows> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        out.push_sql(self.prefix);
        self.query.walk_ast(out.reborrow())
    }
}

impl<Q, Rows> RunQueryDsl<DbConnection> for Explain<Q, Rows> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_their_wildcards() {
        assert_eq!(escape_like(r"50%_off\now"), r"50\%\_off\\now");
        let text = TextMatch {
            value: "A_b".into(),
            method: TextMethod::StartsWithIgnoreCase,
        };
        assert_eq!(
            comparison(&text),
            ("a_b".to_owned(), Some(r"a\_b%".to_owned()))
        );
    }
}
