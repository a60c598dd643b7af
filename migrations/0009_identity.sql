-- Identity: browser sessions, API tokens and the audit log.

create table auth_session (
    id_hash text primary key,
    user_ref text,
    pending_login jsonb,
    return_to text not null default '/',
    created_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    expires_at timestamptz not null
);
comment on table auth_session is 'A browser session. The cookie holds a random id; only its SHA-256 is stored. user_ref is null while a sign-in is under way (pending_login holds the OIDC state, nonce and PKCE verifier until the callback).';
comment on column auth_session.expires_at is 'The absolute end of the session; it also ends after auth.session.idle_timeout_seconds without a request (last_seen_at).';
create index auth_session_expires_at_idx on auth_session (expires_at);

create table api_token (
    id uuid primary key,
    token_hash text not null unique,
    prefix text not null,
    name text not null,
    owner_ref text not null,
    agent text,
    scopes text[] not null,
    created_by text not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    revoked_at timestamptz,
    last_used_at timestamptz,
    rate_limit_per_minute integer
);
comment on table api_token is 'An API token (Authorization: Bearer atr_...). Only the SHA-256 of the token is stored; the token itself is shown once, at creation. A token acts as owner_ref (a user, or a group for agent tokens) within its scopes.';
comment on column api_token.prefix is 'The first characters of the token, to recognise it in lists without storing it.';
comment on column api_token.agent is 'For agent tokens: the agent''s name; the agent is the actor in tasks, deployments and the audit log.';
comment on column api_token.scopes is 'catalog:read, catalog:write, template:run:<template ref>, deploy:<environment>, admin.';
create index api_token_owner_ref_idx on api_token (owner_ref, created_at);

create table audit_event (
    id bigserial primary key,
    occurred_at timestamptz not null default now(),
    actor text not null,
    actor_kind text not null check (actor_kind in ('user', 'token', 'agent', 'guest', 'system', 'anonymous')),
    action text not null,
    target text not null default '',
    outcome text not null check (outcome in ('success', 'denied', 'failure')),
    request_id text,
    detail jsonb not null default '{}'
);
comment on table audit_event is 'One row per audited action (sign-in, sign-out, token create/revoke, location add/remove, entity delete, task create/cancel/retry, deployment, rollback, approval, permission denial), written in the transaction of the change it records. Never a secret.';
create index audit_event_occurred_at_idx on audit_event (occurred_at desc, id desc);
create index audit_event_actor_idx on audit_event (actor, occurred_at desc);
create index audit_event_action_idx on audit_event (action, occurred_at desc);
