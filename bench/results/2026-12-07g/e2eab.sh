#!/bin/bash
# usage: e2eab.sh TREE WBDIR OUTDIR
cd $1 && redis-cli function flush >/dev/null && OUT=$3 WB=$2 bash bench/run.sh e2e "-numbers 16 -rate 1000 -sim-webhook-batch 50" -scenario e2e -numbers 16 -concurrency 64 -e2e-duration 20s -e2e-rate 10000 -e2e-wait 30s -no-ceilings > $3/run.log 2>&1
grep -E "^\| e2e|read row in ClickHouse:|Redis commands per message|CPU redis per message|CPU gateway per message|Redis cmd xreadgroup|Redis cmd xack" $3/e2e.md | tr '\n' ' ' | cut -c1-600; echo
