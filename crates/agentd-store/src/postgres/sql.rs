//! The statements of the PostgreSQL backend. They are `&'static str`s built
//! with `concat!`, so every value travels as a bind parameter and sqlx
//! caches one prepared statement per text.
//!
//! Time is the database's: [`now!`] is the transaction's start in epoch
//! milliseconds, one reading per transaction as in the SQLite writer. A
//! write that can be one statement is one statement (data-modifying CTEs),
//! so it commits without an explicit transaction.

/// The current time of the database, epoch ms (the transaction's start).
macro_rules! now {
    () => {
        "(floor(extract(epoch FROM now()) * 1000)::int8)"
    };
}

/// Runs that may be claimed (alias `r`): due and queued, or running on an
/// expired lease, and their conversation's turn.
macro_rules! runnable {
    () => {
        concat!(
            "r.status {claim} \
             AND ((r.status = 'queued' AND r.available_at <= ",
            now!(),
            ") OR (r.status = 'running' AND r.lease_until < ",
            now!(),
            ")) AND ",
            conversation_turn!()
        )
    };
}

/// Claims the runs the CTE `c (cid, reclaim)` locked: `$1` owner, `$2` lease
/// length in ms. Bumps the fencing token, counts a reclaim as a new attempt
/// and audits it. Returns `reclaim, lease_token, roles, origin, run_cols`.
macro_rules! claim {
    ($candidate:expr) => {
        claim!("", $candidate)
    };
    ($ctes:expr, $candidate:expr) => {
        concat!(
            "WITH ",
            $ctes,
            "c AS (",
            $candidate,
            "), u AS (UPDATE runs SET status = 'running', lease_owner = $1, lease_until = ",
            now!(),
            " + $2, lease_token = lease_token + 1, attempt = attempt + c.reclaim::int4, \
             updated_at = ",
            now!(),
            " FROM c WHERE id = c.cid RETURNING c.reclaim, lease_token, roles, origin, ",
            run_cols!(),
            "), a AS (INSERT INTO audit (run_id, at, tenant, actor, event) \
             SELECT id, updated_at, tenant, $1, \
             CASE WHEN reclaim THEN 'reclaimed' ELSE 'claimed' END FROM u) \
             SELECT reclaim, lease_token, roles, origin, ",
            run_cols!(),
            " FROM u"
        )
    };
}

/// Inserts the steps of any number of runs, bound as the arrays `$1..$14`
/// (see `rows::StepColumns`) with record version `$15`: only the rows of
/// runs the CTE `u` returned, whose fenced update went through.
macro_rules! insert_steps {
    () => {
        "s AS (INSERT INTO steps (run_id, idx, kind, name, status, attempt, started_at, \
         duration_ms, input, output, error, input_tokens, output_tokens, call_id, v) \
         SELECT x.run_id, x.idx, x.kind, x.name, x.status, x.attempt, x.started_at, \
         x.duration_ms, x.input, x.output, x.error, x.input_tokens, x.output_tokens, x.call_id, \
         $15 FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::text[], $5::text[], $6::int4[], \
         $7::int8[], $8::int8[], $9::text[], $10::text[], $11::text[], $12::int8[], $13::int8[], \
         $14::text[]) AS x(run_id, idx, kind, name, status, attempt, started_at, duration_ms, \
         input, output, error, input_tokens, output_tokens, call_id) \
         WHERE x.run_id IN (SELECT id FROM u))"
    };
}

/// Adds the model steps of the arrays of `insert_steps!` (and `$cost`,
/// each step's cost) to their runs' sums per provider, for the fenced
/// writes `u (id, tenant, created_at)` that went through; the usage report
/// by provider reads them.
macro_rules! provider_usage {
    ($cost:literal) => {
        concat!(
            "pu AS (INSERT INTO run_provider_usage AS p (run_id, provider, tenant, created_at, \
             input_tokens, output_tokens, cost_usd) \
             SELECT x.run_id, x.name, min(u.tenant), min(u.created_at), \
             sum(COALESCE(x.i, 0)), sum(COALESCE(x.o, 0)), sum(x.c) \
             FROM unnest($1::uuid[], $3::text[], $4::text[], $12::int8[], $13::int8[], ",
            $cost,
            "::float8[]) AS x(run_id, kind, name, i, o, c) JOIN u ON u.id = x.run_id \
             WHERE x.kind = 'llm' GROUP BY x.run_id, x.name \
             ON CONFLICT (run_id, provider) DO UPDATE SET \
             input_tokens = p.input_tokens + excluded.input_tokens, \
             output_tokens = p.output_tokens + excluded.output_tokens, \
             cost_usd = p.cost_usd + excluded.cost_usd)"
        )
    };
}

