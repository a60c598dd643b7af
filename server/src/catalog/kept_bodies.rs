//! Response bodies kept for one catalog generation, within a byte budget.
//!
//! While the catalog generation stays the same (see `generation_cache`), an answer cannot change, so
//! a replica may keep the bytes it sent and send them again. A full budget does not start over: the
//! bodies kept stay until the generation moves, and the others are computed each time. Used for
//! unpaginated lists (compressed, `list_answers`) and entities by name.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use axum::body::Bytes;

pub struct KeptBodies<K> {
    state: Mutex<State<K>>,
    max_bytes: usize,
}

struct State<K> {
    generation: i64,
    bytes: usize,
    entries: HashMap<K, Bytes>,
}

impl<K: Eq + Hash> KeptBodies<K> {
    /// At most `max_bytes` of bodies (0 keeps none).
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
    pub fn get(&self, generation: i64, key: &K) -> Option<Bytes> {
        let state = self.lock();
        if state.generation != generation {
            return None;
        }
        state.entries.get(key).cloned()
    }

    /// Keeps `body`, computed after reading `generation`, when it fits. A body for an older
    /// generation than the newest seen is not kept; a newer one drops every older body.
    pub fn keep(&self, generation: i64, key: K, body: Bytes) {
        if self.max_bytes == 0 {
            return;
        }
        let mut state = self.lock();
        if generation < state.generation {
            return;
        }
        if generation > state.generation {
            state.entries.clear();
            state.bytes = 0;
            state.generation = generation;
        }
        if state.entries.contains_key(&key) || state.bytes + body.len() > self.max_bytes {
            return;
        }
        state.bytes += body.len();
        state.entries.insert(key, body);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
