-- Per-token request counts for tokens with a rate limit (agent tokens): one fixed one-minute window
-- per token, shared by every replica, so the limit holds however many replicas serve the token.
create table api_token_rate (
    token_id uuid primary key references api_token (id) on delete cascade,
    window_start timestamptz not null,
    used integer not null
);
comment on table api_token_rate is 'Requests made in the current minute by each token that has rate_limit_per_minute; rewritten by every such request.';