/// What a fenced write adds to its run's journal totals, from the columns
/// `w_steps` (the new step count; NULL: no steps), `w_input_tokens`,
/// `w_output_tokens` and `w_cost` of the write.
macro_rules! add_totals {
    () => {
        concat!(
            "steps = COALESCE(w_steps, steps), input_tokens = input_tokens + w_input_tokens, \
             output_tokens = output_tokens + w_output_tokens, cost_usd = cost_usd + w_cost, \
             updated_at = ",
            now!()
        )
    };
}

/// The lease fence of a worker's write, against the write's `w_id`,
/// `w_tenant` and `w_token`.
macro_rules! fence {
    () => {
        "id = w_id AND tenant = w_tenant AND lease_token = w_token AND status {journal}"
    };
}

/// The writes of a batch, one row per run: `$16` ids, `$17` tenants, `$18`
/// lease tokens, `$19` new step counts, `$20`/`$21` tokens, `$22` cost, and
/// the extra columns `$extra` of the statement.
macro_rules! writes {
    ($($extra:literal),*) => {
        concat!(
            "w AS (SELECT * FROM unnest($16::uuid[], $17::text[], $18::int8[], $19::int4[], \
             $20::int8[], $21::int8[], $22::float8[]",
            $(", ", $extra,)*
            ") AS w(w_id, w_tenant, w_token, w_steps, w_input_tokens, w_output_tokens, w_cost"
        )
    };
}

/// Journaled model spending goes to the tenants' and principals' budget
/// periods for the fenced writes `u (id, tenant, principal, spent)` that
/// went through (a principal without a budget has no row to add to). A run's
/// reservation ends with it: when something was spent (`settle_budget!()`),
/// or whatever happened, as when the attempt ends (`settle_budget!(always)`).
macro_rules! settle_budget {
    () => {
        settle_budget!("spent > 0")
    };
    (always) => {
        settle_budget!("true")
    };
    ($release_if:literal) => {
        concat!(
            ", b AS (UPDATE tenant_budgets t SET spent_usd = t.spent_usd + c.spent \
             FROM (SELECT tenant, sum(spent) AS spent FROM u WHERE spent > 0 GROUP BY tenant) c \
             WHERE t.tenant = c.tenant), \
             pb AS (UPDATE principal_budgets p SET spent_usd = p.spent_usd + c.spent \
             FROM (SELECT tenant, principal, sum(spent) AS spent FROM u WHERE spent > 0 \
             GROUP BY tenant, principal) c \
             WHERE p.tenant = c.tenant AND p.principal = c.principal), \
             r AS (DELETE FROM budget_reservations WHERE run_id IN (SELECT id FROM u WHERE ",
            $release_if,
            "))"
        )
    };
}

// ---- schema ----

/// Serializes the users of one idempotency key (`$1` tenant, `$2` key)
/// until commit.
pub(super) const LOCK_IDEMPOTENCY: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/idempotency/' || $2, 0))";

/// The run an idempotency key created, and its request fingerprint.
pub(super) const GET_IDEMPOTENCY: &str =
    "SELECT run_id, fingerprint FROM idempotency_keys WHERE tenant = $1 AND key = $2";

/// Records an idempotency key: `$1` tenant, `$2` key, `$3` run, `$4`
/// fingerprint.
pub(super) const INSERT_IDEMPOTENCY: &str = concat!(
    "INSERT INTO idempotency_keys (tenant, key, run_id, fingerprint, created_at) \
     VALUES ($1, $2, $3, $4, ",
    now!(),
    ")"
);

