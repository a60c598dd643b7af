-- The catalog: locations that are read, the entities they emit, the relations between entities.
--
-- Life of an entity: a worker claims a due `location`, reads its target, validates each document and
-- writes the `entity` rows (raw `processed` body, `relation` rows it originates). Everything whose
-- visible result may have changed is put on `stitch_queue`; a stitcher then builds `final` (the
-- JSON served by the API) and `search` (the flattened keys that filters and facets use).

create extension if not exists pg_trgm;

create table location (
    id uuid primary key,
    type text not null,
    target text not null,
    parent_id uuid references location (id) on delete cascade,
    root_id uuid not null,
    declared_by text collate "C" not null,
    origin text not null default 'api',
    next_refresh_at timestamptz not null default now(),
    claim_token uuid,
    last_refreshed_at timestamptz,
    errors jsonb not null default '[]',
    created_at timestamptz not null default now()
);
comment on table location is 'A place entities are read from. Roots are registered (API or config); children are declared by Location entities found in a parent''s file.';
comment on column location.type is '`file` or `url`.';
comment on column location.target is 'Absolute path (file) or absolute URL (url).';
comment on column location.parent_id is 'Null for registered (root) locations; for a child, the location whose file declared it. Deleting a parent deletes its children.';
comment on column location.root_id is 'The registered location at the top of this one''s tree (itself for a root); gives the origin-location annotation.';
comment on column location.declared_by is 'Key of the Location entity that points here: the generated `location:default/generated-...` entity for a root, the declaring Location entity for a child. It is the parent (ancestry) of the entities read here and shows this location''s errors.';
comment on column location.origin is '`api`, `config` (loaded at start-up) or `entity` (a child).';
comment on column location.next_refresh_at is 'When a worker should next read it. Claiming pushes it forward by the lease, so a dead worker''s claim expires by itself.';
comment on column location.claim_token is 'Fencing token of the latest claim: a worker stores its result only if the token is still its own, so a worker whose lease ran out cannot overwrite a newer claim''s work.';
comment on column location.errors is 'Problems of the last read that belong to no stored entity (unreadable target, YAML syntax, conflicts): [{name, message}]. Shown on the Location entity that points here.';

-- Registered locations are unique by (type, target); children may repeat a target under different parents.
create unique index location_root_type_target_idx on location (type, target) where parent_id is null;
create index location_parent_idx on location (parent_id);
create index location_next_refresh_idx on location (next_refresh_at);
create index location_declared_by_idx on location (declared_by);

create table entity (
    id uuid primary key,
    entity_key text collate "C" not null unique,
    kind text collate "C" not null,
    namespace text collate "C" not null,
    name text collate "C" not null,
    spec_type text collate "C",
    lifecycle text collate "C",
    owner text collate "C",
    location_id uuid references location (id) on delete set null,
    parent_key text,
    processed jsonb not null,
    content_hash text not null,
    errors jsonb not null default '[]',
    final text,
    etag text,
    search jsonb,
    search_text text,
    updated_at timestamptz not null default now()
);
comment on table entity is 'One catalog entity: its processed body, and its stitched final form once the stitcher has run.';
comment on column entity.entity_key is 'Lower-cased `kind:namespace/name`: the identity used for lookups and relations.';
comment on column entity.kind is 'Lower-cased kind, a column of its own because nearly every query filters on it.';
comment on column entity.name is 'Lower-cased metadata.name, for ordering and lookups.';
comment on column entity.spec_type is 'Lower-cased spec.type. With lifecycle and owner: fields validation guarantees to be strings, kept as columns so filters on them get real planner statistics (jsonb containment is always estimated at 0.1%).';
comment on column entity.location_id is 'The location whose read emitted it. Null once that location is gone: the entity is an orphan.';
comment on column entity.parent_key is 'Entity key of the Location entity that emitted it (ancestry); null for the root of a tree.';
comment on column entity.processed is 'The entity after validation, defaults, placeholders and server annotations, without relations or status.';
comment on column entity.content_hash is 'Hash of `processed`; an unchanged hash means a refresh writes nothing.';
comment on column entity.errors is 'Processing errors of its last read ([{name, message}]), served as status.items.';
comment on column entity.final is 'Serialized JSON served by the API: processed + relations + status. Null until first stitched.';
comment on column entity.search is 'Flattened lower-cased key -> [lower-cased values] (Backstage''s search table semantics) for filters; GIN-indexed.';
comment on column entity.search_text is 'Lower-cased text of name, title, description, tags and spec fields for full-text filters; trigram-indexed.';

-- Queries only ever see stitched entities (`final is not null`); partial indexes let counts and pages
-- of a kind be answered from the index alone.
create index entity_kind_id_idx on entity (kind, id) where final is not null;
create index entity_kind_name_idx on entity (kind, name, id) where final is not null;
create index entity_name_idx on entity (name, id) where final is not null;
create index entity_id_visible_idx on entity (id) where final is not null;
create index entity_kind_type_idx on entity (kind, spec_type, id) where final is not null;
create index entity_kind_lifecycle_idx on entity (kind, lifecycle, id) where final is not null;
create index entity_kind_owner_idx on entity (kind, owner, id) where final is not null;
create index entity_location_idx on entity (location_id);
create index entity_parent_idx on entity (parent_key);
create index entity_search_idx on entity using gin (search);
create index entity_search_text_idx on entity using gin (search_text gin_trgm_ops);

-- Insert-only queue of entities whose final form must be rebuilt. Writers only ever insert here, so two
-- workers touching the same popular entity (a group with 10k members) never wait on each other's row locks.
create table stitch_queue (
    entity_key text collate "C" not null,
    queued_at timestamptz not null default now()
);
comment on table stitch_queue is 'Entity keys to re-stitch; a key may appear many times, the stitcher takes each batch with SKIP LOCKED and de-duplicates.';
create index stitch_queue_queued_idx on stitch_queue (queued_at);
create index stitch_queue_key_idx on stitch_queue (entity_key);

create table relation (
    originating_entity_id uuid not null references entity (id) on delete cascade,
    source_key text collate "C" not null,
    type text not null,
    target_key text collate "C" not null,
    target_ref text not null
);
comment on table relation is 'Relations derived from spec fields, both directions, owned by the entity whose spec produced them.';
comment on column relation.source_key is 'Entity key of the relation''s source; the stitcher reads all rows with source_key = an entity''s key.';
comment on column relation.target_ref is 'The target as shown in the API (`kind:namespace/name`).';

create index relation_source_idx on relation (source_key);
create index relation_origin_idx on relation (originating_entity_id);
create index relation_target_idx on relation (target_key);

-- Facet counts by original value (Backstage returns values as written, grouped case-sensitively).
create table entity_facet (
    entity_id uuid not null references entity (id) on delete cascade,
    kind text collate "C" not null,
    key text not null,
    value text not null
);
comment on table entity_facet is 'key -> original-case value rows for facet counts; written by the stitcher with `search`. Relations, uid and etag are left out: relation targets are lower-case refs already, so their facets are counted from `search`.';
comment on column entity_facet.kind is 'The entity''s lower-cased kind, copied so that facets of one kind (the usual filter) are counted from this index alone, without joining entity.';
create index entity_facet_key_value_idx on entity_facet (key, value, entity_id);
create index entity_facet_key_kind_value_idx on entity_facet (key, kind, value);
create index entity_facet_entity_idx on entity_facet (entity_id);
