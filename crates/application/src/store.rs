//! The one error every repository port can return besides its own typed outcomes.

/// A storage failure that is nobody's fault in the request.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or gave no connection in time: try again later (503).
    #[error("the database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: a bug, corrupt data, a broken invariant (500).
    #[error("storage failure")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn other(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Other(Box::new(error))
    }
}
