package meta

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

var textMessage = message.Message{
	Sender:    testSender,
	Recipient: "+4915112345678",
	Type:      message.TypeText,
	Content:   []byte(`{"body":"Your room 412 is ready. Reply CHECKIN to get your digital key.","preview_url":false}`),
}

func TestAppendSendBodyAllocs(t *testing.T) {
	buf := make([]byte, 0, 512)
	m := textMessage
	n := testing.AllocsPerRun(1000, func() {
		var err error
		buf, err = AppendSendBody(buf[:0], &m)
		if err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("AppendSendBody allocates %v times per text body, want 0", n)
	}
}

// discard is a Handler that keeps nothing.
type discard struct{ n int }

func (d *discard) HandleStatus(*provider.StatusUpdate) error { d.n++; return nil }
func (d *discard) HandleInbound(*provider.Inbound) error     { d.n++; return nil }

func BenchmarkAppendSendBody(b *testing.B) {
	buf := make([]byte, 0, 512)
	m := textMessage
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendSendBody(buf[:0], &m)
	}
	b.SetBytes(int64(len(buf)))
}

func benchmarkParse(b *testing.B, file string) {
	body := readTestdata(b, file)
	var d discard
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseWebhook(body, &d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseWebhookStatusSent(b *testing.B)   { benchmarkParse(b, "status_sent.json") }
func BenchmarkParseWebhookStatusFailed(b *testing.B) { benchmarkParse(b, "status_failed.json") }
func BenchmarkParseWebhookStatusBatch(b *testing.B)  { benchmarkParse(b, "statuses_batch.json") }
func BenchmarkParseWebhookInboundText(b *testing.B)  { benchmarkParse(b, "inbound_text.json") }

// BenchmarkParseWebhookEncodingJSON is the yardstick: encoding/json into
// structs of the same envelope.
func BenchmarkParseWebhookEncodingJSON(b *testing.B) {
	body := readTestdata(b, "status_sent.json")
	type status struct {
		ID           string `json:"id"`
		Status       string `json:"status"`
		Timestamp    string `json:"timestamp"`
		RecipientID  string `json:"recipient_id"`
		Conversation struct {
			ID string `json:"id"`
		} `json:"conversation"`
		Pricing struct {
			Billable bool   `json:"billable"`
			Category string `json:"category"`
		} `json:"pricing"`
	}
	var env struct {
		Object string `json:"object"`
		Entry  []struct {
			Changes []struct {
				Field string `json:"field"`
				Value struct {
					Metadata struct {
						PhoneNumberID string `json:"phone_number_id"`
					} `json:"metadata"`
					Statuses []status `json:"statuses"`
				} `json:"value"`
			} `json:"changes"`
		} `json:"entry"`
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := json.Unmarshal(body, &env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySignature(b *testing.B) {
	body := readTestdata(b, "status_sent.json")
	secret := []byte("app-secret")
	sig := string(AppendSignature(nil, body, secret))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if !VerifySignature(body, sig, secret) {
			b.Fatal("refused")
		}
	}
}

func BenchmarkParseError(b *testing.B) {
	body := []byte(body130429)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if e := parseError(400, body, nil, now); e.Code != 130429 {
			b.Fatal(e)
		}
	}
}

// BenchmarkSend is one send over loopback to a server that answers at once.
func BenchmarkSend(b *testing.B) {
	fm := newFakeMeta(b)
	c, err := New(Config{
		BaseURL:        "http://" + fm.ln.Addr().String(),
		AccessToken:    "EAAG-test-token",
		PhoneNumberIDs: map[string]string{testSender: testPhoneID},
	})
	if err != nil {
		b.Fatal(err)
	}
	fm.mu.Lock()
	fm.requests = make([]recorded, 0, 1<<20)
	fm.mu.Unlock()
	m := textMessage
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Send(ctx, &m); err != nil {
				b.Error(err)
				return
			}
			fm.mu.Lock()
			fm.requests = fm.requests[:0]
			fm.mu.Unlock()
		}
	})
}

func BenchmarkVerifierVerify(b *testing.B) {
	body := readTestdata(b, "status_sent.json")
	v := NewVerifier([]byte("app-secret"))
	sig := AppendSignature(nil, body, []byte("app-secret"))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !v.Verify(body, sig) {
				b.Error("refused")
				return
			}
		}
	})
}
