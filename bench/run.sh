#!/usr/bin/env bash
# Runs the W1 benchmark matrix (shared/bench/WORKLOAD.md) and writes
# bench/results/<stamp>.jsonl plus a Markdown table next to it.
#
#   bench/run.sh                 # full matrix (about 10 minutes)
#   QUICK=1 bench/run.sh         # fewer runs, for a smoke check
#   STORES="sqlite postgres" bench/run.sh
#   PG_URL=postgres://... STORES="sqlite postgres" bench/run.sh
#
# PostgreSQL is reached over its unix socket by default, as a server on the
# same host is; one fleet row repeats the 3-process run over TCP on
# loopback, where the client negotiates TLS (sslmode=prefer), to show what
# that costs.
#
# Figures on a shared 2-core VM vary by ±30% between sittings: compare rows
# measured in one run of this script.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/agentd-target}"
cargo build --release --locked -p agentd -p agentd-bench >&2
bench="$CARGO_TARGET_DIR/release/agentd-bench"
agentd="$CARGO_TARGET_DIR/release/agentd"

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="bench/results/$stamp.jsonl"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
stores="${STORES:-sqlite}"
pg_url="${PG_URL:-postgres://postgres@localhost/test?host=/var/run/postgresql}"

if [ -n "${QUICK:-}" ]; then
  seq_runs=300; conc_runs=1000; pause_runs=1000; big_pause=5000
else
  seq_runs=2000; conc_runs=5000; pause_runs=10000; big_pause=100000
fi

run() {
  echo "agentd-bench $*" >&2
  "$bench" --agentd "$agentd" --dir "$work" --pg-url "$pg_url" "$@" | tee -a "$out"
}

for store in $stores; do
  for transport in inproc http; do
    run --store "$store" --transport "$transport" --mode seq --runs "$seq_runs"
    run --store "$store" --transport "$transport" --mode conc --runs "$conc_runs" --concurrency 64
    run --store "$store" --transport "$transport" --mode pause --runs "$pause_runs"
  done
  # The same W1 over HTTP with API-key auth and every rate limit on (limits
  # far above what W1 reaches): what identity and limits cost a request.
  # Compare with the plain HTTP rows just above, from the same sitting.
  run --store "$store" --transport http --mode seq --runs "$seq_runs" --api-key --rate-limits
  run --store "$store" --transport http --mode conc --runs "$conc_runs" --concurrency 64 \
    --api-key --rate-limits
  # Metrics overhead: W1 conc in process with no recorder at all; compare
  # with the in-process conc row above (agentd's Prometheus recorder on).
  # For a tighter figure alternate the two: NEW_ARGS=--no-metrics bench/ab.sh.
  run --store "$store" --transport inproc --mode conc --runs "$conc_runs" --concurrency 64 \
    --no-metrics
done
# A fleet on one PostgreSQL: 1 and 3 `agentd worker` processes.
case " $stores " in *" postgres "*)
  for n in 1 3; do
    run --store postgres --mode conc --processes "$n" --runs "$conc_runs" --concurrency 64
  done
  pg_url="postgres://postgres@127.0.0.1:5432/test" \
    run --store postgres --mode conc --processes 3 --runs "$conc_runs" --concurrency 64
esac
# Paused runs hold no memory: RSS with 1,000 and with 100,000 paused runs.
run --store sqlite --transport inproc --mode pause --runs 1000
run --store sqlite --transport inproc --mode pause --runs "$big_pause"
run --mode startup

"$bench" report "$out" > "bench/results/$stamp.md"
echo "wrote $out and bench/results/$stamp.md" >&2
