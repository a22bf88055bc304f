package ingest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	data map[string]any
}

// openStream opens the inbox's event stream for token and sends its
// events to the channel until the test ends.
func (h *harness) openStream(token string) <-chan sseEvent {
	h.t.Helper()
	return h.openStreamWith(func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) })
}

// openStreamWith is openStream with the credentials auth sets.
func (h *harness) openStreamWith(auth func(*http.Request)) <-chan sseEvent {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	out := make(chan sseEvent, 100)
	ready := make(chan struct{})
	go func() {
		defer close(out)
		once := false
		lastID := ""
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, "GET", h.base+"/api/v1/whatsapp/inbox/stream", nil)
			auth(req)
			if lastID != "" {
				req.Header.Set("Last-Event-ID", lastID) // as EventSource does
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				out <- sseEvent{name: "http-" + resp.Status, data: map[string]any{"body": string(b)}}
				return
			}
			sc := bufio.NewScanner(resp.Body)
			var name string
			for sc.Scan() {
				line := sc.Text()
				switch {
				case strings.HasPrefix(line, "id: "):
					lastID = strings.TrimPrefix(line, "id: ")
				case strings.HasPrefix(line, "event: "):
					name = strings.TrimPrefix(line, "event: ")
				case strings.HasPrefix(line, "data: "):
					var d map[string]any
					json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d)
					if name == "ready" && !once {
						once = true
						close(ready)
					}
					select {
					case out <- sseEvent{name: name, data: d}:
					case <-ctx.Done():
					}
				}
			}
			resp.Body.Close()
		}
	}()
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		h.t.Fatal("the inbox stream did not open")
	}
	return out
}

// next waits for the first event of name on ch.
func next(t *testing.T, ch <-chan sseEvent, name string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the stream ended before a %s", name)
			}
			if strings.HasPrefix(ev.name, "http-") {
				t.Fatalf("stream: %s %v", ev.name, ev.data)
			}
			if ev.name == name && (match == nil || match(ev.data)) {
				return ev.data
			}
		case <-deadline:
			t.Fatalf("no %s event within 10 s", name)
		}
	}
}

// TestInboxStreamCarriesTheTenantsChanges: a guest's message and a
// message's new status reach the tenant's inbox stream live, none lost
// across the stream's reconnections (Last-Event-ID), and nothing of
// another tenant does.
func TestInboxStreamCarriesTheTenantsChanges(t *testing.T) {
	// Streams of a second (a write timeout of 3 s), so that the test sees
	// them reconnect without waiting long.
	h := newHarness(t, func(c *Config) { c.WriteTimeout = 3 * time.Second })
	mine := h.openStream(staffToken)
	theirs := h.openStream(otherToken)

	h.guestSays("100000000000001", "+14155550142", "wamid.live1", "Could I get extra towels?")
	ev := next(t, mine, "inbound_message", nil)
	conv, _ := ev["conversation_id"].(string)
	if conv == "" {
		t.Fatalf("inbound_message without its conversation: %v", ev)
	}
	if _, err := time.Parse(time.RFC3339, ev["at"].(string)); err != nil {
		t.Fatalf("at %v", ev["at"])
	}

	// An answer, and its status from the provider, after the stream has
	// reconnected at least once.
	time.Sleep(2 * time.Second)
	code, v, _ := h.do("POST", sendPath, staffToken,
		`{"guest_phone":"+14155550142","message_type":"text","content":{"text":"On their way!"}}`)
	if code != 202 {
		t.Fatalf("%d %v", code, v)
	}
	id := v["message_id"].(string)
	if _, err := h.store.ApplyStatuses(context.Background(), []redis.StatusApply{{MessageID: id, Result: redis.Result{
		Status: message.StatusDelivered, AtMS: time.Now().UnixMilli(), Provider: "meta", ProviderMessageID: "wamid.out.live"}}}); err != nil {
		t.Fatal(err)
	}
	st := next(t, mine, "message_status", func(d map[string]any) bool { return d["message_id"] == id && d["status"] == "delivered" })
	if st["conversation_id"] != conv {
		t.Fatalf("status event %v, want conversation %s", st, conv)
	}

	// The other tenant's stream saw none of it.
	for {
		select {
		case ev := <-theirs:
			if ev.name != "ready" {
				t.Fatalf("another tenant's stream got %s %v", ev.name, ev.data)
			}
			continue
		default:
		}
		break
	}
}

func TestInboxStreamNeedsACredential(t *testing.T) {
	h := newHarness(t)
	if code, v, _ := h.do("GET", "/api/v1/whatsapp/inbox/stream", "", ""); code != 401 {
		t.Fatalf("no token: %d %v", code, v)
	}
}

