-- `entity_facet_key_value_idx` (key, value, entity_id) was a quarter of the database at 100k entities
-- (247 MB of 1.4 GB) and no plan needs it: facet counts without a filter, or filtered on kinds, read
-- `entity_facet_key_kind_value_idx` (key, kind, value), whose first column serves a key alone; facets
-- with other filters join `entity` through `entity_facet_entity_idx` or a hash join. Counts and facets
-- are kept per catalog generation since 0004, so the occasional recount matters less than the size.
drop index if exists entity_facet_key_value_idx;
