package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/store/redis/redistest"
)

// TestAcknowledgedWritesWaitForTheReplica: with Replicas 1 an accepted
// message, a batch and a provider's webhook are answered once the replica
// has them; with the replica stopped they are answered ErrNotReplicated
// (an ErrUnconfirmed: retry with the same key) within the timeout, and
// with Replicas 0 they do not wait. What the dispatcher writes never waits.
func TestAcknowledgedWritesWaitForTheReplica(t *testing.T) {
	master := redistest.StartServer(t)
	host, port, _ := strings.Cut(master.Addr, ":")
	replica := redistest.StartServer(t, "--replicaof", host, port)
	ctx := context.Background()
	rc := goredis.NewClient(&goredis.Options{Addr: replica.Addr})
	defer rc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, _ := rc.Info(ctx, "replication").Result()
		if strings.Contains(info, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica did not link: %s", info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mc := goredis.NewClient(&goredis.Options{Addr: master.Addr})
	defer mc.Close()
	store := func(replicas int) *Store {
		s, err := New(ctx, mc, Config{Shards: 4, InboundParts: 2, Replicas: replicas, ReplicaTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	waits, free := store(1), store(0)
	n := 0
	write := func(s *Store) []error {
		n++
		a := textArgs(fmt.Sprintf("+141555%05d", n), "hello")
		_, err1 := s.Enqueue(ctx, a)
		b := testBatch(s, 3)
		_, _, err2 := s.EnqueueBatch(ctx, b)
		err3 := s.AppendInbound(ctx, "meta", []byte(`{"object":"whatsapp_business_account"}`))
		return []error{err1, err2, err3}
	}
	for _, c := range []struct {
		name   string
		s      *Store
		frozen bool
		want   error
	}{
		{"waiting, the replica up", waits, false, nil},
		{"not waiting, the replica up", free, false, nil},
		{"waiting, the replica stopped", waits, true, ErrNotReplicated},
		{"not waiting, the replica stopped", free, true, nil},
		{"waiting, the replica back", waits, false, nil},
	} {
		if c.frozen {
			replica.Freeze()
		} else {
			replica.Thaw()
		}
		start := time.Now()
		for i, err := range write(c.s) {
			if c.want == nil && err != nil || c.want != nil && (!errors.Is(err, c.want) || !errors.Is(err, ErrUnconfirmed)) {
				t.Fatalf("%s: write %d: %v, want %v", c.name, i, err, c.want)
			}
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("%s: the writes took %v", c.name, took)
		}
	}
}

// TestAcknowledgedWritesWaitOnACluster: on a Redis Cluster each master's
// share of a flush waits for its own replica.
func TestAcknowledgedWritesWaitOnACluster(t *testing.T) {
	cc := redistest.ClusterClient(t)
	ctx := context.Background()
	s, err := New(ctx, cc, Config{Prefix: redistest.ClusterPrefix(t, cc), Shards: 8, InboundParts: 2, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for i := range 20 {
		a := textArgs(fmt.Sprintf("+141555%05d", i), "hello")
		a.Sender = fmt.Sprintf("+1555000%04d", i) // over the shards, so over the masters
		if res, err := s.Enqueue(ctx, a); err != nil || res.Outcome != Queued {
			t.Fatalf("enqueue %d: %+v %v", i, res, err)
		}
	}
	if _, _, err := s.EnqueueBatch(ctx, testBatch(s, 5)); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendInbound(ctx, "meta", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
}