/// Records one audit event: `$1` run, `$2` tenant, `$3` actor, `$4` event,
/// `$5` detail.
pub(super) const INSERT_AUDIT: &str = concat!(
    "INSERT INTO audit (run_id, at, tenant, actor, event, detail) VALUES ($1, ",
    now!(),
    ", $2, $3, $4, $5)"
);

pub(super) const RECORD_MIGRATION: &str = concat!(
    "INSERT INTO agentd_migrations (version, applied_at) VALUES ($1, ",
    now!(),
    ")"
);

pub(super) const SCHEMA_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)";

// ---- caller side ----

/// Serializes the capped creates of one tenant (`$1`) across processes
/// until the transaction ends.
pub(super) const LOCK_ACTIVE_RUNS: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/active-runs', 0))";

/// The tenant's (`$1`) queued and running runs, each counted up to `$2`:
/// read from the queue's partial indexes `runs_queued` and `runs_leased`
/// (`lease_owner` is set exactly while a run is running), which hold only
/// runs in flight, so the count never walks the tenant's finished runs.
pub(super) const COUNT_ACTIVE: &str = "SELECT \
       (SELECT count(*) FROM (SELECT 1 FROM runs WHERE status = 'queued' AND tenant = $1 LIMIT $2) q) \
     + (SELECT count(*) FROM (SELECT 1 FROM runs WHERE lease_owner IS NOT NULL AND tenant = $1 LIMIT $2) l)";

/// Serializes the creators of one conversation's runs (`$1` tenant, `$2`
/// conversation) until commit: a run inserted next to an uncommitted older
/// one would not see it and could start first.
pub(super) const LOCK_CONVERSATION: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))";

/// Inserts runs and audits them, one row of the arrays per run: `$1` ids,
/// `$2` tenants, `$3` agents, `$4` principals, `$5` conversations, `$6`
/// inputs, `$7` metadata, `$8` roles, `$9` lease owners, `$10` lease
/// lengths in ms, `$12` origins, `$13` agent versions and `$14` webhooks; `$11` the record version. A run with an owner is created
/// already claimed by it (as a claim right after creating it would leave
/// it), the others queued.
pub(super) const CREATE: &str = concat!(
    "WITH w AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], \
     $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int8[], $12::text[], \
     $13::text[], $14::text[]) AS w(w_id, w_tenant, w_agent, w_principal, w_conversation, \
     w_input, w_metadata, w_roles, w_owner, w_lease_ms, w_origin, w_version, w_callbacks)), \
     ins AS (INSERT INTO runs (id, tenant, agent, principal, conversation_id, status, input, \
     metadata, created_at, updated_at, available_at, lease_owner, lease_until, lease_token, v, \
     roles, origin, agent_version, callbacks) SELECT w_id, w_tenant, w_agent, w_principal, w_conversation, \
     CASE WHEN w_owner IS NULL THEN 'queued' ELSE 'running' END, w_input, w_metadata, ",
    now!(),
    ", ",
    now!(),
    ", ",
    now!(),
    ", w_owner, ",
    now!(),
    " + w_lease_ms, CASE WHEN w_owner IS NULL THEN 0 ELSE 1 END, $11, w_roles, w_origin, w_version, w_callbacks FROM w \
     RETURNING ",
    run_cols!(),
    ", lease_owner), a AS (INSERT INTO audit (run_id, at, tenant, actor, event) \
     SELECT ins.id, ins.created_at, ins.tenant, e.actor, e.event FROM ins \
     CROSS JOIN LATERAL (VALUES (1, ins.principal, 'created'), (2, ins.lease_owner, 'claimed')) \
     AS e (n, actor, event) WHERE e.actor IS NOT NULL ORDER BY ins.id, e.n) SELECT ",
    run_cols!(),
    " FROM ins"
);

pub(super) const GET_RUN: &str = concat!(
    "SELECT ",
    run_cols!(),
    " FROM runs WHERE id = $1 AND tenant = $2"
);

pub(super) const RUN_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM runs WHERE id = $1 AND tenant = $2)";

