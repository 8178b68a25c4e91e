//! Keyset pagination: newest first, by (created_at, id).

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Where the previous page ended: the last item's creation time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// A request for one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1 to 100.
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;
}

/// One page of items and where the next one starts, if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched newest first: the extra row only says
    /// that there is more.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> Cursor) -> Self {
        let limit = limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(key) } else { None };
        Self { items: rows, next }
    }

    /// Builds a page from rows fetched newest first, of at most `limit` items whose `cost`
    /// (lines, say) adds up to at most `budget`; the first row always comes, however costly.
    /// A row left over only says that there is more.
    pub fn within_budget(
        mut rows: Vec<T>,
        limit: u32,
        budget: usize,
        cost: impl Fn(&T) -> usize,
        key: impl Fn(&T) -> Cursor,
    ) -> Self {
        let take = budget_cut(rows.iter().map(cost), limit as usize, budget);
        let more = rows.len() > take;
        rows.truncate(take);
        let next = if more { rows.last().map(key) } else { None };
        Self { items: rows, next }
    }
}

/// How many of the items with these costs fit in a page of `limit` items and `budget` cost
/// (at least one, when there is one).
pub fn budget_cut(costs: impl IntoIterator<Item = usize>, limit: usize, budget: usize) -> usize {
    let mut spent = 0usize;
    let mut taken = 0usize;
    for cost in costs {
        if taken == limit || (taken > 0 && spent + cost > budget) {
            break;
        }
        spent += cost;
        taken += 1;
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_stops_at_its_limit_or_its_budget() {
        assert_eq!(budget_cut([5, 5, 5], 2, 100), 2);
        assert_eq!(budget_cut([100, 100, 100, 100], 100, 250), 2);
        assert_eq!(budget_cut([400], 100, 250), 1, "the first item always comes");
        assert_eq!(budget_cut([], 10, 10), 0);
        assert_eq!(budget_cut([1, 1, 1], 10, 3), 3);
    }
}
