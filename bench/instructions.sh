#!/usr/bin/env bash
# User-space instructions per request of a server, counted by valgrind's
# callgrind around N requests only (after 300 of warm-up), one keep-alive
# connection: a figure that does not move with the machine's other work,
# for comparing two builds of the same handler when requests/s on a shared
# machine move by ±10% from run to run. The kernel's share (the socket
# calls) is not in it; bench/serve.py remains the measure of the targets.
#
#   bash bench/instructions.sh PORT PATH BODY_FILE N SERVER_COMMAND...
#
# SERVER_COMMAND must listen on 127.0.0.1:PORT and answer POST PATH with
# 200. For example, with a home holding the model `serve-bench` (as
# bench/serve.py trains it):
#
#   bash bench/instructions.sh 18081 /invocations one-row.json 2000 \
#       target/release/flywheel serve serve-bench --home HOME --addr 127.0.0.1:18081 --no-log
#
# Needs valgrind (apt-get install valgrind) and curl.
set -euo pipefail
if [ $# -lt 5 ]; then
    sed -n '2,18p' "$0" >&2
    exit 2
fi
port=$1 path=$2 body=$3 n=$4
shift 4
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/cg.%p" "$@" > "$out/server.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
    curl -s -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary "@$body" \
        "http://127.0.0.1:$port$path" && break
    sleep 0.2
done
send() {
    python3 - "$port" "$path" "$body" "$1" <<'EOF'
import http.client, sys
port, path, body, n = int(sys.argv[1]), sys.argv[2], open(sys.argv[3], "rb").read(), int(sys.argv[4])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
for _ in range(n):
    c.request("POST", path, body, {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"{path}: HTTP {r.status}")
EOF
}
send 300
callgrind_control -i on "$pid" > /dev/null 2>&1
send "$n"
callgrind_control -d "$pid" > /dev/null 2>&1
callgrind_control -i off "$pid" > /dev/null 2>&1
kill "$pid"
wait "$pid" 2> /dev/null || true
total=$(awk '/^totals:/ {print $2}' "$out/cg.$pid.1")
echo "$path: $((total / n)) instructions per request (user space, $n requests, $*)"