pub(super) const LIST_STEPS: &str = concat!(
    "SELECT ",
    step_cols!(),
    " FROM steps WHERE run_id = $1 AND idx > $2 ORDER BY idx LIMIT $3"
);

pub(super) const LIST_MESSAGES: &str = "SELECT seq, run_id, message, created_at FROM messages \
     WHERE tenant = $1 AND conversation_id = $2 AND seq > $3 ORDER BY seq LIMIT $4";

pub(super) const LIST_AUDIT: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM audit WHERE run_id = $1 AND tenant = $2 ORDER BY id"
);

// ---- worker side ----

rendered! {
/// Claims the `$3` oldest runnable runs: due queued runs (`runs_queued`)
/// and runs on expired leases (`runs_leased`), each looked up in its own
/// index.
pub(super) static CLAIM_NEXT = claim!(
    concat!(
        "q AS (SELECT r.id AS cid, false AS reclaim, r.available_at AS due FROM runs r \
         WHERE r.status = 'queued' AND r.available_at <= ",
        now!(),
        " AND ",
        conversation_turn!(),
        " ORDER BY r.available_at, r.id LIMIT $3 FOR UPDATE OF r SKIP LOCKED), \
         e AS (SELECT r.id AS cid, true AS reclaim, r.available_at AS due FROM runs r \
         WHERE r.lease_owner IS NOT NULL AND r.lease_until < ",
        now!(),
        " AND r.status = 'running' AND ",
        conversation_turn!(),
        " ORDER BY r.lease_until LIMIT $3 FOR UPDATE OF r SKIP LOCKED), "
    ),
    "SELECT cid, reclaim FROM (SELECT * FROM q UNION ALL SELECT * FROM e) x \
     ORDER BY due, cid LIMIT $3"
);
}

rendered! {
/// Claims run `$3` of tenant `$4` if it is runnable.
pub(super) static CLAIM_ONE = claim!(concat!(
    "SELECT r.id AS cid, r.status = 'running' AS reclaim FROM runs r \
     WHERE r.id = $3 AND r.tenant = $4 AND ",
    runnable!(),
    " FOR UPDATE OF r SKIP LOCKED"
));
}

/// A run's journal from its start up to step `$2`.
pub(super) const STEPS_UP_TO: &str = concat!(
    "SELECT ",
    step_cols!(),
    " FROM steps WHERE run_id = $1 AND idx <= $2 ORDER BY idx"
);

pub(super) const LOAD_STEPS: &str = concat!(
    "SELECT ",
    step_cols!(),
    " FROM steps WHERE run_id = $1 ORDER BY idx"
);

/// The last `$3` messages of a conversation, oldest first (`LIMIT NULL`:
/// all of them), with the runs that wrote them.
pub(super) const LOAD_HISTORY: &str = "SELECT run_id, message FROM (SELECT seq, run_id, message \
     FROM messages WHERE tenant = $1 AND conversation_id = $2 ORDER BY seq DESC LIMIT $3) m \
     ORDER BY seq";

rendered! {
pub(super) static HOLDS_LEASE = "SELECT EXISTS (SELECT 1 FROM runs WHERE id = $1 AND tenant = $2 \
     AND lease_token = $3 AND status {journal})";
}

/// Journals the steps of any number of runs under their leases and extends
/// each lease by its `$23` ms (`$24`: each step's cost); `$settle` settles
/// their tenants' budgets.
/// Returns the ids of the runs written; a run whose lease is lost is
/// missing, and nothing of it changed.
macro_rules! append {
    ($($settle:expr)?) => {
        concat!(
            "WITH ",
            writes!("$23::int8[]"),
            ", w_lease_ms)), u AS (UPDATE runs SET ",
            add_totals!(),
            ", lease_until = ",
            now!(),
            " + w_lease_ms FROM w WHERE ",
            fence!(),
            " RETURNING id, tenant, principal, created_at, w_cost AS spent), ",
            insert_steps!(),
            ", ",
            provider_usage!("$24"),
            $($settle,)?
            " SELECT id FROM u"
        )
    };
}

rendered! {
/// [`append!`] for writes that spend nothing: no budget to settle.
pub(super) static APPEND = append!();
}

