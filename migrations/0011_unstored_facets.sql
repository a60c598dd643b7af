-- Facet keys whose values are nearly unique per entity (or the same for all) keep no rows in
-- entity_facet any more: they were a third of the table at 100k entities, and no facet picker asks for
-- them. Their counts are computed from `entity` when asked. The list is `UNSTORED_FACET_KEYS` in
-- server/src/catalog/search.rs; keep the two the same.
delete from entity_facet
where key in (
        'apiversion',
        'metadata.name',
        'metadata.namespace',
        'metadata.title',
        'metadata.description',
        'metadata.annotations.backstage.io/managed-by-location',
        'metadata.annotations.backstage.io/managed-by-origin-location',
        'metadata.annotations.backstage.io/source-location',
        'metadata.annotations.backstage.io/view-url',
        'metadata.annotations.backstage.io/edit-url'
    )
    or key like 'metadata.links.%';

comment on table entity_facet is 'key -> original-case value rows for facet counts; written by the stitcher with `search`. Relations, uid and etag are left out (relation targets are lower-case refs already, so their facets are counted from `search`), and so are the keys of UNSTORED_FACET_KEYS (counted from `entity` when asked).';
