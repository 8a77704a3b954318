#!/usr/bin/env bash
# A/B of two agentd builds on one W1 configuration, alternating runs so
# both see the same machine state (a shared 2-core VM drifts by ±30%
# between sittings; alternation cancels most of that).
#
#   bench/ab.sh OLD_BENCH NEW_BENCH [ROUNDS] -- --mode conc --store sqlite
#
# OLD_BENCH / NEW_BENCH are agentd-bench binaries (for example one built
# from a worktree of the commit before a change, with its own
# CARGO_TARGET_DIR). Prints one line per run and the median runs/s of each.
#
# NEW_ARGS adds flags to the new side only, to A/B a feature of one build:
#
#   NEW_ARGS="--api-key --rate-limits" bench/ab.sh B B 5 -- --transport http --mode seq
set -euo pipefail
old="$1"; new="$2"; shift 2
rounds=3
if [ "${1:-}" != "--" ]; then rounds="$1"; shift; fi
[ "${1:-}" = "--" ] && shift
pg_url="${PG_URL:-postgres://postgres@localhost/test?host=/var/run/postgresql}"
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for _ in $(seq "$rounds"); do
  for side in old new; do
    bin="$old"; extra=()
    if [ "$side" = new ]; then bin="$new"; read -r -a extra <<< "${NEW_ARGS:-}"; fi
    line="$("$bin" --pg-url "$pg_url" "$@" "${extra[@]}" 2>/dev/null)"
    echo "$side $line" >> "$results"
    echo "$line" | python3 -c 'import json, sys
v = json.load(sys.stdin)
print(sys.argv[1] + ":", v["runs_per_s"], "runs/s, p99", v["lat_ms"]["p99"], "ms, CPU", v["cpu_ms_per_run"], "ms/run")' "$side" >&2
  done
done
python3 - "$results" <<'PY'
import json, statistics, sys
by = {"old": [], "new": []}
for line in open(sys.argv[1]):
    side, rest = line.split(" ", 1)
    by[side].append(json.loads(rest)["runs_per_s"])
o, n = statistics.median(by["old"]), statistics.median(by["new"])
print(f"median runs/s: old {o:.0f}, new {n:.0f} ({(n / o - 1) * 100:+.1f}%)")
PY