// TestInboxPageIsServed: the page and its files come from the binary,
// with a policy that runs only its own script.
func TestInboxPageIsServed(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ path, ctype, has string }{
		{"/inbox", "text/html", `src="/inbox/assets/app.js"`},
		{"/inbox/", "text/html", "Guest inbox"},
		{"/inbox/assets/app.js", "javascript", "EventSource"},
		{"/inbox/assets/app.css", "text/css", ".messages"},
	} {
		resp, err := http.Get(h.base + tc.path)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(b), tc.has) {
			t.Fatalf("%s: %d %s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Fatalf("%s: policy %q", tc.path, csp)
		}
	}
	for _, p := range []string{"/inbox/assets/../inbox.go", "/inbox/assets/nope.js", "/inbox/secret"} {
		resp, err := http.Get(h.base + p)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
}

// TestLiveHubResumesFromTheLastEventSeen: a browser back with the id of an
// event the hub still holds gets the tenant's events after it, and only
// those; an id of another process, or one the ring has dropped, means a
// reload.
func TestLiveHubResumesFromTheLastEventSeen(t *testing.T) {
	h := newLiveHub(nil, nil)
	for i := range 10 {
		tenant := "grand-plaza"
		if i%2 == 1 {
			tenant = "seaside"
		}
		h.seq++
		h.ring = append(h.ring, liveItem{seq: h.seq, ev: redis.LiveEvent{TenantID: tenant, ConversationID: "conv_" + strconv.Itoa(i)}})
	}
	h.running = true // no tail in this test
	tests := []struct {
		name    string
		lastID  string
		resumed bool
		got     []uint64
	}{
		{"after event 4", h.eventID(4), true, []uint64{5, 7, 9}},
		{"after the last", h.eventID(10), true, nil},
		{"another process", "0badc0ffee00-4", false, nil},
		{"no id", "", false, nil},
		{"from the future", h.eventID(11), false, nil},
	}
	for _, tt := range tests {
		s, resumed, at := h.subscribe("grand-plaza", tt.lastID)
		if resumed != tt.resumed || at != 10 {
			t.Errorf("%s: resumed %v at %d, want %v at 10", tt.name, resumed, at, tt.resumed)
		}
		var got []uint64
		for len(s.ch) > 0 {
			got = append(got, (<-s.ch).seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.got) {
			t.Errorf("%s: replayed %v, want %v", tt.name, got, tt.got)
		}
		h.unsubscribe(s)
	}
	// The ring dropped what came after the id: reload.
	h.ring = h.ring[6:]
	if _, resumed, _ := h.subscribe("grand-plaza", h.eventID(2)); resumed {
		t.Error("resumed past what the ring dropped")
	}
}

// TestAnAgentsStreamCarriesOnlyWhatTheAgentSees: an agent hears of
// unassigned conversations and their own, and of one handed to a
// colleague that it has left their view, but not of what it does then.
func TestAnAgentsStreamCarriesOnlyWhatTheAgentSees(t *testing.T) {
	h := newHarness(t, fastPasswords)
	h.addStaff(adminToken, "alice", "agent", "front_desk")
	bruno := h.addStaff(adminToken, "bruno", "agent")
	sa := h.login("grand-plaza", "alice", testPassword)
	mine := h.openStreamWith(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: sessionCookie, Value: sa.cookie}) })

	h.guestSays("100000000000001", "+14155550171", "wamid.agent1", "Is the gym open?")
	conv := next(t, mine, "inbound_message", nil)["conversation_id"].(string)
	if code, v, _ := h.do("POST", convsPath+"/"+conv+"/assign", adminToken, `{"assigned_to":"`+bruno+`"}`); code != 200 {
		t.Fatalf("assign: %d %v", code, v)
	}
	next(t, mine, "conversation_updated", func(d map[string]any) bool { return d["conversation_id"] == conv })

	h.guestSays("100000000000001", "+14155550171", "wamid.agent2", "Hello?")
	h.guestSays("100000000000001", "+14155550172", "wamid.agent3", "Late checkout please")
	// Every event up to the other guest's message, and a second more.
	var other bool
	deadline := time.After(10 * time.Second)
	for settle := (<-chan time.Time)(nil); ; {
		select {
		case ev := <-mine:
			if ev.data["conversation_id"] == conv {
				t.Fatalf("alice heard of bruno's conversation: %s %v", ev.name, ev.data)
			}
			if ev.name == "inbound_message" && !other {
				other, settle = true, time.After(time.Second)
			}
			continue
		case <-settle:
		case <-deadline:
			t.Fatal("alice did not hear of the unassigned guest")
		}
		break
	}
}
