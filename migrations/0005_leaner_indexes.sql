-- Indexes sized to the queries that use them (measured at 100k entities, ../shared/bench).

-- `entity_facet_key_value_idx` (key, value, entity_id) was a quarter of the database (247 MB of
-- 1.4 GB) and no plan needs it: facet counts without a filter, or filtered on kinds, read
-- `entity_facet_key_kind_value_idx` (key, kind, value), whose first column serves a key alone; facets
-- with other filters join `entity`. Counts and facets are kept per catalog generation since 0004, so
-- the occasional recount matters less than the size.
drop index if exists entity_facet_key_value_idx;

-- Filters on `search` are containment tests (`search @> '{"relations.ownedby": ["group:..."]}'`).
-- The default `jsonb_ops` GIN index keeps keys and values as separate entries, so such a test reads
-- the posting list of the key (every entity that has an owner) and ANDs it with the value's;
-- `jsonb_path_ops` keeps one entry per key-and-value, a third smaller, and answers the test from that
-- one entry (owned-by at 100k: 3.4 -> 2.0 ms). It cannot serve key existence (`search ? key`), which
-- is rare in filters and, combined with a kind, runs on the kind's rows.
drop index if exists entity_search_idx;
create index entity_search_idx on entity using gin (search jsonb_path_ops);
