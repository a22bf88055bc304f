package chatapp

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/wagate/wagate/message"
)

var benchText = message.Message{
	Sender:    "+8613800000000",
	Recipient: "+4915112345678",
	Type:      message.TypeText,
	Content:   []byte(`{"body":"Your room 412 is ready. Reply CHECKIN to get your digital key.","preview_url":false}`),
}

func newBenchClient(tb testing.TB) *Client {
	c, err := New(Config{Endpoint: "http://127.0.0.1:1", AccessKeyID: testKeyID, AccessKeySecret: testSecret})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestBuildAllocs: building and signing a text request reuses the pooled
// request's buffers and HMAC.
func TestBuildAllocs(t *testing.T) {
	c := newBenchClient(t)
	r := c.reqs.New().(*request)
	m := benchText
	n := testing.AllocsPerRun(1000, func() {
		if err := c.build(r, &m); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("building a signed text request allocates %v times, want 0", n)
	}
}

func BenchmarkBuildText(b *testing.B) {
	c := newBenchClient(b)
	r := c.reqs.New().(*request)
	m := benchText
	b.ReportAllocs()
	for b.Loop() {
		if err := c.build(r, &m); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(r.body)))
}

// BenchmarkSendLoopback shows a whole send's cost and allocations against
// a loopback server that answers at once.
func BenchmarkSendLoopback(b *testing.B) {
	fc := startFake(b, true)
	c := newTestClient(b, fc, Config{})
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

// FuzzBuild checks that whatever the content, a request is either refused
// or a form whose signature verifies and whose JSON parameters are JSON;
// a text keeps its body.
func FuzzBuild(f *testing.F) {
	f.Add("text", string(benchText.Content))
	f.Add("text", `{"body":"a\"b\\c %+*~ \u00e9\ud83d\ude00"}`)
	f.Add("document", `{"link":"https://e.com/a%20b.pdf?x=1","caption":"\u0000"}`)
	f.Add("location", `{"latitude":-1.5e3,"longitude":"2","name":"n"}`)
	f.Add("template", `{"name":"t","language":{"code":"en"},"components":[{"type":"body","parameters":[{"type":"text","parameter_name":"a\"b","text":"x"}]},{"type":"button","sub_type":"quick_reply","parameters":[{"type":"payload","payload":"p"}]}]}`)
	c := newBenchClient(f)
	f.Fuzz(func(t *testing.T, typ, content string) {
		r := c.reqs.New().(*request)
		m := &message.Message{Sender: "+8613800000000", Recipient: "+4915112345678", Type: message.Type(typ), Content: []byte(content)}
		if err := c.build(r, m); err != nil {
			return
		}
		form, err := url.ParseQuery(string(r.body))
		if err != nil {
			t.Fatalf("%q: body is not a form: %v", content, err)
		}
		params := map[string]string{}
		for k, v := range form {
			params[k] = v[0]
		}
		sig := params["Signature"]
		delete(params, "Signature")
		if _, want := refSign("POST", params, testSecret); sig != want {
			t.Fatalf("%q: signature %s, reference %s", content, sig, want)
		}
		for _, k := range []string{"Content", "TemplateParams", "Payload"} {
			if v, ok := params[k]; ok && !json.Valid([]byte(v)) {
				t.Fatalf("%q: %s is not JSON: %s", content, k, v)
			}
		}
		if typ == "text" {
			var in, out map[string]any
			_ = json.Unmarshal([]byte(content), &in)
			if err := json.Unmarshal([]byte(params["Content"]), &out); err != nil || in["body"] != out["text"] {
				t.Fatalf("%q: body %q became %q", content, in["body"], out["text"])
			}
		}
	})
}
