-- Scaffolder tasks: each run of a template is a row, claimed by one worker at a time with a lease, and
-- every line of its log is an event row. Any replica may run any task.

create table scaffolder_task (
    id uuid primary key,
    spec jsonb not null,
    status text not null default 'open'
        check (status in ('open', 'processing', 'completed', 'failed', 'cancelled')),
    created_by text not null,
    created_at timestamptz not null default now(),
    last_heartbeat_at timestamptz,
    finished_at timestamptz,
    secrets jsonb,
    state jsonb not null default '{}',
    lease_token bigint not null default 0,
    lease_owner text,
    lease_expires_at timestamptz,
    cancel_requested boolean not null default false,
    attempt integer not null default 1,
    retry_of uuid references scaffolder_task (id) on delete set null,
    idempotency_key text,
    request_digest text
);
comment on table scaffolder_task is 'One run of a software template. Written by the API (create, cancel, retry) and by the worker holding its lease (status, state, heartbeat).';
comment on column scaffolder_task.spec is 'Backstage''s TaskSpec: apiVersion, steps, output, parameters (the values), user, templateInfo. Never changes after creation.';
comment on column scaffolder_task.created_by is 'Entity ref of the user who created the task.';
comment on column scaffolder_task.secrets is 'Secrets given at creation (tokens for actions). Set to null as soon as the task ends; never returned by the API.';
comment on column scaffolder_task.state is 'Per-step checkpoints: {"steps": {"<id>": {"status", "output", "startedAt", "endedAt"}}, "output": ...}. A recovered or retried run skips steps with side effects that completed.';
comment on column scaffolder_task.lease_token is 'Fencing token: grows by one at every claim. Every write by a worker names the token it was given, so a worker that lost its lease (paused, partitioned) cannot write.';
comment on column scaffolder_task.lease_expires_at is 'When the claiming worker''s lease runs out; heartbeats push it forward. A processing task past it is claimed again (recovered).';
comment on column scaffolder_task.cancel_requested is 'Set by POST /cancel; the worker stops at the next step boundary and the task ends cancelled.';
comment on column scaffolder_task.retry_of is 'The task this one retries (POST /retry makes a new attempt).';
comment on column scaffolder_task.idempotency_key is 'The Idempotency-Key header of the creating request: the same key from the same user returns the same task.';
comment on column scaffolder_task.request_digest is 'SHA-256 of the creating request body, to refuse an Idempotency-Key reused for a different request.';

-- Claiming looks for open tasks and processing tasks whose lease ran out, oldest first.
create index scaffolder_task_claim_idx on scaffolder_task (created_at)
    where status in ('open', 'processing');
create index scaffolder_task_created_at_idx on scaffolder_task (created_at, id);
create index scaffolder_task_created_by_idx on scaffolder_task (created_by, created_at);
-- Retention deletes finished tasks by age.
create index scaffolder_task_finished_at_idx on scaffolder_task (finished_at)
    where finished_at is not null;
create unique index scaffolder_task_idempotency_key_idx on scaffolder_task (created_by, idempotency_key)
    where idempotency_key is not null;

create table scaffolder_task_event (
    id bigserial primary key,
    task_id uuid not null references scaffolder_task (id) on delete cascade,
    event_type text not null check (event_type in ('log', 'completion', 'cancelled', 'recovered')),
    body jsonb not null,
    created_at timestamptz not null default now()
);
comment on table scaffolder_task_event is 'A task''s log and life events, in order (ids grow). body is Backstage''s event body: {message, stepId?, status?, output?}, with secrets redacted before the row is written.';
create index scaffolder_task_event_task_id_idx on scaffolder_task_event (task_id, id);

-- Followers (the event stream, long polls) on every replica learn of new events without polling the
-- table: each insert notifies the task's id.
create function scaffolder_task_event_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('scaffolder_task_event', new.task_id::text);
    return null;
end
$$;
create trigger scaffolder_task_event_notify after insert on scaffolder_task_event
    for each row execute function scaffolder_task_event_notify();

-- Workers on every replica learn of new open tasks the same way.
create function scaffolder_task_open_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('scaffolder_task_open', new.id::text);
    return null;
end
$$;
create trigger scaffolder_task_open_notify after insert or update of status on scaffolder_task
    for each row when (new.status = 'open')
    execute function scaffolder_task_open_notify();
