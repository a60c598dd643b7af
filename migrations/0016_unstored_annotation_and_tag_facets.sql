-- Facet rows of annotations and of tag-item keys (`metadata.tags.java = true`) are no longer kept:
-- at 100k entities they were 397k of entity_facet's 1.37M rows, each written with two index entries
-- during a load, and no facet picker asks for them. Their facets are counted from the entities'
-- bodies when asked (server/src/catalog/search.rs, `UNSTORED_FACET_PREFIXES`; keep the two the same).
-- An entity's `facet_hash` then no longer matches the rows it describes, so its next stitch rewrites
-- its rows once, to the same rows.
delete from entity_facet
where key like 'metadata.annotations.%'
    or key like 'metadata.tags.%';
