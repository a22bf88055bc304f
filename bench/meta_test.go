package bench

import (
	"encoding/json"
	"testing"

	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/meta"

	"github.com/wagate/wagate/message"
)

// TestAppendSignatureKnownHMAC: RFC 4231-style known answer (the HMAC-SHA256
// of the classic pangram keyed "key").
func TestAppendSignatureKnownHMAC(t *testing.T) {
	got := string(AppendSignature(nil, []byte("The quick brown fox jumps over the lazy dog"), []byte("key")))
	want := "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
	if got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	if got := string(AppendSignature([]byte("x"), nil, []byte("key"))); got[:8] != "xsha256=" {
		t.Fatalf("AppendSignature does not append: %s", got)
	}
}

type collected struct{ statuses []provider.StatusUpdate }

func (c *collected) HandleStatus(s *provider.StatusUpdate) error {
	c.statuses = append(c.statuses, *s)
	return nil
}
func (c *collected) HandleInbound(*provider.Inbound) error { return nil }

// TestStatusEnvelopeIsWhatTheGatewayTakes: the gateway's own verifier
// accepts the signature and its parser reads back every status as built.
func TestStatusEnvelopeIsWhatTheGatewayTakes(t *testing.T) {
	b := Senders(16).Business(3)
	if b.PhoneNumberID != "100000000000004" || b.DisplayPhoneNumber != "15550001003" {
		t.Fatalf("sender 3 is %+v, want phone number id 100000000000004 and number 15550001003", b)
	}
	items := []StatusItem{
		{ProviderID: "wamid.AAA1", Status: "delivered", Timestamp: 1763708400, Recipient: "447100000001"},
		{ProviderID: "wamid.AAA2", Status: "read", Timestamp: 1763708401, Recipient: "447100000002"},
		{ProviderID: `wamid."odd\id`, Status: "sent", Timestamp: 1763708402, Recipient: "447100000003"},
	}
	body := AppendStatusEnvelope(nil, b, items)
	if !json.Valid(body) {
		t.Fatalf("envelope is not JSON: %s", body)
	}
	secret := []byte("dev-app-secret")
	if !meta.VerifySignature(body, string(AppendSignature(nil, body, secret)), secret) {
		t.Fatal("the gateway's verifier refuses the signature")
	}
	var c collected
	if err := meta.ParseWebhook(body, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.statuses) != len(items) {
		t.Fatalf("parsed %d statuses, want %d", len(c.statuses), len(items))
	}
	for i, s := range c.statuses {
		it := items[i]
		if s.ProviderMessageID != it.ProviderID || string(s.Status) != it.Status || s.AtMS != it.Timestamp*1000 ||
			s.RecipientID != it.Recipient || s.PhoneNumberID != b.PhoneNumberID {
			t.Errorf("status %d parsed as %+v, want %+v", i, s, it)
		}
	}
}

func TestAppendJSONStringRoundTrips(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "new\nline\ttab\x01", "é 😀", "bad \xff byte"} {
		b := message.AppendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encodes as %s, not a JSON string: %v", s, b, err)
		}
		want := s
		if s == "bad \xff byte" {
			want = "bad \ufffd byte"
		}
		if got != want {
			t.Errorf("%q round-trips as %q", s, got)
		}
	}
}
