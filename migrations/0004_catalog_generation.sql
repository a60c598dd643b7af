-- The catalog's generation: a number that grows whenever what the API serves may have changed, so
-- that answers computed for one generation (counts, facets) can be reused until the next one.

create table catalog_generation (
    only_row boolean primary key default true check (only_row),
    value bigint not null default 0
);
comment on table catalog_generation is 'One row. `value` grows by one in every transaction that changes a served entity (an entity becoming visible, its final body changing, or a visible entity going); readers key cached answers on it.';
insert into catalog_generation default values;

-- Bumps the generation once per transaction, at commit: the triggers below are deferred, so the row
-- is locked after every entity row the transaction locks (no lock-order deadlock with the stitcher),
-- and only for as long as the commit takes. The transaction-local setting makes the second and later
-- rows of a transaction a no-op.
create function catalog_generation_bump() returns trigger language plpgsql as $$
begin
    if current_setting('atrium.generation_bumped_by', true) is distinct from txid_current()::text then
        perform set_config('atrium.generation_bumped_by', txid_current()::text, true);
        update catalog_generation set value = value + 1;
    end if;
    return null;
end
$$;

create constraint trigger entity_visible_insert after insert on entity
    deferrable initially deferred for each row
    when (new.final is not null)
    execute function catalog_generation_bump();
create constraint trigger entity_visible_update after update on entity
    deferrable initially deferred for each row
    when (old.final is distinct from new.final)
    execute function catalog_generation_bump();
create constraint trigger entity_visible_delete after delete on entity
    deferrable initially deferred for each row
    when (old.final is not null)
    execute function catalog_generation_bump();
