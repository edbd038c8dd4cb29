#!/usr/bin/env bash
# Runs the load matrix of tests/bench and rewrites docs/benchmarks.md (its
# generated part), docs/benchmarks.svg and docs/benchmarks.json.
#
#   tests/bench/run.sh                      # 3 rounds x 4 s per run, ~15 min
#   tests/bench/run.sh -rounds 1 -dur 2s    # a quick look
#   tests/bench/run.sh -cases room-1000 -libs shockwave,gws
#   UWS_BIN=/tmp/uws tests/bench/run.sh     # with uWebSockets, built from ../shared/bench/uws;
#                                           # without it, its columns say "not built"
#
# Every server runs pinned to CPU 0 with GOMAXPROCS=1, the load generator
# pinned to CPU 1; the machine needs 2 cores at least, taskset, and an fd
# limit of 20,000 for each process (19,800 idle connections on each side,
# the load generator being another process). The script first
# waits, up to WAIT_QUIET seconds (default 600), for the 1-minute load
# average to drop below MAX_LOAD (default 1.5): numbers taken on a busy
# machine say little.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v taskset >/dev/null || { echo "run.sh: taskset is needed (util-linux)" >&2; exit 1; }
if [ "$(nproc --all)" -lt 2 ]; then
	echo "run.sh: needs 2 cores, one for the server and one for the load" >&2
	exit 1
fi
ulimit -n 20000 2>/dev/null || true
if [ "$(ulimit -n)" -lt 20000 ]; then
	echo "run.sh: the fd limit is $(ulimit -n); 19,800 idle connections need 20,000" >&2
	exit 1
fi

max_load=${MAX_LOAD:-1.5}
deadline=$(( $(date +%s) + ${WAIT_QUIET:-600} ))
while :; do
	load=$(cut -d' ' -f1 /proc/loadavg)
	if awk -v l="$load" -v m="$max_load" 'BEGIN { exit !(l < m) }'; then
		break
	fi
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "run.sh: load average still $load; running anyway (the report records it)" >&2
		break
	fi
	echo "run.sh: load average $load, waiting for < $max_load" >&2
	sleep 15
done

exec go run ./tests/bench/cmd/matrix "$@"
