#!/usr/bin/env bash
# The tail guard with the fronts on a core of their own: `llmscope bench`
# (the load client) and the simulator run on CPU 0, the gateway and the bare
# reverse proxy on CPU 1. Each front starts on CPU 0 and is moved, so Go
# gives it one P (GOMAXPROCS=1): a gateway on a one-core allotment. On a
# 2-core machine this separates what the gateway costs its own requests
# from the CPU it takes from the client and the simulator, which the
# unpinned `make tail` charges to it as latency.
#
# Usage: scripts/tail-pinned.sh [bench flags...]   (default: make tail's)
# Needs taskset (util-linux) and at least 2 CPUs. Not a CI gate: a timing on
# a shared machine must never fail a build.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v taskset >/dev/null || { echo "tail-pinned: needs taskset (util-linux)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "tail-pinned: needs 2 CPUs or more" >&2; exit 1; }
BIN=${BIN:-bin/llmscope}
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--scenarios direct,gateway,reverseproxy --rate 0 --concurrency 16 \
	--duration 2s --warmup 500ms --settle-limit 3s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# bench's log goes to stderr as usual, and to $log to find the fronts' pids.
taskset -c 0 "$BIN" bench "${args[@]}" 2> >(tee "$log" >&2) &
bench=$!
# bench prints "bench: <scenario> pid N at ..." for each process it starts,
# then "msg=bench phases=..." once all have started.
for _ in $(seq 300); do
	grep -q "msg=bench phases=" "$log" && break
	kill -0 "$bench" 2>/dev/null || break
	sleep 0.1
done
fronts=$(grep -Eo "(gateway[^ ]*|reverseproxy) pid [0-9]+" "$log" || true)
for pid in $(echo "$fronts" | awk '{print $3}'); do
	taskset -a -c -p 1 "$pid" >/dev/null || echo "tail-pinned: could not move pid $pid to CPU 1" >&2
done
echo "tail-pinned: fronts on CPU 1: $(echo "$fronts" | tr '\n' ' ')" >&2
wait "$bench"
