package ingest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// TestAFrozenRedisCostsARequestItsBoundNotTheFreeze: with Redis frozen
// (SIGSTOP: connections open, nothing answered), from the process's very
// first request on, every call answers 503 SERVICE_UNAVAILABLE within the
// request's bound (EnqueueTimeout), never 202 with rules it could not
// read; once Redis is back the same sends are accepted.
func TestAFrozenRedisCostsARequestItsBoundNotTheFreeze(t *testing.T) {
	srvRedis := redistest.StartServer(t)
	ctx := context.Background()
	rdb, err := redis.Open(ctx, srvRedis.URL)
	must(t, err)
	t.Cleanup(func() { rdb.Close() })
	store, err := redis.New(ctx, rdb, redis.Config{Prefix: "frozen", Shards: 2})
	must(t, err)
	t.Cleanup(store.Close)
	ts := NewTokens()
	hotel := &Tenant{ID: "grand-plaza", Senders: []string{"+15550001000"}}
	must(t, ts.Add(staffToken, Principal{Tenant: hotel, Role: RoleStaff}))
	reg := prometheus.NewRegistry()
	const bound = time.Second
	srv, err := NewServer(Config{Addr: "127.0.0.1:0", EnqueueTimeout: bound}, store, ts, reg, reg, slog.New(slog.DiscardHandler))
	must(t, err)
	must(t, srv.Start())
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	h := &harness{t: t, store: store, srv: srv, base: "http://" + srv.Addr(), reg: reg}

	text := `{"guest_phone":"+14155550100","message_type":"text","content":{"text":"Your room is ready"}}`
	batch := `{"messages":[{"guest_phone":"+14155550101","message_type":"text","content":{"text":"Your room is ready"}}]}`
	srvRedis.Freeze()
	thawed := false
	defer func() {
		if !thawed {
			srvRedis.Thaw()
		}
	}()
	tests := []struct{ name, method, path, body string }{
		{"a send, the tenant's settings never read", "POST", sendPath, text},
		{"a batch", "POST", "/api/v1/whatsapp/messages/batch-send", batch},
		{"the conversations", "GET", "/api/v1/whatsapp/conversations", ""},
	}
	for _, tt := range tests {
		start := time.Now()
		code, v, _ := h.do(tt.method, tt.path, staffToken, tt.body)
		took := time.Since(start)
		if code != 503 || errCode(t, v) != "SERVICE_UNAVAILABLE" {
			t.Errorf("%s with Redis frozen: %d %v, want 503 SERVICE_UNAVAILABLE", tt.name, code, v)
		}
		if took > bound+time.Second {
			t.Errorf("%s with Redis frozen took %v, want at most about %v", tt.name, took, bound)
		}
	}
	srvRedis.Thaw()
	thawed = true
	// The tenant's rules are read now: the guest never wrote, so the
	// default window rule refuses it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, v, _ := h.do("POST", sendPath, staffToken, text)
		if code == 403 && errCode(t, v) == "MESSAGE_WINDOW_EXPIRED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the thaw a send answers %d %v", code, v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
