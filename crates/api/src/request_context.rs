//! The id of the request being served, for whatever runs within it (log lines, problem bodies).
//! The `request_id` middleware sets it for each request.

tokio::task_local! {
    pub static REQUEST_ID: String;
}

/// The id of the request being served, when called from within it.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}
