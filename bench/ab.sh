#!/bin/bash
# A/B of two chassis-ts checkouts on KServe v1 echo (h2load --h1 16x16): both
# servers run side by side on CPU 0, h2load on CPU 1, and timed runs alternate
# between them; each run prints requests, 2xx answers and server CPU µs per
# request, and the end prints the median of each side and B/A.
#
#   bench/ab.sh CHECKOUT_A CHECKOUT_B [ROUNDS=6] [SECONDS=3]
#
# Each checkout must be built (npm run build). Used for changes too small to
# show against the baseline's run-to-run noise (docs/performance.md, item 10).
set -euo pipefail
A=$(cd "$1" && pwd); B=$(cd "$2" && pwd); ROUNDS=${3:-6}; SECS=${4:-3}
for tool in h2load taskset; do command -v $tool >/dev/null || { echo "ab.sh: $tool is missing (sudo bench/install-tools.sh)" >&2; exit 2; }; done
body=$(mktemp); echo '{"instances":["aGVsbG8gd29ybGQ="]}' > "$body"
url=/v1/models/echo:predict
start() { taskset -c 0 node "$1/bin/chassis.js" serve "$1/examples/echo" --interface kserve --http-port "$2" --host 127.0.0.1 >/dev/null 2>&1 & echo $!; }
pa=$(start "$A" 18301); pb=$(start "$B" 18302)
trap 'kill $pa $pb 2>/dev/null; rm -f "$body"' EXIT
for port in 18301 18302; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
  taskset -c 1 h2load --h1 -c16 -m16 -D 2 -d "$body" -H 'content-type: application/json' "http://127.0.0.1:$port$url" >/dev/null
done
declare -a usA usB
for r in $(seq "$ROUNDS"); do
  for side in A B; do
    if [ $side = A ]; then pid=$pa; port=18301; else pid=$pb; port=18302; fi
    t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    out=$(taskset -c 1 h2load --h1 -c16 -m16 -D "$SECS" -d "$body" -H 'content-type: application/json' "http://127.0.0.1:$port$url")
    t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    done_=$(echo "$out" | grep -oP 'requests: \d+ total, \d+ started, \K\d+(?= done)')
    ok=$(echo "$out" | grep -oP 'status codes: \K\d+(?= 2xx)')
    [ "$ok" = "$done_" ] || { echo "ab.sh: $side answered $ok of $done_ requests with 2xx" >&2; exit 1; }
    us=$(awk -v t="$((t1 - t0))" -v n="$done_" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    echo "round $r $side: $done_ requests, all 2xx, $us µs of server CPU per request"
    if [ $side = A ]; then usA+=("$us"); else usB+=("$us"); fi
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ma=$(median "${usA[@]}"); mb=$(median "${usB[@]}")
echo "median µs per request: A $ma, B $mb, B/A $(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.3f", b / a }')"
