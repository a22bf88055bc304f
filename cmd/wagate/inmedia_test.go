package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/netguard"
	"github.com/wagate/wagate/provider/sim"
)

// hookSink is a tenant's webhook endpoint keeping the events it gets.
type hookSink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []map[string]any
}

func newHookSink(t *testing.T) *hookSink {
	k := &hookSink{}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		b, _ := io.ReadAll(r.Body)
		if json.Unmarshal(b, &ev) == nil {
			k.mu.Lock()
			k.events = append(k.events, ev)
			k.mu.Unlock()
		}
	}))
	t.Cleanup(k.srv.Close)
	return k
}

// event waits for the event of kind about message wamid and returns its data.
func (k *hookSink) event(t *testing.T, kind, wamid string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		k.mu.Lock()
		for _, ev := range k.events {
			if d, _ := ev["data"].(map[string]any); ev["event"] == kind && d["message_id"] == wamid {
				k.mu.Unlock()
				return d
			}
		}
		k.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s webhook for %s", kind, wamid)
	return nil
}

// startMediaGateway is the test gateway with the tenant's webhook (on
// loopback, which the gateway is told to allow) subscribed to the guests'
// messages.
func startMediaGateway(t *testing.T) (*testGateway, *hookSink) {
	t.Helper()
	tg := startTestGateway(t, sim.Delays{}, func(g *gatewayFlags) { g.webhookAllow = strings.Join(netguard.Loopback(), ",") })
	k := newHookSink(t)
	req, _ := http.NewRequest("POST", tg.api+"/api/v1/whatsapp/webhooks/configure", strings.NewReader(
		`{"webhook_url":"`+k.srv.URL+`/hooks","events":["inbound_message","media_received"]}`))
	req.Header.Set("Authorization", "Bearer "+devAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("configure the webhook: %d", resp.StatusCode)
	}
	return tg, k
}

