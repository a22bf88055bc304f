package redis

import (
	"context"
	"strings"
	"testing"

	"github.com/wagate/wagate/store/redis/redistest"
)

// TestClusterKeysSpreadOverMasters: on a Cluster the shards' hash tags
// fall in even shares of the slot space, so three masters that split the
// slots evenly take 16 shards 5, 5 and 6 (the plain tags give 8, 4, 4),
// and keySlot is Redis's own CLUSTER KEYSLOT.
func TestClusterKeysSpreadOverMasters(t *testing.T) {
	cc := redistest.ClusterClient(t)
	ctx := context.Background()
	for _, shards := range []int{3, 8, 16, 32, 64} {
		k := NewClusterKeys("wa", shards, 4)
		per := make([]int, 3)
		for sh := range shards {
			key := k.Events(sh)
			slot, err := cc.ClusterKeySlot(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			tag := key[strings.IndexByte(key, '{')+1 : strings.IndexByte(key, '}')]
			if int(slot) != keySlot(tag) {
				t.Fatalf("%s: keySlot %d, Redis says %d", key, keySlot(tag), slot)
			}
			per[int(slot)*3/clusterSlots]++
		}
		lo, hi := shards/3, (shards+2)/3
		for m, n := range per {
			if n < lo || n > hi {
				t.Errorf("%d shards: master %d (of 3 even ones) takes %d, want %d to %d (all: %v)", shards, m, n, lo, hi, per)
			}
		}
	}
	// One server keeps the plain tags.
	if k := NewKeys("wa", 16, 4); k.Events(7) != "wa:{s07}:events" {
		t.Fatalf("NewKeys: %s", k.Events(7))
	}
}