rendered! {
/// [`append!`] for a batch that spends: the cost goes to the tenants'
/// budget periods and ends the runs' reservations.
pub(super) static APPEND_SETTLING = append!(settle_budget!());
}

rendered! {
/// Journals a run's last steps and pauses it: `$16..$22` as in
/// [`APPEND`] for the one run, `$23` pause, `$24` audit detail, `$25` each
/// step's cost.
pub(super) static PAUSE = concat!(
    "WITH ",
    writes!("$23::text[]", "$24::text[]"),
    ", w_pause, w_detail)), u AS (UPDATE runs SET ",
    add_totals!(),
    ", status = 'paused', pause = w_pause, lease_owner = NULL, lease_until = NULL FROM w WHERE ",
    fence!(),
    " RETURNING ",
    run_cols!(),
    ", w_cost AS spent, w_detail), ",
    insert_steps!(),
    ", ",
    provider_usage!("$25"),
    settle_budget!(always),
    ", a AS (INSERT INTO audit (run_id, at, tenant, actor, event, detail) \
     SELECT id, updated_at, tenant, 'agent', 'paused', w_detail FROM u) SELECT ",
    run_cols!(),
    " FROM u"
);
}

/// Journals the last steps of any number of runs and ends their attempts:
/// `$16..$22` as in [`APPEND`], `$23` statuses, `$24` outputs, `$25`
/// errors, `$26` audit details, `$27` retry delays in ms (NULL: none),
/// `$28` attempts to add, `$29` audit events; `$30..$32` the messages for
/// the runs' conversations (run, position, message), numbered after each
/// conversation's last one and ignored for runs without one; `$33` the
/// outputs as validated JSON (NULL without an output schema); `$34` each
/// step's cost; `$settle` settles budgets. Returns the runs written.
macro_rules! finish {
    ($($settle:expr)?) => {
        concat!(
            "WITH ",
            writes!(
                "$23::text[]",
                "$24::text[]",
                "$25::text[]",
                "$26::text[]",
                "$27::int8[]",
                "$28::int4[]",
                "$29::text[]",
                "$33::text[]"
            ),
            ", w_status, w_output, w_error, w_detail, w_delay, w_attempts, w_event, \
             w_output_json)), \
             u AS (UPDATE runs SET ",
            add_totals!(),
            ", status = w_status, output = w_output, output_json = w_output_json, \
             error = w_error, lease_owner = NULL, \
             lease_until = NULL, available_at = COALESCE(",
            now!(),
            " + w_delay, available_at), attempt = attempt + w_attempts FROM w WHERE ",
            fence!(),
            " RETURNING ",
            run_cols!(),
            ", w_cost AS spent, w_detail, w_event), ",
            insert_steps!(),
            ", ",
            provider_usage!("$34"),
            $($settle,)?
            ", a AS (INSERT INTO audit (run_id, at, tenant, actor, event, detail) \
             SELECT id, updated_at, tenant, 'agent', w_event, w_detail FROM u), \
             m AS (INSERT INTO messages (tenant, conversation_id, seq, run_id, message, created_at) \
             SELECT u.tenant, u.conversation_id, t.ord + (SELECT COALESCE(max(x.seq), 0) FROM messages x \
             WHERE x.tenant = u.tenant AND x.conversation_id = u.conversation_id), \
             u.id, t.message, u.updated_at \
             FROM u JOIN unnest($30::uuid[], $31::int8[], $32::text[]) AS t (run_id, ord, message) \
             ON t.run_id = u.id WHERE u.conversation_id IS NOT NULL) SELECT ",
            run_cols!(),
            " FROM u"
        )
    };
}

rendered! {
/// [`finish!`] for attempts that spent nothing and hold no reservation.
pub(super) static FINISH = finish!();
}

rendered! {
/// [`finish!`] for a batch where some attempt spent or reserved budget: the
/// attempt is over, so whatever it reserved is released.
pub(super) static FINISH_SETTLING = finish!(settle_budget!(always));
}

