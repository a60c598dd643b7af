-- Exact counts of the visible (stitched) entities per kind, kept as entities change.
--
-- `totalItems` of an unfiltered list, or of a list filtered on kinds only, is what a portal's front
-- page and every poll during a load ask for. Counted from `entity` it reads every visible entity's
-- index entry and, while a load runs (the visibility map unset), its heap page: 0.1 s at 100k
-- entities and 0.75 s at 1M, paid again after every change to the catalog. Here it sums a few rows.
--
-- The table is insert-only, like `stitch_queue`: each statement that changes which entities are
-- visible adds one row per kind it changed, so concurrent writers never update a shared counter row
-- (a popular-row lock would serialize every stitcher and store). Readers sum the rows of the kinds they
-- want; the stitcher's maintenance folds them into one row per kind now and then (see
-- server/src/catalog/db/counts.rs). A row is written in the same transaction as the change it counts,
-- so any snapshot sees counts that agree with the entities it sees.
create table entity_kind_count (
    kind text collate "C" not null,
    visible bigint not null
);
comment on table entity_kind_count is 'Changes to the number of visible entities (final is not null) per lower-cased kind; the sum of a kind''s rows is its count. Written by the triggers entity_count_visible_*; folded by the stitcher''s maintenance.';

create function entity_count_visible() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into entity_kind_count (kind, visible)
        select kind, count(*) from new_entity where final is not null group by kind;
    elsif tg_op = 'DELETE' then
        insert into entity_kind_count (kind, visible)
        select kind, -count(*) from old_entity where final is not null group by kind;
    else
        insert into entity_kind_count (kind, visible)
        select kind, sum(change)
        from (
            select kind, 1 as change from new_entity where final is not null
            union all
            select kind, -1 from old_entity where final is not null
        ) changes
        group by kind
        having sum(change) <> 0;
    end if;
    return null;
end
$$;
comment on function entity_count_visible() is 'Adds one entity_kind_count row per kind whose number of visible entities the statement changed.';

-- Creating the triggers locks `entity` against writes until this migration commits, so the counts
-- taken below miss no change.
create trigger entity_count_visible_insert after insert on entity
    referencing new table as new_entity
    for each statement execute function entity_count_visible();
create trigger entity_count_visible_update after update on entity
    referencing old table as old_entity new table as new_entity
    for each statement execute function entity_count_visible();
create trigger entity_count_visible_delete after delete on entity
    referencing old table as old_entity
    for each statement execute function entity_count_visible();

insert into entity_kind_count (kind, visible)
select kind, count(*) from entity where final is not null group by kind;
