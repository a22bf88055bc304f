#!/bin/bash
# usage: wrkab.sh BIN(wagate binary) MODE(wagate|peer) LABEL
BIN=$1; MODE=$2; LABEL=$3
PFX=bw$RANDOM$RANDOM
cpu() { redis-cli info cpu | awk -F: '/used_cpu_(sys|user):/{s+=$2} END{printf "%.6f", s}'; }
cs() { redis-cli info commandstats | awk -F"[:=,]" -v c="$1" '$1=="cmdstat_"c{print $5}'; }
calls() { redis-cli info commandstats | awk -F"[:=,]" -v c="$1" '$1=="cmdstat_"c{print $3}'; }
$BIN dev -http 127.0.0.1:18080 -sim 127.0.0.1:18090 -prefix $PFX -clickhouse-db wagate_$PFX -ops 127.0.0.1:18060 -numbers 16 -rate 1 -sim-webhooks=false > /tmp/wrkab-gw.log 2>&1 &
GW=$!
for i in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18080/healthz 2>/dev/null && break; sleep 0.2; done
sleep 1
curl -s -o /dev/null -XPUT -H 'Authorization: Bearer dev-admin-token' -H 'Content-Type: application/json' -d '{"window_enforcement":false}' http://127.0.0.1:18080/api/v1/whatsapp/settings
PORT=18080; CMD=fcall
if [ "$MODE" = peer ]; then
  /tmp/asynq-gateway -addr 127.0.0.1:18085 -sim http://127.0.0.1:18090 -rate 1 > /tmp/wrkab-peer.log 2>&1 &
  PEER=$!; PORT=18085; CMD=evalsha; sleep 1
fi
wrk -t2 -c64 -d3s -s /tmp/send.lua http://127.0.0.1:$PORT/api/v1/whatsapp/messages/send > /dev/null
c0=$(cpu); u0=$(cs $CMD); k0=$(calls $CMD)
wrk -t2 -c64 -d10s --latency -s /tmp/send.lua http://127.0.0.1:$PORT/api/v1/whatsapp/messages/send > /tmp/wrkab-out.txt
c1=$(cpu); u1=$(cs $CMD); k1=$(calls $CMD)
rps=$(awk '/Requests\/sec/{print $2}' /tmp/wrkab-out.txt)
p99=$(awk '$1=="99%"{print $2}' /tmp/wrkab-out.txt)
n=$(awk '/requests in/{print $1}' /tmp/wrkab-out.txt)
non2=$(awk '/Non-2xx/{print $4}' /tmp/wrkab-out.txt)
echo "$LABEL $(date +%H:%M:%S) rps=$rps p99=$p99 n=$n non2xx=${non2:-0} redis_cpu_us=$(echo "($c1-$c0)*1000000/$n" | bc -l | cut -c1-5) $CMD-us=$(echo "(${u1:-0}-${u0:-0})/$n" | bc -l | cut -c1-5) calls=$((k1-k0)) us-per-call=$(echo "(${u1:-0}-${u0:-0})/($k1-$k0)" | bc -l | cut -c1-6)"
[ -n "$PEER" ] && kill $PEER
kill $GW; wait $GW 2>/dev/null
redis-cli --scan --pattern "$PFX*" | xargs -r -n 1000 redis-cli unlink > /dev/null
redis-cli --scan --pattern 'asynq*' | xargs -r -n 1000 redis-cli unlink > /dev/null
