#!/bin/bash
/tmp/wabench -bare 127.0.0.1:18070 > /tmp/bare.log 2>&1 &
B=$!; sleep 1
wrk -t2 -c64 -d3s -s /tmp/send.lua http://127.0.0.1:18070/api/v1/whatsapp/messages/send >/dev/null
wrk -t2 -c64 -d10s --latency -s /tmp/send.lua http://127.0.0.1:18070/api/v1/whatsapp/messages/send > /tmp/bare-out.txt
echo "bare $(date +%H:%M:%S) rps=$(awk '/Requests\/sec/{print $2}' /tmp/bare-out.txt) p99=$(awk '$1=="99%"{print $2}' /tmp/bare-out.txt)"
kill $B
