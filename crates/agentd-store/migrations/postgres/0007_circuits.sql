-- Provider circuits shared by every process on this store: a provider one
-- process found down is skipped by all until `open_until` (epoch ms).
-- Deployment-wide, like the providers themselves: not tenant data.
CREATE TABLE circuits (
    provider   TEXT   PRIMARY KEY,
    open_until BIGINT NOT NULL
);
