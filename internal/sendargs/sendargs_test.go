package sendargs

import (
	"testing"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

func TestAppendText(t *testing.T) {
	for _, tc := range []struct {
		body    string
		preview bool
		want    string
	}{
		{"Hello", false, `{"body":"Hello"}`},
		{"See https://example.com", true, `{"body":"See https://example.com","preview_url":true}`},
		{"a \"quote\"\nand a line", false, `{"body":"a \"quote\"\nand a line"}`},
	} {
		if got := string(AppendText([]byte("x"), tc.body, tc.preview)); got != "x"+tc.want {
			t.Errorf("%q: %s, want x%s", tc.body, got, tc.want)
		}
	}
}

// TestFingerprintTellsSendsApart: every field that makes a send another
// one changes the fingerprint; the same send gives the same.
func TestFingerprintTellsSendsApart(t *testing.T) {
	base := func() *redis.EnqueueArgs {
		return &redis.EnqueueArgs{TenantID: "t", Sender: "+15550001000", Recipient: "+14155550100", Type: message.TypeText,
			Content: []byte(`{"body":"hi"}`), Lane: message.LaneTx, IdempotencyKey: "k"}
	}
	want := Fingerprint(base())
	if Fingerprint(base()) != want {
		t.Fatal("the same send, two fingerprints")
	}
	for name, change := range map[string]func(a *redis.EnqueueArgs){
		"sender":    func(a *redis.EnqueueArgs) { a.Sender = "+15550001001" },
		"recipient": func(a *redis.EnqueueArgs) { a.Recipient = "+14155550101" },
		"type":      func(a *redis.EnqueueArgs) { a.Type = message.TypeTemplate },
		"content":   func(a *redis.EnqueueArgs) { a.Content = []byte(`{"body":"ho"}`) },
		"lane":      func(a *redis.EnqueueArgs) { a.Lane = message.LaneBulk },
		"campaign":  func(a *redis.EnqueueArgs) { a.Campaign = "spring" },
		"fallback":  func(a *redis.EnqueueArgs) { a.FallbackText = "hi by SMS" },
		"fields run together": func(a *redis.EnqueueArgs) {
			a.Sender, a.Recipient = "+15550001000+1415", "5550100"
		},
	} {
		a := base()
		change(a)
		if Fingerprint(a) == want {
			t.Errorf("%s: the same fingerprint", name)
		}
	}
}
