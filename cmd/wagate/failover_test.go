package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// TestAMasterKilledMidLoad: a gateway on a Redis Cluster of its own takes
// sends from 16 callers while one master is killed (SIGKILL) and its
// replica takes over. With -redis-replicas 1 every send answered 202 is
// found afterwards; with 0 the test says how many were lost (replication
// is asynchronous: a write acknowledged just before the master died may
// not have reached the replica).
func TestAMasterKilledMidLoad(t *testing.T) {
	for _, c := range []struct {
		name     string
		replicas int
	}{{"WAIT 1", 1}, {"WAIT 0", 0}} {
		t.Run(c.name, func(t *testing.T) {
			cl := redistest.StartCluster(t)
			tg := startTestGateway(t, sim.Delays{Sent: 50 * time.Millisecond, Delivered: 100 * time.Millisecond, Read: 150 * time.Millisecond},
				func(g *gatewayFlags) { g.redisURL, g.prefix, g.shards, g.replicas = cl.URL, "kill", 8, c.replicas })
			ctx := context.Background()
			victim, err := cl.Master(ctx, tg.gw.store.Keys().Events(0))
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu       sync.Mutex
				accepted []string
				refused  atomic.Int64
				seq      atomic.Int64
			)
			stop := time.Now().Add(6 * time.Second)
			var wg sync.WaitGroup
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(stop) {
						n := seq.Add(1)
						code, v := tg.call("POST", "/api/v1/whatsapp/templates/send", fmt.Sprintf(`{"guest_phone":"+1415700%04d","template_name":"event_invitation","language":"en","parameters":{"guest_name":"G","event_name":"Jazz","event_date":"Friday","venue":"the Terrace"}}`, n%10000))
						if code == 202 {
							mu.Lock()
							accepted = append(accepted, v["message_id"].(string))
							mu.Unlock()
						} else {
							refused.Add(1)
						}
					}
				}()
			}
			time.Sleep(2 * time.Second)
			victim.Stop() // kill -9
			wg.Wait()
			if err := cl.WaitOK(30 * time.Second); err != nil {
				t.Fatalf("the cluster did not recover: %v", err)
			}
			lost := 0
			for _, id := range accepted {
				for range 50 {
					if _, err = tg.gw.store.State(ctx, id); err == nil || errors.Is(err, redis.ErrNotFound) {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil {
					lost++
				}
			}
			t.Logf("%s: %d sends answered 202, %d refused (503 while the master was down), %d of the 202s lost",
				c.name, len(accepted), refused.Load(), lost)
			if len(accepted) < 100 {
				t.Fatalf("only %d sends accepted: the load did not run", len(accepted))
			}
			if c.replicas > 0 && lost > 0 {
				t.Fatalf("with -redis-replicas 1, %d acknowledged sends were lost", lost)
			}
		})
	}
}
