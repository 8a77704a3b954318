-- The fleet: operator data shared by every process on this store, not a
-- tenant's (see `Store::register_worker` and `Store::record_backup`).
--
-- One row per process that runs workers (`agentd serve`, `agentd worker`),
-- keyed by its node id (the lease owner name): who holds the node id, since
-- when, and when it last said it was alive (epoch ms). A process removes its
-- row on a graceful shutdown; a crashed one's row goes stale.
CREATE TABLE workers (
    node_id    TEXT    PRIMARY KEY,
    host       TEXT    NOT NULL,
    pid        INTEGER NOT NULL,
    started_at BIGINT  NOT NULL,
    last_seen  BIGINT  NOT NULL,
    slots      INTEGER NOT NULL,
    version    TEXT    NOT NULL
);

-- Every backup `agentd backup` took of this store: when, of which backend,
-- its size and the file written (`agentd check` reads the newest).
CREATE TABLE backups (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    taken_at BIGINT  NOT NULL,
    backend  TEXT    NOT NULL,
    bytes    BIGINT  NOT NULL,
    file     TEXT    NOT NULL
);
CREATE INDEX backups_taken_at ON backups (taken_at);
