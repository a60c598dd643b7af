//! Exact counts, facet counts and list pages, reused while the catalog generation stays the same.
//!
//! `totalItems` of a list and the counts of a facet scan every matching entity, which no index makes
//! cheap at 100k entities, and a text search's page checks every candidate; a list page, a search or
//! a facet is asked for again and again while nothing changes.
//! Each answer is kept with the generation read before computing it (`generation_watch`): a change to
//! a served entity bumps the generation when it commits, so a request that reads the same generation
//! finds an answer that holds every change it could have seen.

use std::sync::Arc;

use sqlx::PgPool;

use super::db::{self, EntityQuery, FacetCountRow, FullText, Keyset, OrderField, PageRow};
use super::filter::Filter;
use super::generation_cache::GenerationCache;
use super::generation_watch::GenerationWatch;

/// What a count depends on: the rows `push_where` selects, nothing about the page.
#[derive(Clone, PartialEq, Eq, Hash)]
struct CountKey {
    filter: Option<Filter>,
    full_text: Option<FullText>,
    /// The order field entities must have (`EntityQuery::require_order_value`).
    required_field: Option<String>,
}

impl CountKey {
    fn of(query: &EntityQuery<'_>) -> Self {
        Self {
            filter: query.filter.cloned(),
            full_text: query.full_text.cloned(),
            required_field: query
                .order
                .first()
                .filter(|_| query.require_order_value)
                .map(|o| o.field.clone()),
        }
    }
}

/// What a page depends on: everything in the query.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PageKey {
    rows: CountKey,
    order: Vec<OrderField>,
    keyset: Option<Keyset>,
    offset: Option<i64>,
    limit: Option<i64>,
    listing: bool,
}

/// Pages are kept only up to this many rows, and this many bytes of bodies, so that the pages kept
/// stay within a few tens of megabytes.
const MAX_CACHED_PAGE_ROWS: i64 = 1_000;
const MAX_CACHED_PAGE_BYTES: usize = 256 * 1024;

#[derive(Clone, PartialEq, Eq, Hash)]
struct FacetKey {
    facet: String,
    filter: Option<Filter>,
    text: Option<String>,
}

pub struct Answers {
    counts: GenerationCache<CountKey, i64>,
    facets: GenerationCache<FacetKey, Arc<Vec<FacetCountRow>>>,
    pages: GenerationCache<PageKey, Arc<Vec<PageRow>>>,
    generation: Arc<GenerationWatch>,
}

impl Answers {
    pub fn new(max_entries: usize, generation: Arc<GenerationWatch>) -> Self {
        Self {
            generation,
            counts: GenerationCache::new(max_entries),
            facets: GenerationCache::new(max_entries),
            // Pages are larger (bodies): a fiftieth as many.
            pages: GenerationCache::new(max_entries / 50),
        }
    }

    /// How many entities `query` selects (its page, order and limit aside).
    pub async fn count_entities(
        &self,
        pool: &PgPool,
        query: &EntityQuery<'_>,
    ) -> Result<i64, sqlx::Error> {
        let generation = self.generation.current().await?;
        self.counts
            .get_or_compute(generation, &CountKey::of(query), || {
                db::count_entities(pool, query)
            })
            .await
    }

    /// The rows of `query`'s page.
    pub async fn query_page(
        &self,
        pool: &PgPool,
        query: &EntityQuery<'_>,
    ) -> Result<Vec<PageRow>, sqlx::Error> {
        let cacheable = query
            .limit
            .is_some_and(|limit| limit <= MAX_CACHED_PAGE_ROWS);
        if !cacheable {
            return db::query_entities(pool, query).await;
        }
        let generation = self.generation.current().await?;
        let key = PageKey {
            rows: CountKey::of(query),
            order: query.order.to_vec(),
            keyset: query.keyset.cloned(),
            offset: query.offset,
            limit: query.limit,
            listing: query.listing,
        };
        let rows = self
            .pages
            .get_or_compute(generation, &key, || async {
                db::query_entities(pool, query).await.map(Arc::new)
            })
            .await?;
        if rows.iter().map(|r| r.body.len()).sum::<usize>() > MAX_CACHED_PAGE_BYTES {
            self.pages.forget(&key);
        }
        Ok(rows.as_ref().clone())
    }

    /// The values of `facet` among the entities matching `filter` (and containing `text` in their
    /// default text fields, when given), most frequent first.
    pub async fn facet_counts(
        &self,
        pool: &PgPool,
        facet: &str,
        filter: Option<&Filter>,
        text: Option<&str>,
    ) -> Result<Arc<Vec<FacetCountRow>>, sqlx::Error> {
        let generation = self.generation.current().await?;
        let key = FacetKey {
            facet: facet.to_lowercase(),
            filter: filter.cloned(),
            text: text.map(str::to_owned),
        };
        self.facets
            .get_or_compute(generation, &key, || async {
                Ok(Arc::new(db::facet_counts(pool, facet, filter, text).await?))
            })
            .await
    }
}
