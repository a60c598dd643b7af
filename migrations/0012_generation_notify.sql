-- Each replica learns of a new catalog generation by LISTEN instead of reading `catalog_generation`
-- on every request (see server/src/catalog/generation_watch.rs). The bump now announces the new value
-- on the channel `atrium_catalog_generation`; Postgres delivers it when the transaction commits, and
-- not at all when it rolls back.
create or replace function catalog_generation_bump() returns trigger language plpgsql as $$
declare
    bumped bigint;
begin
    if current_setting('atrium.generation_bumped_by', true) is distinct from txid_current()::text then
        perform set_config('atrium.generation_bumped_by', txid_current()::text, true);
        update catalog_generation set value = value + 1 returning value into bumped;
        perform pg_notify('atrium_catalog_generation', bumped::text);
    end if;
    return null;
end
$$;
