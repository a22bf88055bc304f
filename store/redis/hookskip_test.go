package redis

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/store/redis/redistest"
)

// The hooks group skips the events while no tenant has a webhook, and reads
// every event from the moment one sets one; a deployment written by an
// older wagate (webhook documents, no index) gets its index built first.
func TestHookEventsSkippedWhileNoTenantHasAWebhook(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (goredis.UniversalClient, string)
	}{
		{"one server", func(t *testing.T) (goredis.UniversalClient, string) {
			rdb := redistest.Client(t)
			return rdb, redistest.Prefix(t, rdb)
		}},
		{"cluster", func(t *testing.T) (goredis.UniversalClient, string) {
			cc := redistest.ClusterClient(t)
			return cc, redistest.ClusterPrefix(t, cc)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rdb, prefix := tc.open(t)
			s, err := New(ctx, rdb, Config{Prefix: prefix, Shards: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			// An older wagate stored a tenant's webhook, and no index.
			if err := rdb.Set(ctx, s.keys.Tenant("legacy")+DocWebhook, `{"url":"https://example.com/h"}`, 0).Err(); err != nil {
				t.Fatal(err)
			}
			enqueue := func() {
				t.Helper()
				if _, err := s.Enqueue(ctx, textArgs("+14155550100", "hello")); err != nil {
					t.Fatal(err)
				}
			}
			skip := func(want bool) {
				t.Helper()
				got, err := s.SkipHookEvents(ctx, true, 1000)
				if err != nil || got != want {
					t.Fatalf("SkipHookEvents = %v, %v; want %v", got, err, want)
				}
			}
			hooks := s.HookEventReader("h1")
			hooks.Poll = 0 // every read reads
			read := func(r *EventReader, want int) {
				t.Helper()
				evs, err := r.Read(ctx, nil, 100, 0)
				if err != nil || len(evs) != want {
					t.Fatalf("%s read %d events (%v), want %d", r.group, len(evs), err, want)
				}
				if err := r.Ack(ctx, evs); err != nil {
					t.Fatal(err)
				}
			}

			enqueue()
			skip(false) // the index is built, and names the legacy tenant
			for sh := 0; sh < 4; sh++ {
				if ok, _ := rdb.SMIsMember(ctx, s.keys.HookTenants(sh), "", "legacy").Result(); len(ok) != 2 || !ok[0] || !ok[1] {
					t.Fatalf("shard %d's index: %v, want built and naming legacy", sh, ok)
				}
			}
			read(hooks, 1)

			// A dead instance held an event when the last webhook went.
			enqueue()
			dead := s.HookEventReader("dead")
			if evs, err := dead.Read(ctx, nil, 100, 0); err != nil || len(evs) != 1 {
				t.Fatalf("dead reader: %d events, %v", len(evs), err)
			}
			if err := s.PutTenantDoc(ctx, "legacy", DocWebhook, nil); err != nil {
				t.Fatal(err)
			}
			enqueue()
			skip(true)
			read(hooks, 0) // skipped, not read
			for sh := 0; sh < 4; sh++ {
				if n, err := rdb.XPending(ctx, s.keys.Events(sh), GroupHooks).Result(); err != nil || n.Count != 0 {
					t.Fatalf("shard %d: %+v pending after the skip (%v)", sh, n, err)
				}
			}
			read(s.EventReader("loader"), 3) // the loader's are its own

			// Looking only moves nothing: the next move does.
			enqueue()
			if got, err := s.SkipHookEvents(ctx, false, 0); err != nil || !got {
				t.Fatalf("look: %v, %v", got, err)
			}
			skip(true)
			read(hooks, 0)

			// A tenant sets a webhook: every event from then on is read.
			if err := s.PutTenantDoc(ctx, "hotel", DocWebhook, []byte(`{"url":"https://example.com/h"}`)); err != nil {
				t.Fatal(err)
			}
			skip(false)
			enqueue()
			skip(false)
			read(hooks, 1)
		})
	}
}
