package gallabox

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/wagate/wagate/message"
)

var benchText = message.Message{
	Sender:    testSender,
	Recipient: "+4915112345678",
	Type:      message.TypeText,
	Content:   []byte(`{"body":"Your room 412 is ready. Reply CHECKIN to get your digital key.","preview_url":false}`),
}

var benchTemplate = message.Message{
	Sender:    testSender,
	Recipient: "+4915112345678",
	Type:      message.TypeTemplate,
	Content: []byte(`{"name":"booking_confirmation","language":{"code":"en_US"},"components":[` +
		`{"type":"body","parameters":[{"type":"text","text":"Ana"},{"type":"text","text":"412"},{"type":"text","text":"21 Nov"}]}]}`),
}

func TestAppendSendBodyAllocs(t *testing.T) {
	buf := make([]byte, 0, 512)
	m := benchText
	n := testing.AllocsPerRun(1000, func() {
		var err error
		buf, err = AppendSendBody(buf[:0], testChannel, &m)
		if err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("AppendSendBody allocates %v times per text body, want 0", n)
	}
}

func BenchmarkAppendSendBodyText(b *testing.B)     { benchmarkAppend(b, &benchText) }
func BenchmarkAppendSendBodyTemplate(b *testing.B) { benchmarkAppend(b, &benchTemplate) }

func benchmarkAppend(b *testing.B, m *message.Message) {
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendSendBody(buf[:0], testChannel, m); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkSendLoopback shows a whole send's cost and allocations against
// a loopback server that answers at once.
func BenchmarkSendLoopback(b *testing.B) {
	fg := startFake(b, true)
	c := newTestClient(b, fg, 0)
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

// FuzzAppendSendBody checks that whatever the content, a body is either
// refused or valid JSON, and that a text's body survives unchanged.
func FuzzAppendSendBody(f *testing.F) {
	f.Add("text", string(benchText.Content))
	f.Add("text", `{"body":"a\"b\\c\u00e9\ud83d\ude00","body":"last"}`)
	f.Add("template", string(benchTemplate.Content))
	f.Add("template", `{"name":"x\"y","components":[{"type":"header","parameters":[{"type":"document","document":{"link":"https://e.com/a b.pdf"}}]},{"type":"button","sub_type":"url","index":"2","parameters":[{"type":"text","text":"\u0000"}]}]}`)
	f.Add("image", `{"link":"x"}`)
	f.Fuzz(func(t *testing.T, typ, content string) {
		m := &message.Message{Recipient: "+4915112345678", Type: message.Type(typ), Content: []byte(content)}
		out, err := AppendSendBody([]byte("keep"), testChannel, m)
		if err != nil {
			if string(out) != "keep" {
				t.Fatalf("refused %q but changed dst to %q", content, out)
			}
			return
		}
		var got struct {
			ChannelID string `json:"channelId"`
			WhatsApp  struct {
				Type string `json:"type"`
				Text struct {
					Body string `json:"body"`
				} `json:"text"`
			} `json:"whatsapp"`
		}
		if err := json.Unmarshal(out[4:], &got); err != nil {
			t.Fatalf("%q gave a body that is not JSON: %s: %v", content, out[4:], err)
		}
		if got.ChannelID != testChannel || got.WhatsApp.Type != typ {
			t.Fatalf("%q: %s", content, out[4:])
		}
		if typ == "text" {
			var in map[string]any
			if err := json.Unmarshal([]byte(content), &in); err != nil {
				t.Fatalf("accepted content encoding/json refuses: %q", content)
			}
			if in["body"] != got.WhatsApp.Text.Body {
				t.Fatalf("%q: body %q became %q", content, in["body"], got.WhatsApp.Text.Body)
			}
		}
	})
}
