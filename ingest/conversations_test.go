package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/settings"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// harnessNumbers are the Meta phone number ids of the harness's numbers
// and their tenants, as the inbound role is configured with them.
var harnessNumbers = map[string]struct{ tenant, sender string }{
	"100000000000001": {"grand-plaza", "+15550001000"},
	"100000000000002": {"grand-plaza", "+15550001001"},
	"200000000000001": {"seaside", "+15550002000"},
}

// guestSays files a text from Maria Lopez at from to number pnid as the
// inbound role files one (package inbound applies Meta's webhooks): the
// window, the conversation, an opt keyword of the default settings and
// the inbound_message event, once per wamid.
func (h *harness) guestSays(pnid, from, wamid, text string) {
	h.t.Helper()
	n := harnessNumbers[pnid]
	at := time.Now().UnixMilli()
	st := settings.Default()
	opt, keyword := st.OptKeyword(text), ""
	if opt != "" {
		keyword = text
	}
	data, _ := json.Marshal(map[string]any{"message_id": wamid, "message_type": "text", "message_content": text,
		"guest_name": "Maria Lopez", "timestamp": rfc3339(at)})
	_, err := h.store.RecordInbound(context.Background(), &redis.InboundArgs{TenantID: n.tenant, Sender: n.sender, Guest: from,
		Name: "Maria Lopez", ProviderMessageID: wamid, AtMS: at, Opt: opt, Keyword: keyword,
		NotifyKind: message.EventInboundMessage, NotifyData: data,
		Entry: redis.HistoryEntry{ID: wamid, AtMS: at, Type: "text", Preview: text, Name: "Maria Lopez"}})
	must(h.t, err)
}

func sendText(guest, text string) string {
	b, _ := json.Marshal(map[string]any{"guest_phone": guest, "message_type": "text", "content": map[string]any{"text": text}})
	return string(b)
}

func errDetails(v map[string]any) map[string]any {
	e, _ := v["error"].(map[string]any)
	d, _ := e["details"].(map[string]any)
	return d
}

func TestWindowRefusalNamesTemplatesAndQueuesNothing(t *testing.T) {
	h := newHarness(t)
	const guest = "+14155550123"
	before := h.queued()
	code, v, _ := h.do("POST", sendPath, staffToken, sendText(guest, "Your table is ready"))
	if code != 403 || errCode(t, v) != "MESSAGE_WINDOW_EXPIRED" {
		t.Fatalf("a guest who never wrote: %d %v", code, v)
	}
	d := errDetails(v)
	e := v["error"].(map[string]any)
	if d["guest_phone"] != guest || d["last_guest_message"] != nil || d["window_expires"] != nil {
		t.Fatalf("details %v", d)
	}
	if fmt.Sprint(e["recovery_options"]) != fmt.Sprint([]string{"Use approved template message",
		"Wait for guest to initiate conversation", "Contact guest via alternative channel"}) {
		t.Fatalf("recovery options %v", e["recovery_options"])
	}
	// The guest wrote 25 hours ago: the window closed an hour ago.
	wrote := time.Now().Add(-25 * time.Hour).Truncate(time.Millisecond)
	h.guestWrote(guest, wrote)
	h.putTemplates("grand-plaza",
		`{"name":"service_followup","language":"en","category":"UTILITY","status":"APPROVED","components":[{"type":"BODY","text":"How was your stay with us, {{1}}?"}]}`,
		`{"name":"general_inquiry","language":"en","category":"UTILITY","status":"APPROVED","components":[{"type":"BODY","text":"We have news about your booking. Reply to hear it."}]}`,
		`{"name":"spa_offer","language":"en","category":"MARKETING","status":"PENDING","components":[{"type":"BODY","text":"Relax at our spa this week."}]}`)
	// Names that cannot be sent (unknown, not approved) are left out of
	// the suggestions.
	code, v, _ = h.do("PUT", "/api/v1/whatsapp/settings", adminToken, `{"suggested_templates":["service_followup","nope_template","spa_offer","general_inquiry"]}`)
	if code != 200 {
		t.Fatalf("settings: %d %v", code, v)
	}
	code, v, _ = h.do("POST", sendPath, staffToken, sendText(guest, "Your table is ready"))
	d = errDetails(v)
	last, _ := time.Parse(time.RFC3339, fmt.Sprint(d["last_guest_message"]))
	exp, _ := time.Parse(time.RFC3339, fmt.Sprint(d["window_expires"]))
	if code != 403 || !last.Equal(wrote) || !exp.Equal(wrote.Add(24*time.Hour)) ||
		fmt.Sprint(d["suggested_templates"]) != "[service_followup general_inquiry]" {
		t.Fatalf("an expired window: %d %v", code, d)
	}
	if q := h.queued(); q != before {
		t.Fatalf("refusals queued %d messages", q-before)
	}
	// An admin who turns the rule off lets the provider decide.
	h.do("PUT", "/api/v1/whatsapp/settings", adminToken, `{"window_enforcement":false}`)
	h.srv.settings.Forget("grand-plaza")
	if code, v, _ := h.do("POST", sendPath, staffToken, sendText(guest, "Your table is ready")); code != 202 {
		t.Fatalf("without enforcement: %d %v", code, v)
	}
}

