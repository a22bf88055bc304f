// Under the race detector sync.Pool drops a share of what is put back, so
// the pooled parser's allocations cannot be counted there.

//go:build !race

package meta

import (
	"strconv"
	"testing"
)

// envelope50 is a status webhook of 50 statuses (25 messages delivered and
// read), as the simulator's -sim-webhook-batch 50 and wabench's batched
// webhooks post them.
func envelope50() []byte {
	b := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"200000000000001","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001000","phone_number_id":"100000000000001"},"statuses":[`)
	for i := range 50 {
		if i > 0 {
			b = append(b, ',')
		}
		id := "wamid.HBgLMTU1NTAwMDEwMDAVAgARGBI5QTNDQTVC" + strconv.Itoa(1000+i/2)
		if i%2 == 0 {
			b = append(b, `{"id":"`+id+`","status":"delivered","timestamp":"1763708400","recipient_id":"447100000`+strconv.Itoa(100+i/2)+
				`","conversation":{"id":"c1","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}}`...)
		} else {
			b = append(b, `{"id":"`+id+`","status":"read","timestamp":"1763708401","recipient_id":"447100000`+strconv.Itoa(100+i/2)+`"}`...)
		}
	}
	return append(b, `]},"field":"messages"}]}]}`...)
}

// BenchmarkParseWebhookEnvelope50 is the inbound processor's parse of a
// batched delivery; ns/op and allocs/op are per envelope (÷ 50 per status).
func BenchmarkParseWebhookEnvelope50(b *testing.B) {
	body := envelope50()
	var d discard
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseWebhook(body, &d); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParseWebhookAllocatesOnlyWhatItHandsOut: a pooled parser reuses its
// slices, so what a status costs is the strings the handler may keep (the
// provider id, the recipient and, when Meta sends them, the conversation
// id; the status and pricing category are constants). Anything more per
// status is a regression. Zero is not the goal: the handler keeps them. The
// envelope's phone number id is one more string, shared by its statuses.
func TestParseWebhookAllocatesOnlyWhatItHandsOut(t *testing.T) {
	body := envelope50()
	var d discard
	ParseWebhook(body, &d) // warm the pool
	n := testing.AllocsPerRun(200, func() {
		if err := ParseWebhook(body, &d); err != nil {
			t.Fatal(err)
		}
	})
	// 25 delivered statuses × 3 strings, 25 read statuses × 2 strings, and
	// the phone number id.
	if max := 25.0*3 + 25*2 + 1; n > max {
		t.Errorf("parsing 50 statuses allocates %v times, want at most %v (the strings handed out)", n, max)
	}
}

// TestVerifierDoesNotAllocate: checking a webhook's signature reuses the
// Verifier's HMAC states (built without -race, which empties sync.Pools).
func TestVerifierDoesNotAllocate(t *testing.T) {
	body := readTestdata(t, "status_sent.json")
	v := NewVerifier([]byte("app-secret"))
	sig := AppendSignature(nil, body, []byte("app-secret"))
	v.Verify(body, sig) // the pool's first HMAC
	if n := testing.AllocsPerRun(100, func() { v.Verify(body, sig) }); n != 0 {
		t.Fatalf("%v allocations per webhook", n)
	}
}
