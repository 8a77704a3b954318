-- API keys (auth.mode = "api_key"). Only the SHA-256 of a key's secret is
-- kept. `changed_at` (epoch ms, the store's clock) moves when a key is
-- created or revoked: every serving process polls the rows changed since
-- its last look, so a new or revoked key reaches the whole fleet without a
-- restart. Using a key (`last_used_at`) does not move it, so the poll
-- stays small however busy the keys are.
CREATE TABLE api_keys (
    id           text   PRIMARY KEY,         -- the public part of the key
    tenant       text   NOT NULL,
    principal    text   NOT NULL,
    roles        text   NOT NULL,            -- JSON array of strings
    name         text,
    secret_hash  bytea  NOT NULL,            -- SHA-256 of the secret
    created_at   bigint NOT NULL,
    expires_at   bigint,
    last_used_at bigint,
    revoked_at   bigint,
    changed_at   bigint NOT NULL
);
-- Lists, newest first: one tenant's keys, or every tenant's (operators).
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at, id);
CREATE INDEX api_keys_by_created ON api_keys (created_at, id);
-- The change feed of the key caches.
CREATE INDEX api_keys_by_change ON api_keys (changed_at);