func TestInboundMessagesOpenTheWindowAndTheConversation(t *testing.T) {
	h := newHarness(t)
	const guest = "+14155550123"
	h.guestSays("100000000000001", guest, "wamid.in1", "Hi, is the spa open tomorrow?")
	code, v, _ := h.do("GET", "/api/v1/whatsapp/conversations?guest_phone="+url.QueryEscape(guest)+"&status=active", staffToken, "")
	list, _ := v["conversations"].([]any)
	if code != 200 || len(list) != 1 {
		t.Fatalf("the guest's active conversations: %d %v", code, v)
	}
	c := list[0].(map[string]any)
	last := c["last_message"].(map[string]any)
	if c["from"] != "+15550001000" || c["unread_count"] != 1.0 || c["guest_name"] != "Maria Lopez" ||
		last["preview"] != "Hi, is the spa open tomorrow?" || last["direction"] != "inbound" ||
		c["window"].(map[string]any)["within_window"] != true {
		t.Fatalf("conversation %v", c)
	}
	conv := c["conversation_id"].(string)
	// A free-form answer now goes, into the same conversation.
	code, v, _ = h.do("POST", sendPath, staffToken, sendText(guest, "Yes, from 9:00 to 21:00."))
	if code != 202 || v["conversation_id"] != conv {
		t.Fatalf("answer: %d %v", code, v)
	}
	// The other number has no window with this guest.
	code, v, _ = h.do("POST", sendPath, staffToken, `{"guest_phone":"`+guest+`","message_type":"text","content":{"text":"hi"},"from":"+15550001001"}`)
	if code != 403 || errCode(t, v) != "MESSAGE_WINDOW_EXPIRED" {
		t.Fatalf("from the other number: %d %v", code, v)
	}
	// The same message filed again changes nothing.
	h.guestSays("100000000000001", guest, "wamid.in1", "Hi, is the spa open tomorrow?")
	_, v, _ = h.do("GET", "/api/v1/whatsapp/conversations/"+conv, staffToken, "")
	msgs := v["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["direction"] != "inbound" || msgs[1].(map[string]any)["status"] != "queued" ||
		v["unread_count"] != 1.0 {
		t.Fatalf("after a redelivered webhook: %v", v)
	}
}

func TestOptOutBothWays(t *testing.T) {
	h := newHarness(t)
	const guest = "+14155550177"
	h.guestSays("100000000000001", guest, "wamid.o1", "Hello")
	h.guestSays("100000000000001", guest, "wamid.o2", "  stop! ")
	code, v, _ := h.do("POST", sendPath, staffToken, sendText(guest, "Last chance for our spa offer"))
	if code != 403 || errCode(t, v) != "GUEST_OPTED_OUT" || errDetails(v)["source"] != "keyword" || errDetails(v)["opted_out_at"] == nil {
		t.Fatalf("send after STOP: %d %v", code, v)
	}
	// The conversation shows it (the inbound role confirms it to the
	// guest: package inbound's TestOptKeywordsWorkBothWays).
	_, v, _ = h.do("GET", "/api/v1/whatsapp/conversations?guest_phone="+url.QueryEscape(guest), staffToken, "")
	conv := v["conversations"].([]any)[0].(map[string]any)
	_, v, _ = h.do("GET", "/api/v1/whatsapp/conversations/"+conv["conversation_id"].(string), staffToken, "")
	if v["guest_opted_out"] != true {
		t.Fatalf("conversation: %v", v)
	}
	_, g, _ := h.do("GET", "/api/v1/whatsapp/guests/"+guest, staffToken, "")
	nums := g["numbers"].([]any)
	if g["opted_out"] != true || nums[0].(map[string]any)["opted_out"] != true || nums[1].(map[string]any)["opted_out"] != false {
		t.Fatalf("guest %v", g)
	}
	// START opts back in.
	h.guestSays("100000000000001", guest, "wamid.o3", "Start")
	if code, v, _ := h.do("POST", sendPath, staffToken, sendText(guest, "Welcome back")); code != 202 {
		t.Fatalf("after START: %d %v", code, v)
	}
	// Spanish keywords work too.
	h.guestSays("100000000000001", guest, "wamid.o4", "No más")
	if code, _, _ := h.do("POST", sendPath, staffToken, sendText(guest, "x")); code != 403 {
		t.Fatalf("after NO MÁS: %d", code)
	}
	// Staff record an opt-in the guest gave at the front desk, for every number.
	code, g, _ = h.do("POST", "/api/v1/whatsapp/guests/"+url.PathEscape(guest)+"/opt-in", staffToken, `{"reason":"asked at check-in"}`)
	if code != 200 || g["opted_out"] != false {
		t.Fatalf("API opt-in: %d %v", code, g)
	}
	if code, v, _ := h.do("POST", sendPath, staffToken, sendText(guest, "Your room is ready")); code != 202 {
		t.Fatalf("after API opt-in: %d %v", code, v)
	}
	// And an opt-out by API, for one number only.
	code, g, _ = h.do("POST", "/api/v1/whatsapp/guests/"+guest+"/opt-out", staffToken, `{"from":"+15550001000","reason":"phoned to complain"}`)
	if code != 200 || g["numbers"].([]any)[0].(map[string]any)["opt_source"] != "api" {
		t.Fatalf("API opt-out: %d %v", code, g)
	}
	if code, _, _ := h.do("POST", sendPath, staffToken, sendText(guest, "x")); code != 403 {
		t.Fatalf("after API opt-out: %d", code)
	}
	f := func(path, token, body string, wantCode int, wantErr string) {
		t.Helper()
		code, v, _ := h.do("POST", path, token, body)
		if code != wantCode || (wantErr != "" && errCode(t, v) != wantErr) {
			t.Fatalf("%s: %d %v", path, code, v)
		}
	}
	f("/api/v1/whatsapp/guests/12345/opt-out", staffToken, "", 400, "INVALID_PHONE_NUMBER")
	f("/api/v1/whatsapp/guests/"+guest+"/unsubscribe", staffToken, "", 404, "NOT_FOUND")
	f("/api/v1/whatsapp/guests/"+guest+"/opt-out", staffToken, `{"from":"+15550002000"}`, 400, "INVALID_REQUEST")
	// Another tenant's opt-out of the same guest is its own.
	code, g, _ = h.do("GET", "/api/v1/whatsapp/guests/"+guest, otherToken, "")
	if code != 200 || g["opted_out"] != false || len(g["numbers"].([]any)) != 1 {
		t.Fatalf("other tenant sees %d %v", code, g)
	}
}

func TestSeedConversationCalls(t *testing.T) {
	h := newHarness(t)
	// Seed 001: a text in conversation conv_abc123, then its history.
	code, v, _ := h.do("POST", sendPath, staffToken, seedSend("Welcome to Grand Plaza Hotel! How can we assist you today?"))
	if code != 202 || v["conversation_id"] != "conv_abc123" {
		t.Fatalf("send: %d %v", code, v)
	}
	msgID := v["message_id"]
	code, v, _ = h.do("GET", "/api/v1/whatsapp/conversations/conv_abc123", staffToken, "")
	if code != 200 || v["status"] != "active" || v["guest_phone"] != seedGuest || v["metadata"] == nil {
		t.Fatalf("conversation: %d %v", code, v)
	}
	msgs := v["messages"].([]any)
	m := msgs[len(msgs)-1].(map[string]any)
	if m["message_id"] != msgID || m["staff_member_id"] != "staff_456" || m["direction"] != "outbound" ||
		m["content"].(map[string]any)["body"] != "Welcome to Grand Plaza Hotel! How can we assist you today?" {
		t.Fatalf("message %v", m)
	}
	roles := []string{}
	for _, p := range v["participants"].([]any) {
		roles = append(roles, p.(map[string]any)["role"].(string))
	}
	if fmt.Sprint(roles) != "[guest business staff]" {
		t.Fatalf("participants %v", v["participants"])
	}
	// Seed 002 writes the same calls without /v1.
	code, v2, _ := h.do("GET", "/api/whatsapp/conversations/conv_abc123", staffToken, "")
	if code != 200 || v2["conversation_id"] != "conv_abc123" || len(v2["messages"].([]any)) != len(msgs) {
		t.Fatalf("seed 002's conversation detail: %d %v", code, v2)
	}
	code, v2, _ = h.do("GET", "/api/whatsapp/conversations?status=active&limit=50", staffToken, "")
	if list, _ := v2["conversations"].([]any); code != 200 || len(list) == 0 {
		t.Fatalf("seed 002's conversation list: %d %v", code, v2)
	}
	if code, v2, _ = h.do("GET", "/api/whatsapp/conversations", "", ""); code != 401 {
		t.Fatalf("the alias without a token: %d %v", code, v2)
	}
	if code, v2, _ = h.do("POST", "/api/v1/whatsapp/conversations/conv_abc123/assign", staffToken, `{"assigned_to":"   "}`); code != 400 || errDetails(v2)["field"] != "assigned_to" {
		t.Fatalf("a blank agent: %d %v", code, v2)
	}
	// Seed 001: the guest's active conversations.
	code, v, _ = h.do("GET", "/api/v1/whatsapp/conversations?guest_phone=%2B1234567890&status=active", staffToken, "")
	var ids []string
	for _, c := range v["conversations"].([]any) {
		ids = append(ids, c.(map[string]any)["conversation_id"].(string))
	}
	if code != 200 || !slices.Contains(ids, "conv_abc123") {
		t.Fatalf("list: %d %v", code, v)
	}
	// Seed 001: window status.
	code, v, _ = h.do("GET", "/api/v1/whatsapp/conversations/conv_abc123/window-status", staffToken, "")
	if code != 200 || v["within_window"] != true || v["hours_remaining"].(float64) < 23.9 || v["window_expires_at"] == nil {
		t.Fatalf("window status: %d %v", code, v)
	}
	// Seed 002: assign, link, read.
	for _, a := range []struct{ action, body, field, want string }{
		{"assign", `{"assigned_to":"agent_maria"}`, "assigned_to", "agent_maria"},
		{"link", `{"service_request_id":"SR-2024-0042"}`, "service_request_id", "SR-2024-0042"},
		{"read", ``, "unread_count", "0"},
	} {
		code, v, _ = h.do("POST", "/api/v1/whatsapp/conversations/conv_abc123/"+a.action, staffToken, a.body)
		if code != 200 || fmt.Sprint(v[a.field]) != a.want || v["action"] != a.action {
			t.Fatalf("%s: %d %v", a.action, code, v)
		}
	}
	code, v, _ = h.do("GET", "/api/v1/whatsapp/conversations?assigned_to=agent_maria", staffToken, "")
	if code != 200 || len(v["conversations"].([]any)) != 1 || v["conversations"].([]any)[0].(map[string]any)["service_request_id"] != "SR-2024-0042" {
		t.Fatalf("assigned list: %d %v", code, v)
	}
	// Seed 001: resolve. Resolved conversations are archived (seed 002).
	code, v, _ = h.do("POST", "/api/v1/whatsapp/conversations/conv_abc123/resolve", staffToken,
		`{"resolution_notes":"Guest room service request completed successfully","satisfaction_rating":5,"follow_up_required":false}`)
	res, _ := v["resolution"].(map[string]any)
	if code != 200 || v["status"] != "archived" || v["previous_status"] != "active" || res["satisfaction_rating"] != 5.0 ||
		res["resolution_notes"] != "Guest room service request completed successfully" {
		t.Fatalf("resolve: %d %v", code, v)
	}
	// Seed 001: analytics.
	code, v, _ = h.do("GET", "/api/v1/whatsapp/conversations/conv_abc123/analytics", staffToken, "")
	if code != 200 || v["messages"].(map[string]any)["outbound"] != 1.0 || v["satisfaction"].(map[string]any)["satisfaction_rating"] != 5.0 ||
		v["delivery"].(map[string]any)["pending"] != 1.0 {
		t.Fatalf("analytics: %d %v", code, v)
	}
	// Close: no more actions but reopen, no more sends into it.
	if code, v, _ = h.do("POST", "/api/v1/whatsapp/conversations/conv_abc123/close", staffToken, ""); code != 200 || v["status"] != "closed" {
		t.Fatalf("close: %d %v", code, v)
	}
	f := func(method, path, token, body string, wantCode int, wantErr string) {
		t.Helper()
		code, v, _ := h.do(method, path, token, body)
		if code != wantCode || (wantErr != "" && errCode(t, v) != wantErr) {
			t.Fatalf("%s %s: %d %v", method, path, code, v)
		}
	}
	f("POST", "/api/v1/whatsapp/conversations/conv_abc123/assign", staffToken, `{"assigned_to":"x"}`, 409, "CONVERSATION_CLOSED")
	f("POST", sendPath, staffToken, seedSend("hello?"), 409, "CONVERSATION_CLOSED")
	f("POST", "/api/v1/whatsapp/conversations/conv_abc123/reopen", staffToken, "", 200, "")
	f("POST", sendPath, staffToken, seedSend("hello again"), 202, "")
	// Bad input and other tenants.
	f("POST", "/api/v1/whatsapp/conversations/conv_abc123/resolve", staffToken, `{"satisfaction_rating":6}`, 400, "INVALID_REQUEST")
	f("POST", "/api/v1/whatsapp/conversations/conv_abc123/assign", staffToken, `{}`, 400, "INVALID_REQUEST")
	f("POST", "/api/v1/whatsapp/conversations/conv_abc123/link", staffToken, `{"service_request_id":""}`, 400, "INVALID_REQUEST")
	f("POST", "/api/v1/whatsapp/conversations/conv_abc123/escalate", staffToken, ``, 404, "NOT_FOUND")
	f("GET", "/api/v1/whatsapp/conversations/conv_nope", staffToken, "", 404, "CONVERSATION_NOT_FOUND")
	f("GET", "/api/v1/whatsapp/conversations?status=happy", staffToken, "", 400, "INVALID_REQUEST")
	f("GET", "/api/v1/whatsapp/conversations?guest_phone=12345", staffToken, "", 400, "INVALID_PHONE_NUMBER")
	f("GET", "/api/v1/whatsapp/conversations?cursor=zzz", staffToken, "", 400, "INVALID_REQUEST")
	for _, p := range []string{"", "/window-status", "/analytics"} {
		f("GET", "/api/v1/whatsapp/conversations/conv_abc123"+p, otherToken, "", 404, "CONVERSATION_NOT_FOUND")
	}
	f("POST", "/api/v1/whatsapp/conversations/conv_abc123/resolve", otherToken, `{}`, 404, "CONVERSATION_NOT_FOUND")
	code, v, _ = h.do("GET", "/api/v1/whatsapp/conversations", otherToken, "")
	if code != 200 || len(v["conversations"].([]any)) != 1 { // seaside's own: the seed guest's window
		t.Fatalf("other tenant's list: %d %v", code, v)
	}
	if v["conversations"].([]any)[0].(map[string]any)["from"] != "+15550002000" {
		t.Fatalf("other tenant sees %v", v)
	}
}

func TestConversationListPages(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 7; i++ {
		h.openWindow(fmt.Sprintf("+1415555%04d", i))
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		path := "/api/v1/whatsapp/conversations?limit=4"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		code, v, _ := h.do("GET", path, staffToken, "")
		if code != 200 {
			t.Fatalf("%d %v", code, v)
		}
		for _, c := range v["conversations"].([]any) {
			id := c.(map[string]any)["conversation_id"].(string)
			if seen[id] {
				t.Fatalf("%s listed twice", id)
			}
			seen[id] = true
		}
		if v["next_cursor"] == nil {
			break
		}
		cursor = v["next_cursor"].(string)
	}
	// Eight guests (the seed's and seven) with two numbers each.
	if len(seen) != 16 {
		t.Fatalf("listed %d conversations, want 16", len(seen))
	}
}

func TestSettingsNeedAdminAndCheckTheirInput(t *testing.T) {
	h := newHarness(t)
	f := func(method, body, token string, wantCode int, wantErr string) map[string]any {
		t.Helper()
		code, v, _ := h.do(method, "/api/v1/whatsapp/settings", token, body)
		if code != wantCode || (wantErr != "" && errCode(t, v) != wantErr) {
			t.Fatalf("%s %s: %d %v", method, body, code, v)
		}
		return v
	}
	f("GET", "", staffToken, 403, "FORBIDDEN")
	f("PUT", `{"window_enforcement":false}`, staffToken, 403, "FORBIDDEN")
	v := f("GET", "", adminToken, 200, "")
	if v["window_enforcement"] != true || !strings.Contains(fmt.Sprint(v["opt_out_keywords"]), "STOP") {
		t.Fatalf("defaults %v", v)
	}
	f("PUT", `{"opt_out_keywords":["STOP",""]}`, adminToken, 400, "INVALID_REQUEST")
	f("PUT", `{"opt_in_keywords":["stop"]}`, adminToken, 400, "INVALID_REQUEST")
	f("PUT", `{"suggested_templates":["Not A Name"]}`, adminToken, 400, "INVALID_REQUEST")
	f("PUT", `{"window_enforcment":false}`, adminToken, 400, "INVALID_REQUEST")
	v = f("PUT", `{"opt_out_keywords":["BASTA"],"opt_out_reply":""}`, adminToken, 200, "")
	if fmt.Sprint(v["opt_out_keywords"]) != "[BASTA]" || v["opt_out_reply"] != "" || v["window_enforcement"] != true {
		t.Fatalf("after put %v", v)
	}
	// Each tenant has its own.
	if v := f("GET", "", adminToken, 200, ""); fmt.Sprint(v["opt_out_keywords"]) != "[BASTA]" {
		t.Fatalf("read back %v", v)
	}
}

// TestConversationsFoundByNameOrNumber: the inbox's search finds a guest
// by a piece of their name, in any case, or of their number.
func TestConversationsFoundByNameOrNumber(t *testing.T) {
	h := newHarness(t)
	h.guestSays("100000000000001", "+14155550193", "wamid.search1", "Hello") // Maria Lopez
	h.openWindow("+4930123456")
	if code, v, _ := h.do("POST", sendPath, staffToken, sendText("+4930123456", "Guten Tag")); code != 202 {
		t.Fatalf("%d %v", code, v)
	}
	tests := []struct {
		q    string
		want int
	}{
		{"maria", 1},
		{"LOPEZ", 1},
		{"ria lo", 1},
		{"5550193", 1},
		{"+1 415 555 0193", 1},
		{"zz", 0},
		{"41", 0}, // two digits match too much to mean anything
	}
	for _, tt := range tests {
		code, v, _ := h.do("GET", "/api/v1/whatsapp/conversations?q="+url.QueryEscape(tt.q), staffToken, "")
		if code != 200 {
			t.Fatalf("q=%s: %d %v", tt.q, code, v)
		}
		if got := len(v["conversations"].([]any)); got != tt.want {
			t.Errorf("q=%s: %d conversations, want %d", tt.q, got, tt.want)
		}
	}
	if code, _, _ := h.do("GET", "/api/v1/whatsapp/conversations?q="+strings.Repeat("a", 101), staffToken, ""); code != 400 {
		t.Fatalf("a long q: %d", code)
	}
}
