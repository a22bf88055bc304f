package sms

import (
	"context"
	"testing"

	"github.com/wagate/wagate/message"
)

var benchText = message.Message{
	Sender:    testSender,
	Recipient: "+4915112345678",
	Type:      message.TypeText,
	Content:   []byte(`{"body":"Your room 412 is ready. Reply CHECKIN to get your digital key.","preview_url":false}`),
}

func TestRequestBodyAllocs(t *testing.T) {
	text := make([]byte, 0, 256)
	form := make([]byte, 0, 512)
	m := benchText
	n := testing.AllocsPerRun(1000, func() {
		var err error
		text, err = AppendText(text[:0], &m)
		if err != nil {
			t.Fatal(err)
		}
		form = appendForm(form[:0], m.Recipient, "+15557770000", text)
	})
	if n != 0 {
		t.Fatalf("building an SMS request body allocates %v times, want 0", n)
	}
	if string(form) != "To=%2B4915112345678&From=%2B15557770000&Body=Your+room+412+is+ready.+Reply+CHECKIN+to+get+your+digital+key." {
		t.Fatalf("form %s", form)
	}
}

func BenchmarkAppendText(b *testing.B) {
	buf := make([]byte, 0, 256)
	m := benchText
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendText(buf[:0], &m)
	}
	b.SetBytes(int64(len(m.Content)))
}

// BenchmarkSendLoopback shows a whole send's cost and allocations (one:
// the provider id) against a loopback server that answers at once.
func BenchmarkSendLoopback(b *testing.B) {
	ft := startFake(b, true)
	c, err := New(Config{BaseURL: "http://" + ft.ln.Addr().String(), AccountSID: testSID, AuthToken: testToken, DefaultFrom: "+15557770000"})
	if err != nil {
		b.Fatal(err)
	}
	m := benchText
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Send(ctx, &m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
