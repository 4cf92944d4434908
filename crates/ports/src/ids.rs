/// Makes the ids of new resources.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A new id: the decimal form of a time-ordered 63-bit number, unique across the
    /// processes sharing a database.
    fn next_id(&self) -> String;
}
