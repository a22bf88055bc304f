package message

import (
	"testing"
	"time"
)

func TestIDCarriesShardAndTime(t *testing.T) {
	now := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC).UnixMilli()
	seen := map[string]bool{}
	for _, shard := range []int{0, 7, 15, 99, 999} {
		for i := 0; i < 100; i++ {
			id := NewID(shard, now)
			if seen[id] {
				t.Fatalf("id %s twice", id)
			}
			seen[id] = true
			got, err := ShardOf(id)
			if err != nil || got != shard {
				t.Fatalf("ShardOf(%s) = %d, %v; want %d", id, got, err, shard)
			}
			if IDTimeMS(id) != now {
				t.Fatalf("IDTimeMS(%s) = %d, want %d", id, IDTimeMS(id), now)
			}
		}
	}
	if a, b := NewID(1, now), NewID(1, now+1); a[:14] >= b[:14] {
		t.Fatalf("ids do not sort by time: %s, %s", a, b)
	}
}

func TestShardOfRefusesForeignIDs(t *testing.T) {
	for _, id := range []string{"", "msg_123456", "msg_", "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
		"msg_01m7yb4j2d3c59g3vj0tbha_", "msg_01m7yb4j2d3c59g3vj0tbha_x", "msg_01m7yb4j2d3c59g3vj0tbha_01",
		"msg_01m7yb4j2d3c59g3vj0tbhU_1", "msg_01m7yb4j2d3c59g3vj0tbha_123456", "msg_01m7yb4j2d3c59g3vj0tbha-15"} {
		if _, err := ShardOf(id); err == nil {
			t.Errorf("ShardOf(%q) accepted it", id)
		}
	}
}

func FuzzShardOf(f *testing.F) {
	f.Add(NewID(5, 1700000000000))
	f.Add("msg_123")
	f.Fuzz(func(t *testing.T, id string) {
		shard, err := ShardOf(id)
		if err != nil {
			return
		}
		// An accepted id is one NewID could have made for that shard.
		// Same prefix and time, same shard suffix; only the random part differs.
		if again := NewID(shard, IDTimeMS(id)); len(again) != len(id) || again[:14] != id[:14] || again[27:] != id[27:] {
			t.Fatalf("accepted %q, which NewID would not make (e.g. %q)", id, again)
		}
	})
}

func TestValidE164(t *testing.T) {
	for s, want := range map[string]bool{
		"+1234567890": true, "+14155550123": true, "+50212345678": true, "+1234567": true, "+123456789012345": true,
		"": false, "+": false, "1234567890": false, "+0123456789": false, "+123456": false, "+1234567890123456": false,
		"+1 234 567 890": false, "+1-234-567-890": false, "+1(234)5678900": false, "++1234567890": false, "+12345678９0": false,
	} {
		if ValidE164(s) != want || ValidE164Bytes([]byte(s)) != want {
			t.Errorf("ValidE164(%q) = %v, want %v", s, ValidE164(s), want)
		}
	}
}

func TestShardForSpreadsSenders(t *testing.T) {
	counts := make([]int, 16)
	for i := 0; i < 16000; i++ {
		counts[ShardFor("+1555"+string(rune('0'+i%10))+string(rune('0'+i/10%10))+string(rune('0'+i/100%10))+string(rune('0'+i/1000%10))+"000", 16)]++
	}
	for sh, n := range counts {
		if n < 500 || n > 1500 {
			t.Fatalf("shard %d got %d of 16000 senders: %v", sh, n, counts)
		}
	}
	if ShardFor("+15550001000", 16) != ShardFor("+15550001000", 16) || ShardFor("+1", 1) != 0 {
		t.Fatal("ShardFor is not a function of the sender")
	}
}

func TestRankOrdersTheLifeOfAMessage(t *testing.T) {
	life := []Status{StatusQueued, StatusSending, StatusSent, StatusDelivered, StatusRead}
	for i := 1; i < len(life); i++ {
		if Rank(life[i]) <= Rank(life[i-1]) {
			t.Fatalf("%s does not outrank %s", life[i], life[i-1])
		}
	}
	if !(Rank(StatusFailed) > Rank(StatusSent) && Rank(StatusFailed) < Rank(StatusDelivered)) {
		t.Fatal("failed must override sent but not delivered")
	}
	if Known("deleted") || !Known(StatusRead) || !Terminal(StatusFailed) || Terminal(StatusQueued) {
		t.Fatal("Known / Terminal")
	}
}

func TestBatchIDs(t *testing.T) {
	b := NewBatchID(7, 1700000000000)
	if sh, err := BatchShardOf(b); err != nil || sh != 7 {
		t.Fatalf("%s: %d %v", b, sh, err)
	}
	if _, err := ShardOf(b); err == nil {
		t.Fatal("a batch id passed for a message id")
	}
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := BatchMessageID(b, i)
		if sh, err := ShardOf(id); err != nil || sh != 7 || seen[id] {
			t.Fatalf("message %d of the batch: %s %d %v (seen %v)", i, id, sh, err, seen[id])
		}
		seen[id] = true
		if bb, k, err := BatchOf(id); err != nil || bb != b || k != i {
			t.Fatalf("BatchOf(%s) = %s %d %v, want %s %d", id, bb, k, err, b, i)
		}
	}
	if _, _, err := BatchOf(b); err == nil {
		t.Fatal("BatchOf took a batch id")
	}
	if BatchMessageID(b, 3) != BatchMessageID(b, 3) || BatchMessageID(b, 3) == BatchMessageID(NewBatchID(7, 1700000000000), 3) {
		t.Fatal("batch message ids must be a function of the batch and the index")
	}
}
