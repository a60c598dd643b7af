-- Stitching rewrote an entity's facet rows every time it stitched the entity, although relations (which
-- change most often during ingestion) are not facets. A hash of the facet rows lets it skip the rewrite.

alter table entity add column facet_hash text;
comment on column entity.facet_hash is 'Hash of the entity''s `entity_facet` rows as last written; equal means the stitcher leaves them alone.';
