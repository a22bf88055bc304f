#!/usr/bin/env bash
# bench/run.sh NAME "GATEWAY FLAGS" [WABENCH FLAGS...]
#
# One measurement of bench/RESULTS.md on a fresh gateway: stops the bench
# gateway if one runs, drops its ClickHouse database and its Redis keys
# (prefix bench), starts `wagate dev` on 127.0.0.1:18080 (simulator :18090,
# ops listener with /metrics and the profiles :18060) with GATEWAY FLAGS,
# runs wabench with WABENCH FLAGS, and
# leaves NAME.json, NAME.md, NAME.txt (the closing table), NAME-prof/ (CPU
# profiles of the gateway) and NAME.gateway.log in $OUT. Then it stops the
# gateway and cleans up again (keys and database dropped). Redis and
# ClickHouse must be running (scripts/services up); they are never stopped.
# With PEER=1 it also builds and starts the peer gateway (bench/peers/asynq,
# its own module) on 127.0.0.1:18085 against the same Redis, with
# PEER_FLAGS (default "-rate 1": its workers as idle as wagate's dispatcher
# at -rate 1), and passes -peer to wabench; its asynq:* keys are deleted
# before and after.
#
#   bench/run.sh single-api "-numbers 16 -rate 1 -sim-webhooks=false" -scenario single -numbers 16
#
# On the local Redis Cluster (scripts/services cluster-up), with
# CLUSTER_PORTS="7100 7101 7102" for the clean-up:
#
#   CL=redis+cluster://127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102
#   bench/run.sh single-cluster "-numbers 96 -rate 1 -sim-webhooks=false -redis $CL -prefix benchc" \
#     -scenario single -numbers 96 -no-ceilings -redis $CL
set -euo pipefail
name=$1
gwflags=$2
shift 2
WB=${WB:-/tmp/wb}
OUT=${OUT:-$WB/results}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$WB" "$OUT"
(cd "$repo" && go build -o "$WB/wagate" ./cmd/wagate && go build -o "$WB/wabench" ./cmd/wabench)
if [[ ${PEER:-} == 1 ]]; then
  (cd "$repo/bench/peers/asynq" && go build -o "$WB/asynq-gateway" .)
fi

stop_gateway() {
  if [[ -f $WB/gw.pid ]]; then
    local pid
    pid=$(cat "$WB/gw.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.3; done
    rm -f "$WB/gw.pid"
  fi
  if [[ -f $WB/peer.pid ]]; then
    kill "$(cat "$WB/peer.pid")" 2>/dev/null || true
    rm -f "$WB/peer.pid"
    sleep 1
  fi
  redis-cli --scan --pattern 'bench:*' | xargs -r -n 1000 redis-cli unlink >/dev/null
  redis-cli --scan --pattern 'asynq:*' | xargs -r -n 1000 redis-cli unlink >/dev/null
  # A gateway on the local Redis Cluster (-redis redis+cluster://…, prefix
  # benchc): each master's keys, one UNLINK each (they lie in many slots).
  local p
  for p in ${CLUSTER_PORTS:-}; do
    redis-cli -p "$p" --scan --pattern 'benchc:*' 2>/dev/null | awk '{print "UNLINK " $0}' | redis-cli -p "$p" >/dev/null 2>&1 || true
  done
  clickhouse-client -q "DROP DATABASE IF EXISTS wagate_bench"
  # The ports lie below Linux's ephemeral range (32768-60999), so that no
  # client socket (the simulator retrying a webhook to the stopped API, say)
  # can take one of them; wait for the old gateway's listeners to be gone.
  for _ in $(seq 1 90); do
    ss -ltn | awk '$4 ~ /:(18080|18090|18060|18085)$/' | grep -q . || break
    sleep 1
  done
}

stop_gateway
gwcmd="wagate dev -http 127.0.0.1:18080 -sim 127.0.0.1:18090 -prefix bench -clickhouse-db wagate_bench -instance bench-1 -ops 127.0.0.1:18060 $gwflags"
{ date -u; uptime; ps -eo pcpu,etime,args --sort=-pcpu | head -8; } >"$OUT/$name.before.txt"
# shellcheck disable=SC2086 # the gateway flags are words
nohup "$WB/wagate" dev -http 127.0.0.1:18080 -sim 127.0.0.1:18090 -prefix bench -clickhouse-db wagate_bench \
  -instance bench-1 -ops 127.0.0.1:18060 $gwflags >"$WB/gw.log" 2>&1 &
echo $! >"$WB/gw.pid"
trap stop_gateway EXIT
sleep 1.5
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:18080/healthz >/dev/null && break; sleep 0.2; done
curl -sf http://127.0.0.1:18080/healthz >/dev/null || { cat "$WB/gw.log"; exit 1; }
sleep 2
peerflag=()
if [[ ${PEER:-} == 1 ]]; then
  # shellcheck disable=SC2086 # the peer's flags are words
  nohup "$WB/asynq-gateway" -addr 127.0.0.1:18085 -sim http://127.0.0.1:18090 ${PEER_FLAGS:--rate 1} >"$WB/peer.log" 2>&1 &
  echo $! >"$WB/peer.pid"
  sleep 1
  peerflag=(-peer http://127.0.0.1:18085)
fi
rc=0
"$WB/wabench" -target http://127.0.0.1:18080 -sim http://127.0.0.1:18090 -clickhouse-db wagate_bench \
  -ops http://127.0.0.1:18060 -profile http://127.0.0.1:18060 -profile-dir "$OUT/$name-prof" -json "$OUT/$name.json" -md "$OUT/$name.md" \
  -gateway-cmd "$gwcmd" "${peerflag[@]}" "$@" >"$OUT/$name.txt" 2>"$OUT/$name.progress.txt" || rc=$?
{ date -u; uptime; ps -eo pcpu,etime,args --sort=-pcpu | head -8; } >"$OUT/$name.after.txt"
cp "$WB/gw.log" "$OUT/$name.gateway.log"
cat "$OUT/$name.txt"
exit $rc
