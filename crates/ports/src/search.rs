//! Searching users: a tree of filters, an order, a page.

use userd_domain::user::UserState;
use userd_domain::values::OrgId;

/// Filters may nest this deep (a lone filter has depth 1)...
pub const MAX_FILTER_DEPTH: usize = 10;
/// ...and a search may hold this many filters in all, combinators included.
pub const MAX_FILTERS: usize = 100;
pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextMethod {
    Equals,
    EqualsIgnoreCase,
    StartsWith,
    StartsWithIgnoreCase,
    Contains,
    ContainsIgnoreCase,
    EndsWith,
    EndsWithIgnoreCase,
}

impl TextMethod {
    pub const ALL: [TextMethod; 8] = [
        TextMethod::Equals,
        TextMethod::EqualsIgnoreCase,
        TextMethod::StartsWith,
        TextMethod::StartsWithIgnoreCase,
        TextMethod::Contains,
        TextMethod::ContainsIgnoreCase,
        TextMethod::EndsWith,
        TextMethod::EndsWithIgnoreCase,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TextMethod::Equals => "TEXT_FILTER_METHOD_EQUALS",
            TextMethod::EqualsIgnoreCase => "TEXT_FILTER_METHOD_EQUALS_IGNORE_CASE",
            TextMethod::StartsWith => "TEXT_FILTER_METHOD_STARTS_WITH",
            TextMethod::StartsWithIgnoreCase => "TEXT_FILTER_METHOD_STARTS_WITH_IGNORE_CASE",
            TextMethod::Contains => "TEXT_FILTER_METHOD_CONTAINS",
            TextMethod::ContainsIgnoreCase => "TEXT_FILTER_METHOD_CONTAINS_IGNORE_CASE",
            TextMethod::EndsWith => "TEXT_FILTER_METHOD_ENDS_WITH",
            TextMethod::EndsWithIgnoreCase => "TEXT_FILTER_METHOD_ENDS_WITH_IGNORE_CASE",
        }
    }

    pub fn parse(name: &str) -> Option<TextMethod> {
        TextMethod::ALL.into_iter().find(|m| m.as_str() == name)
    }

    pub fn ignores_case(self) -> bool {
        matches!(
            self,
            TextMethod::EqualsIgnoreCase
                | TextMethod::StartsWithIgnoreCase
                | TextMethod::ContainsIgnoreCase
                | TextMethod::EndsWithIgnoreCase
        )
    }
}

/// A text condition on one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextMatch {
    pub value: String,
    pub method: TextMethod,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    UserId(TextMatch),
    OrganizationId(TextMatch),
    /// Any of the user's usernames matches (and has the given organization-specificity).
    Username {
        text: TextMatch,
        organization_specific: Option<bool>,
    },
    Email(TextMatch),
    Phone(TextMatch),
    /// The reported state (the one GetUser shows).
    State(UserState),
    SchemaId(String),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

impl Filter {
    /// (depth, number of filters) of this tree.
    pub fn size(&self) -> (usize, usize) {
        let children: &[Filter] = match self {
            Filter::And(children) | Filter::Or(children) => children,
            Filter::Not(child) => std::slice::from_ref(child.as_ref()),
            _ => &[],
        };
        children.iter().fold((1, 1), |(depth, count), child| {
            let (child_depth, child_count) = child.size();
            (depth.max(child_depth + 1), count + child_count)
        })
    }
}

/// The columns results can be ordered by; ties are always broken by id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SortColumn {
    Id,
    #[default]
    CreationDate,
    ChangeDate,
    Email,
    Phone,
    State,
    SchemaId,
}

impl SortColumn {
    pub const ALL: [SortColumn; 7] = [
        SortColumn::Id,
        SortColumn::CreationDate,
        SortColumn::ChangeDate,
        SortColumn::Email,
        SortColumn::Phone,
        SortColumn::State,
        SortColumn::SchemaId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortColumn::Id => "FIELD_NAME_ID",
            SortColumn::CreationDate => "FIELD_NAME_CREATION_DATE",
            SortColumn::ChangeDate => "FIELD_NAME_CHANGE_DATE",
            SortColumn::Email => "FIELD_NAME_EMAIL",
            SortColumn::Phone => "FIELD_NAME_PHONE",
            SortColumn::State => "FIELD_NAME_STATE",
            SortColumn::SchemaId => "FIELD_NAME_SCHEMA_ID",
        }
    }

    pub fn parse(name: &str) -> Option<SortColumn> {
        SortColumn::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// Which organizations' users a search may return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadScope {
    Everything,
    Organizations(Vec<OrgId>),
}

/// A search as a client asks for it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SearchRequest {
    /// All must hold.
    pub filters: Vec<Filter>,
    pub sort: Option<SortColumn>,
    pub descending: bool,
    pub offset: u64,
    /// 0 means the default.
    pub limit: u64,
    /// `organization.orgId`: only users of this organization.
    pub organization: Option<OrgId>,
}

/// A search as the store runs it: validated, and scoped to what the caller may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserQuery {
    pub filter: Filter,
    pub scope: ReadScope,
    pub sort: SortColumn,
    pub descending: bool,
    pub offset: u64,
    pub limit: u64,
    /// The time the states are judged at: a timed lockout that ended before it no longer
    /// counts as locked.
    pub at: userd_domain::Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UserPage {
    /// Every match, not only this page's.
    pub total: u64,
    pub users: Vec<userd_domain::user::User>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf() -> Filter {
        Filter::SchemaId("s".into())
    }

    #[test]
    fn sizes_count_depth_and_every_node() {
        assert_eq!(leaf().size(), (1, 1));
        let tree = Filter::And(vec![
            leaf(),
            Filter::Not(Box::new(Filter::Or(vec![leaf(), leaf()]))),
        ]);
        assert_eq!(tree.size(), (4, 6));
    }

    #[test]
    fn text_method_names_round_trip() {
        for method in TextMethod::ALL {
            assert_eq!(TextMethod::parse(method.as_str()), Some(method));
        }
    }
}
