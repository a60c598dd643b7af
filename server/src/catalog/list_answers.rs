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
//! Unlike the counts, a full budget does not start over: the answers kept stay until the generation
//! moves, and the others are computed each time, as before. Answers larger than
//! [`MAX_ANSWER_BYTES`] are never kept (an unfiltered list of the whole catalog).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::db::OrderField;
use super::filter::Filter;

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
    state: Mutex<State>,
    max_bytes: usize,
}

struct State {
    generation: i64,
    /// Compressed bytes kept.
    bytes: usize,
    entries: HashMap<ListKey, Arc<[u8]>>,
}

impl ListAnswers {
    /// At most `max_bytes` of compressed answers (0 keeps none).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State {
                generation: i64::MIN,
                bytes: 0,
                entries: HashMap::new(),
            }),
            max_bytes,
        }
    }

    /// The body kept for `key` at `generation` (read before the request computes anything).
    pub fn get(&self, generation: i64, key: &ListKey) -> Option<Vec<u8>> {
        let compressed = {
            let state = self.lock();
            if state.generation != generation {
                return None;
            }
            state.entries.get(key)?.clone()
        };
        lz4_flex::decompress_size_prepended(&compressed).ok()
    }

    /// Keeps `body`, computed after reading `generation`, when it fits. An answer for an older
    /// generation than the newest seen is not kept; a newer one drops every older answer.
    pub fn keep(&self, generation: i64, key: ListKey, body: &[u8]) {
        if self.max_bytes == 0 || body.len() > MAX_ANSWER_BYTES {
            return;
        }
        let compressed: Arc<[u8]> = lz4_flex::compress_prepend_size(body).into();
        let mut state = self.lock();
        if generation < state.generation {
            return;
        }
        if generation > state.generation {
            state.entries.clear();
            state.bytes = 0;
            state.generation = generation;
        }
        if state.entries.contains_key(&key) || state.bytes + compressed.len() > self.max_bytes {
            return;
        }
        state.bytes += compressed.len();
        state.entries.insert(key, compressed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