rendered! {
/// Extends a held lease: `$1` id, `$2` tenant, `$3` token, `$4` ms.
pub(super) static HEARTBEAT = concat!(
    "UPDATE runs SET lease_until = ",
    now!(),
    " + $4 WHERE id = $1 AND tenant = $2 AND lease_token = $3 AND status {journal}"
);
}

rendered! {
pub(super) static RELEASE = concat!(
    "UPDATE runs SET status = 'queued', lease_owner = NULL, lease_until = NULL, available_at = ",
    now!(),
    ", updated_at = ",
    now!(),
    " WHERE id = $1 AND tenant = $2 AND lease_token = $3 AND status {release}"
);
}

rendered! {
pub(super) static RELEASE_OWNER = concat!(
    "UPDATE runs SET status = 'queued', lease_owner = NULL, lease_until = NULL, available_at = ",
    now!(),
    ", updated_at = ",
    now!(),
    ", attempt = attempt + 1 WHERE lease_owner = $1 AND status {release}"
);
}

// ---- maintenance ----

rendered! {
/// Deletes up to `$2` runs that finished more than `$1` ms ago (database
/// clock), oldest first, with their steps, audit records and idempotency
/// keys. Runs another purger holds are skipped. Returns how many went.
pub(super) static PURGE_FINISHED = concat!(
    "WITH r AS (SELECT id FROM runs WHERE status {purge} \
     AND updated_at < ",
    now!(),
    " - $1 ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED), \
     s AS (DELETE FROM steps WHERE run_id IN (SELECT id FROM r)), \
     a AS (DELETE FROM audit WHERE run_id IN (SELECT id FROM r)), \
     k AS (DELETE FROM idempotency_keys WHERE run_id IN (SELECT id FROM r)), \
     v AS (DELETE FROM pii_vaults WHERE run_id IN (SELECT id FROM r)), \
     pu AS (DELETE FROM run_provider_usage WHERE run_id IN (SELECT id FROM r)), \
     d AS (DELETE FROM runs WHERE id IN (SELECT id FROM r) RETURNING id) \
     SELECT count(*) FROM d"
);
}
/// Runs of all tenants by queue status (the `runs_runnable` partial index).
pub(super) const COUNT_QUEUE: &str = "SELECT status, count(*) FROM runs \
    WHERE status IN ('queued', 'running') GROUP BY status";

rendered! {
/// Checks a lease is held: `$1` run, `$2` tenant, `$3` token.
pub(super) static LEASE_HELD =
    "SELECT 1 FROM runs WHERE id = $1 AND tenant = $2 AND lease_token = $3 AND status {journal}";
}

/// Opens provider `$1`'s shared circuit for `$2` ms (never shortening it).
pub(super) const CIRCUIT_OPEN: &str = concat!(
    "INSERT INTO circuits AS c (provider, open_until) VALUES ($1, ",
    now!(),
    " + $2) ON CONFLICT (provider) DO UPDATE SET \
     open_until = GREATEST(c.open_until, excluded.open_until)"
);

/// Closes provider `$1`'s shared circuit.
pub(super) const CIRCUIT_CLOSE: &str = "DELETE FROM circuits WHERE provider = $1";

/// Open circuits and the ms they stay open.
pub(super) const CIRCUITS_OPEN: &str = concat!(
    "SELECT provider, open_until - ",
    now!(),
    " FROM circuits WHERE open_until > ",
    now!()
);

// ---- API keys ----

mod budget;
mod keys;
mod rollouts;
mod transitions;
mod usage;
pub(super) use budget::*;
pub(super) use keys::*;
pub(super) use rollouts::*;
pub(super) use transitions::*;
pub(super) use usage::*;

/// Copies a fork's kept steps: the step arrays `$1..$15` (see
/// `insert_steps!`) of the fork `$16`.
pub(super) const INSERT_FORK_STEPS: &str = concat!(
    "WITH u AS (SELECT $16::uuid AS id), ",
    insert_steps!(),
    " SELECT 1"
);

/// Marks run `$3` as forked from run `$2` at step `$1` (its step count).
pub(super) const SET_FORKED_FROM: &str = concat!(
    "UPDATE runs SET steps = $1, forked_from = $2, fork_step = $1 WHERE id = $3 RETURNING ",
    run_cols!()
);
