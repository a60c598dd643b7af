-- Work the catalog did on every write for nothing a query reads.

-- `relation_target_idx` (target_key) serves no statement: stitching reads relations by source, the
-- store and the delete trigger by originating entity, and filters on relations read the `search`
-- column. Each of the 1.2M relation rows of a 100k-entity load paid an insert into it.
drop index if exists relation_target_idx;

-- The planner never estimates a condition on these columns (they are served or compared, never
-- filtered), but ANALYZE, which the stitcher runs itself while a large catalog streams in
-- (server/src/catalog/db/statistics.rs), sampled and detoasted them: the bodies are the widest
-- columns. Without them an ANALYZE of `entity` at 100k entities takes 1.8 s instead of 2.4 s.
alter table entity
    alter column final set statistics 0,
    alter column processed set statistics 0,
    alter column content_hash set statistics 0,
    alter column facet_hash set statistics 0,
    alter column etag set statistics 0,
    alter column errors set statistics 0;
