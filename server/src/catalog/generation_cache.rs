//! Answers kept for one catalog generation.
//!
//! Exact counts, facet counts and the pages of a text search scan every matching entity: tens of
//! milliseconds at 100k entities, however well indexed, because Postgres has no cheap exact count.
//! Yet most requests repeat an earlier one (the same list page, the same facets) while nothing
//! changed. The catalog generation (`db::generation`) grows in every transaction that changes what
//! the API serves, so an answer computed after reading generation G stays exact for as long as the
//! generation reads G. Each replica keeps its own answers; a newer generation empties the cache.
//!
//! Requests that miss on the same key at the same time share one computation: after a change, a
//! popular page is computed once, not once per waiting request.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// Answers of one kind (`K` asks, `V` answers), for the newest generation seen.
pub struct GenerationCache<K, V> {
    state: Mutex<State<K, V>>,
    max_entries: usize,
}

struct State<K, V> {
    generation: i64,
    entries: HashMap<K, Arc<OnceCell<V>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> GenerationCache<K, V> {
    /// A cache of at most `max_entries` answers (0 turns it off).
    pub fn new(max_entries: usize) -> Self {
        Self {
            state: Mutex::new(State {
                generation: i64::MIN,
                entries: HashMap::new(),
            }),
            max_entries,
        }
    }

    /// The answer to `key` at `generation` (read before calling): the kept one, the one another
    /// request is computing, or `compute`'s. A failed computation is not kept. A caller holding an
    /// older generation than the newest seen computes its own answer and keeps nothing: requests that
    /// read the newer generation must not find it.
    pub async fn get_or_compute<E, F>(
        &self,
        generation: i64,
        key: &K,
        compute: impl FnOnce() -> F,
    ) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        let Some(cell) = self.cell(generation, key) else {
            return compute().await;
        };
        cell.get_or_try_init(compute).await.cloned()
    }

    /// Drops the answer to `key` (one too large to keep, say).
    pub fn forget(&self, key: &K) {
        self.lock().entries.remove(key);
    }

    fn cell(&self, generation: i64, key: &K) -> Option<Arc<OnceCell<V>>> {
        if self.max_entries == 0 {
            return None;
        }
        let mut state = self.lock();
        if generation < state.generation {
            return None;
        }
        if generation > state.generation
            || (state.entries.len() >= self.max_entries && !state.entries.contains_key(key))
        {
            // A full cache starts over rather than tracking recency: an answer is cheap to compute
            // once, and a generation rarely lives long enough to fill it.
            state.entries.clear();
            state.generation = generation;
        }
        Some(state.entries.entry(key.clone()).or_default().clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K, V>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    async fn answer(
        cache: &GenerationCache<&'static str, i64>,
        generation: i64,
        key: &'static str,
        value: i64,
        computed: &AtomicUsize,
    ) -> i64 {
        cache
            .get_or_compute(generation, &key, || async {
                computed.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(value)
            })
            .await
            .expect("computes")
    }

    #[tokio::test]
    async fn an_answer_holds_only_for_its_generation() {
        let cache = GenerationCache::new(10);
        let computed = AtomicUsize::new(0);
        assert_eq!(answer(&cache, 3, "kind=component", 47, &computed).await, 47);
        assert_eq!(
            answer(&cache, 3, "kind=component", 0, &computed).await,
            47,
            "kept"
        );
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        assert_eq!(
            answer(&cache, 4, "kind=component", 48, &computed).await,
            48,
            "a newer generation"
        );
        assert_eq!(
            answer(&cache, 3, "kind=component", 47, &computed).await,
            47,
            "an older reader computes its own"
        );
        assert_eq!(
            answer(&cache, 4, "kind=component", 0, &computed).await,
            48,
            "and keeps nothing"
        );
        assert_eq!(computed.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_computation_and_failures_are_not_kept() {
        let cache = GenerationCache::<&str, i64>::new(10);
        let computed = AtomicUsize::new(0);
        let slow = || async {
            computed.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok::<_, ()>(7)
        };
        let (a, b) = tokio::join!(
            cache.get_or_compute(1, &"q", slow),
            cache.get_or_compute(1, &"q", slow)
        );
        assert_eq!((a, b), (Ok(7), Ok(7)));
        assert_eq!(computed.load(Ordering::SeqCst), 1);

        let failed = cache
            .get_or_compute(1, &"r", || async { Err::<i64, _>("database gone") })
            .await;
        assert_eq!(failed, Err("database gone"));
        assert_eq!(
            cache
                .get_or_compute(1, &"r", || async { Ok::<_, &str>(5) })
                .await,
            Ok(5)
        );
    }

    #[tokio::test]
    async fn a_full_cache_starts_over_and_zero_turns_it_off() {
        let cache = GenerationCache::new(2);
        let computed = AtomicUsize::new(0);
        answer(&cache, 1, "a", 1, &computed).await;
        answer(&cache, 1, "b", 2, &computed).await;
        answer(&cache, 1, "c", 3, &computed).await;
        assert_eq!(
            answer(&cache, 1, "a", 10, &computed).await,
            10,
            "emptied when full"
        );
        let off = GenerationCache::new(0);
        answer(&off, 1, "a", 1, &computed).await;
        assert_eq!(answer(&off, 1, "a", 2, &computed).await, 2);
    }
}
