//! Whole answers of unpaginated entity lists, kept compressed for one catalog generation.
//!
//! A team's page, a plugin's "owned by" card and Backstage's `CatalogClient.getEntities` without a
//! limit ask `GET /entities?filter=relations.ownedBy=group:...` again and again: every time, about 150
//! whole entities (72 KB) at 100k, read from 170 heap pages and sent. Postgres reads and de-toasts them
//! at about 1,500 lists a second on two cores, whatever the index. While the catalog generation stays
//! the same (see `generation_cache`), the answer cannot change, so each replica keeps the response body
//! itself, lz4-compressed (JSON entities compress about sixfold), within a byte budget
//! (`catalog.list_cache_megabytes`): a repeated list costs a generation read and a decompression.
//!
//! Unlike the counts, a full budget does not start over (see `kept_bodies`). Answers larger than
//! [`MAX_ANSWER_BYTES`] are never kept (an unfiltered list of the whole catalog).

use super::db::OrderField;
use super::filter::Filter;
use super::kept_bodies::KeptBodies;

/// Answers larger than this (uncompressed) are not kept.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Everything an unpaginated list's body depends on, besides the generation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListKey {
    /// The filter with the caller's visibility restriction applied.
    pub filter: Option<Filter>,
    pub order: Vec<OrderField>,
    /// `fields` as asked.
    pub fields: Vec<String>,
}

pub struct ListAnswers {
    kept: KeptBodies<ListKey>,
}

impl ListAnswers {
    /// At most `max_bytes` of compressed answers (0 keeps none).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            kept: KeptBodies::new(max_bytes),
        }
    }

    /// The body kept for `key` at `generation` (read before the request computes anything).
    pub fn get(&self, generation: i64, key: &ListKey) -> Option<Vec<u8>> {
        let compressed = self.kept.get(generation, key)?;
        lz4_flex::decompress_size_prepended(&compressed).ok()
    }

    /// Keeps `body`, computed after reading `generation`, when it fits (see `KeptBodies::keep`).
    pub fn keep(&self, generation: i64, key: ListKey, body: &[u8]) {
        if body.len() > MAX_ANSWER_BYTES {
            return;
        }
        let compressed = lz4_flex::compress_prepend_size(body);
        self.kept.keep(generation, key, compressed.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(team: &str) -> ListKey {
        ListKey {
            filter: Some(Filter::In(
                "relations.ownedby".into(),
                vec![format!("group:default/{team}")],
            )),
            order: Vec::new(),
            fields: Vec::new(),
        }
    }

    #[test]
    fn answers_hold_for_their_generation_within_the_budget() {
        let body = br#"[{"kind":"Component","metadata":{"name":"a"}}]"#.repeat(100);
        let compressed = lz4_flex::compress_prepend_size(&body).len();
        let lists = ListAnswers::new(compressed * 2);
        lists.keep(7, key("a"), &body);
        assert_eq!(lists.get(7, &key("a")).as_deref(), Some(&body[..]));
        assert_eq!(lists.get(8, &key("a")), None, "another generation");
        assert_eq!(lists.get(7, &key("b")), None);

        lists.keep(7, key("b"), &body);
        lists.keep(7, key("c"), &body);
        assert!(lists.get(7, &key("b")).is_some());
        assert_eq!(lists.get(7, &key("c")), None, "over the budget: not kept");
        assert!(
            lists.get(7, &key("a")).is_some(),
            "and nothing dropped for it"
        );

        lists.keep(6, key("c"), &body);
        assert_eq!(
            lists.get(6, &key("c")),
            None,
            "an older generation is not kept"
        );
        lists.keep(9, key("c"), &body);
        assert!(lists.get(9, &key("c")).is_some());
        assert_eq!(
            lists.get(7, &key("a")),
            None,
            "a newer generation drops the older"
        );

        ListAnswers::new(0).keep(1, key("a"), &body);
        let huge = vec![b' '; MAX_ANSWER_BYTES + 1];
        lists.keep(9, key("d"), &huge);
        assert_eq!(lists.get(9, &key("d")), None);
    }
}