// historyMessage waits until message wamid of guest's conversation is
// past pending (or the timeout) and returns it as the API shows it.
func (tg *testGateway) historyMessage(guest, wamid string, timeout time.Duration) map[string]any {
	tg.t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]any
	for first := true; first || time.Now().Before(deadline); first = false {
		_, list := tg.call("GET", "/api/v1/whatsapp/conversations?guest_phone="+url.QueryEscape(guest), "")
		if cs, _ := list["conversations"].([]any); len(cs) > 0 {
			id := cs[0].(map[string]any)["conversation_id"].(string)
			_, conv := tg.call("GET", "/api/v1/whatsapp/conversations/"+id, "")
			msgs, _ := conv["messages"].([]any)
			for _, m := range msgs {
				if m := m.(map[string]any); m["message_id"] == wamid {
					last = m
				}
			}
		}
		if last != nil && last["media_status"] != "pending" {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	if last == nil {
		tg.t.Fatalf("message %s is not in the history", wamid)
	}
	return last
}

// fetch GETs a media URL with no token, as a tenant's system would.
func fetch(t *testing.T, u string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func guestPhoto(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for x := range 40 {
		for y := range 30 {
			img.Set(x, y, color.RGBA{uint8(6 * x), uint8(8 * y), 90, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestGuestMediaEndToEnd: through the simulator playing Meta, a guest's
// photo, document and contact card reach the history and the tenant's
// webhook, the media as URLs that serve the very bytes.
func TestGuestMediaEndToEnd(t *testing.T) {
	tg, hooks := startMediaGateway(t)
	const guest = "+14155550171"
	photo := guestPhoto(t)
	pdf := []byte("%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
	card := json.RawMessage(`[{"name":{"formatted_name":"Kerry Fitzgerald"},"phones":[{"phone":"+16505551234","type":"CELL","wa_id":"16505551234"}]}]`)
	tests := []struct {
		name string
		msg  sim.InboundMessage
		// wantType and wantName are the bytes' Content-Type and the file
		// name their URL serves them with; nil data: not media.
		data               []byte
		wantType, wantName string
	}{
		{name: "photo", msg: sim.InboundMessage{Type: "image", Text: "The stain on the carpet", Data: photo},
			data: photo, wantType: "image/jpeg", wantName: "image.jpg"},
		{name: "document", msg: sim.InboundMessage{Type: "document", Filename: "Booking RB123456.pdf", MIME: "application/pdf", Data: pdf},
			data: pdf, wantType: "application/pdf", wantName: "Booking RB123456.pdf"},
		{name: "contact card", msg: sim.InboundMessage{Type: "contacts", Contacts: card}},
	}
	for _, tc := range tests {
		wamid, _, err := tg.sim.InboundMessage(devPhoneID, guest, "Ana", tc.msg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		m := tg.historyMessage(guest, wamid, 30*time.Second)
		in := hooks.event(t, "inbound_message", wamid)
		if tc.data == nil {
			want, _ := json.Marshal(card)
			if got, _ := json.Marshal(m["contacts"]); !jsonEqual(got, want) || m["preview"] != "[contacts] Kerry Fitzgerald" {
				t.Fatalf("%s: history %v", tc.name, m)
			}
			if got, _ := json.Marshal(in["contacts"]); !jsonEqual(got, want) {
				t.Fatalf("%s: inbound_message %v", tc.name, in)
			}
			continue
		}
		med, _ := m["media"].(map[string]any)
		if m["media_status"] != "ready" || med["mime_type"] != tc.wantType || med["size"] != float64(len(tc.data)) {
			t.Fatalf("%s: history %v", tc.name, m)
		}
		if tc.msg.Filename != "" && med["filename"] != tc.msg.Filename || tc.msg.Text != "" && med["caption"] != tc.msg.Text {
			t.Fatalf("%s: file name or caption lost: %v", tc.name, m)
		}
		code, hdr, body := fetch(t, m["media_url"].(string))
		if code != 200 || !bytes.Equal(body, tc.data) || hdr.Get("Content-Type") != tc.wantType ||
			!strings.Contains(hdr.Get("Content-Disposition"), `filename="`+tc.wantName+`"`) {
			t.Fatalf("%s: media_url %d %v, %d bytes", tc.name, code, hdr, len(body))
		}
		// inbound_message came at once, pending; media_received when the
		// download ended, with a URL of its own.
		if in["media_status"] != "pending" || in["media_url"] != nil {
			t.Fatalf("%s: inbound_message %v", tc.name, in)
		}
		got := hooks.event(t, "media_received", wamid)
		if got["media_status"] != "ready" || got["conversation_id"] == nil || got["media"].(map[string]any)["id"] != med["id"] {
			t.Fatalf("%s: media_received %v", tc.name, got)
		}
		if code, _, body := fetch(t, got["media_url"].(string)); code != 200 || !bytes.Equal(body, tc.data) {
			t.Fatalf("%s: media_received's media_url: %d", tc.name, code)
		}
	}
}

// TestGuestMediaOutlivesMetaBeingDown: Meta answering 500 for media makes
// the download wait and try again, not fail; a file over WhatsApp's limit
// fails at once, with its reason.
func TestGuestMediaOutlivesMetaBeingDown(t *testing.T) {
	tg, hooks := startMediaGateway(t)
	const guest = "+14155550172"
	photo := guestPhoto(t)
	tg.sim.SetMediaOutage(time.Now().Add(time.Hour))
	wamid, _, err := tg.sim.InboundMessage(devPhoneID, guest, "Ana", sim.InboundMessage{Type: "image", Data: photo})
	if err != nil {
		t.Fatal(err)
	}
	// Meta is down until the download has met it; meanwhile the message is
	// in the history, pending.
	for deadline := time.Now().Add(30 * time.Second); tg.sim.MediaDownloads().Outage == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the download never reached the simulator")
		}
	}
	if m := tg.historyMessage(guest, wamid, 0); m["media_status"] != "pending" || m["media_url"] != nil {
		t.Fatalf("while Meta is down: %v", m)
	}
	tg.sim.SetMediaOutage(time.Time{})
	m := tg.historyMessage(guest, wamid, 45*time.Second)
	if m["media_status"] != "ready" || tg.sim.MediaDownloads().Outage == 0 {
		t.Fatalf("after the outage: %v, simulator %+v", m, tg.sim.MediaDownloads())
	}
	if code, _, body := fetch(t, m["media_url"].(string)); code != 200 || !bytes.Equal(body, photo) {
		t.Fatalf("media_url: %d", code)
	}

	big := append(append([]byte(nil), photo...), make([]byte, 5<<20)...)
	wamid, _, err = tg.sim.InboundMessage(devPhoneID, guest, "Ana", sim.InboundMessage{Type: "image", Data: big})
	if err != nil {
		t.Fatal(err)
	}
	m = tg.historyMessage(guest, wamid, 30*time.Second)
	if m["media_status"] != "failed" || m["media_failure_code"] != "too_large" || m["media_url"] != nil {
		t.Fatalf("over the limit: %v", m)
	}
	if got := hooks.event(t, "media_received", wamid); got["media_status"] != "failed" || got["media_failure_code"] != "too_large" {
		t.Fatalf("media_received %v", got)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
