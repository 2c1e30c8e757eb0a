#!/bin/bash
# A/B of two chassis-ts checkouts on the echo model, 16x16: both servers run
# side by side on CPU 0, h2load on CPU 1, and timed runs alternate between
# them; each run prints requests, answers and server CPU µs per request, and
# the end prints the median of each side and B/A.
#
#   bench/ab.sh CHECKOUT_A CHECKOUT_B [ROUNDS=6] [SECONDS=3] [PROTOCOL=v1|omi]
#
# v1: KServe v1 predict over h2load --h1 (every answer must be a 2xx). omi:
# OMI Run over h2load (every answer a 200; before the runs, one Run through a
# real gRPC client must come back with grpc-status 0 and the echoed bytes).
# Each checkout must be built (npm run build). Used for changes too small to
# show against the baseline's run-to-run noise (docs/performance.md, item 10).
set -euo pipefail
usage() { echo "ab.sh: $1 (usage: bench/ab.sh CHECKOUT_A CHECKOUT_B [ROUNDS=6] [SECONDS=3] [PROTOCOL=v1|omi])" >&2; exit 2; }
[ $# -ge 2 ] && [ $# -le 5 ] || usage "takes two checkouts, then ROUNDS, SECONDS and PROTOCOL if given; got $# arguments"
for dir in "$1" "$2"; do [ -f "$dir/bin/chassis.js" ] || usage "$dir is not a chassis-ts checkout (no bin/chassis.js)"; done
A=$(cd "$1" && pwd); B=$(cd "$2" && pwd); ROUNDS=${3:-6}; SECS=${4:-3}; PROTOCOL=${5:-v1}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || usage "ROUNDS must be a whole number, 1 or more, got $ROUNDS"
[[ $SECS =~ ^[1-9][0-9]*$ ]] || usage "SECONDS must be a whole number, 1 or more, got $SECS"
for tool in h2load taskset; do command -v $tool >/dev/null || { echo "ab.sh: $tool is missing (sudo bench/install-tools.sh)" >&2; exit 2; }; done
here=$(cd "$(dirname "$0")" && pwd)
body=$(mktemp)
case $PROTOCOL in
  v1)
    echo '{"instances":["aGVsbG8gd29ybGQ="]}' > "$body"
    load=(--h1 -c16 -m16 -d "$body" -H 'content-type: application/json')
    path=/v1/models/echo:predict; listen=(--interface kserve --http-port) ;;
  omi)
    node --input-type=module -e "
      import { writeFileSync } from 'node:fs';
      import { ECHO_INPUT, frame, runRequestBytes } from '$here/lib.mjs';
      writeFileSync('$body', frame(runRequestBytes(ECHO_INPUT)));"
    load=(-c16 -m16 -d "$body" -H 'content-type: application/grpc' -H 'te: trailers')
    path=/ModzyModel/Run; listen=(--interface omi --port) ;;
  *) echo "ab.sh: PROTOCOL must be v1 or omi, got $PROTOCOL" >&2; exit 2 ;;
esac
start() { taskset -c 0 node "$1/bin/chassis.js" serve "$1/examples/echo" "${listen[@]}" "$2" --host 127.0.0.1 >/dev/null 2>&1 & echo $!; }
pa=$(start "$A" 18301); pb=$(start "$B" 18302)
trap 'kill $pa $pb 2>/dev/null; rm -f "$body"' EXIT
for port in 18301 18302; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  if [ "$PROTOCOL" = omi ]; then
    node --input-type=module -e "
      import { ECHO_INPUT, verifyGrpc } from '$here/lib.mjs';
      const problem = await verifyGrpc($port, ECHO_INPUT, ECHO_INPUT);
      if (problem) { console.error('ab.sh: the Run on port $port failed: ' + problem); process.exit(1); }
      process.exit(0);"
  fi
  taskset -c 1 h2load "${load[@]}" -D 2 "http://127.0.0.1:$port$path" >/dev/null
done
declare -a usA usB
for r in $(seq "$ROUNDS"); do
  for side in A B; do
    if [ $side = A ]; then pid=$pa; port=18301; else pid=$pb; port=18302; fi
    t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    out=$(taskset -c 1 h2load "${load[@]}" -D "$SECS" "http://127.0.0.1:$port$path")
    t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    done_=$(echo "$out" | grep -oP 'requests: \d+ total, \d+ started, \K\d+(?= done)')
    ok=$(echo "$out" | grep -oP 'status codes: \K\d+(?= 2xx)')
    [ "$ok" = "$done_" ] || { echo "ab.sh: $side answered $ok of $done_ requests with a 2xx status" >&2; exit 1; }
    us=$(awk -v t="$((t1 - t0))" -v n="$done_" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    echo "round $r $side: $done_ requests, all 2xx, $us µs of server CPU per request"
    if [ $side = A ]; then usA+=("$us"); else usB+=("$us"); fi
  done
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ma=$(median "${usA[@]}"); mb=$(median "${usB[@]}")
echo "median µs per request: A $ma, B $mb, B/A $(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.3f", b / a }')"
