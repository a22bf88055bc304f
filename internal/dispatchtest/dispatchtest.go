// Package dispatchtest does to a queued message what the dispatcher does,
// for the tests of what comes after a send (statuses, conversations) in
// the packages that cannot run a dispatcher.
package dispatchtest

import (
	"context"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// Begin takes message id from its queue as the dispatcher would: under the
// shard's lease, read, begun.
func Begin(t testing.TB, store *redis.Store, id string) *redis.Job {
	t.Helper()
	ctx := context.Background()
	st, err := store.State(ctx, id)
	if err != nil {
		t.Fatalf("state of %s: %v", id, err)
	}
	shard, _ := message.ShardOf(id)
	l, ok, err := store.TakeLease(ctx, "dispatch", shard, "test", time.Minute)
	if err != nil {
		t.Fatalf("lease of shard %d: %v", shard, err)
	}
	if !ok {
		v := store.Client().Get(ctx, store.Keys().Lease(shard, "dispatch")).Val()
		l = &redis.Lease{Shard: shard, Role: "dispatch", Value: v}
	}
	q := store.Keys().SenderQueue(shard, st.Sender, st.Lane, st.Campaign)
	es, err := store.ReadEntries(ctx, "test", []string{q}, 1000, nil)
	if err != nil {
		t.Fatalf("read %s: %v", q, err)
	}
	for i := range es {
		e := &es[i]
		j := (*redis.Job)(nil)
		if e.MessageID == id {
			j = redis.NewJob(l, shard, st.Sender, e)
		}
		// An entry of a call's many sends: the job of one of them (its
		// entry stays pending, as the dispatcher's until all are settled).
		for k := range e.Sends {
			if ps := &e.Sends[k]; ps.ID == id && len(e.Sends) > 1 {
				j = &redis.Job{Lease: l, Shard: shard, Stream: e.Stream,
					Msg: message.Message{ID: id, Sender: st.Sender, Recipient: ps.Recipient}, Pending: ps}
			}
		}
		if j != nil {
			if b, err := store.Begin(ctx, j); err != nil || b != redis.BeginGo {
				t.Fatalf("begin %s: %v %v", id, b, err)
			}
			return j
		}
	}
	t.Fatalf("message %s not in its queue", id)
	return nil
}

// MarkSent begins message id and records it as sent by provider name with
// the provider's id pid.
func MarkSent(t testing.TB, store *redis.Store, id, name, pid string) {
	t.Helper()
	j := Begin(t, store, id)
	err := store.Finish(context.Background(), j, &redis.Result{Status: message.StatusSent, AtMS: time.Now().UnixMilli(),
		Provider: name, ProviderMessageID: pid}, redis.FinishOptions{})
	if err != nil {
		t.Fatalf("finish %s: %v", id, err)
	}
}
