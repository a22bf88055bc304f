package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/internal/mediakit"
	"github.com/wagate/wagate/internal/mediatest"
	"github.com/wagate/wagate/internal/netguard"
	"github.com/wagate/wagate/internal/password"
	"github.com/wagate/wagate/internal/settings"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/media"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// These tests prove the rule: a token belongs to one tenant and
// carries a role; admin-only calls answer 403 to staff; no call reaches
// another tenant's numbers, templates, conversations, messages, batches,
// guests' opt state, media, webhooks, settings or dead letters. Each works
// from the route table itself, so a new endpoint fails
// TestEveryEndpointIsCoveredByTheAccessTests until it is given its checks.

// otherAdminToken is an admin of seaside, the tenant that is not the hotel.
const otherAdminToken = "other-tenant-admin-token"

// The numbers of the two tenants.
const (
	hotelMain  = "+15550001000"
	hotelDesk  = "+15550001001"
	seasideNum = "+15550002000"
)

// accessHarness is a server with a media folder, grand-plaza's staff and
// admin tokens, and seaside's staff and admin tokens. It knows its Redis
// prefix, so that a test can prove a refused call changed nothing at all.
type accessHarness struct {
	*mediaHarness
	prefix string
	// hooks counts the webhook deliveries each tenant's endpoint got
	// (by path: /grand-plaza, /seaside).
	hooks    *httptest.Server
	hookHits struct{ gp, seaside atomic.Int64 }
	// receipts are the read receipts passed to the providers.
	receipts *fakeMarker
}

// fakeMarker is every number's provider for read receipts: it keeps them.
type fakeMarker struct {
	mu   sync.Mutex
	took []string // "<sender> <message id> <typing>"
}

func (f *fakeMarker) MarkRead(_ context.Context, sender, id string, typing bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.took = append(f.took, fmt.Sprint(sender, " ", id, " ", typing))
	return nil
}

func (f *fakeMarker) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.took)
}

func newAccessHarness(t *testing.T) *accessHarness {
	t.Helper()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	store, err := redis.New(context.Background(), rdb, redis.Config{Prefix: prefix, Shards: 4, InboundParts: 2})
	must(t, err)
	t.Cleanup(store.Close)
	files, err := media.New(t.TempDir())
	must(t, err)
	ts := NewTokens()
	hotel := &Tenant{ID: "grand-plaza", Senders: []string{hotelMain, hotelDesk}}
	other := &Tenant{ID: "seaside", Senders: []string{seasideNum}}
	must(t, ts.Add(staffToken, Principal{Tenant: hotel, Role: RoleStaff}))
	must(t, ts.Add(adminToken, Principal{Tenant: hotel, Role: RoleAdmin}))
	must(t, ts.Add(otherToken, Principal{Tenant: other, Role: RoleStaff}))
	must(t, ts.Add(otherAdminToken, Principal{Tenant: other, Role: RoleAdmin}))
	clock := &mediaClock{}
	clock.ns.Store(time.Now().UnixNano())
	reg := prometheus.NewRegistry()
	marker := &fakeMarker{}
	cfg := Config{Addr: "127.0.0.1:0", MaxBodyBytes: 64 << 10,
		ReadMarkers: map[string]ReadMarker{hotelMain: marker, hotelDesk: marker, seasideNum: marker}, MaxUploadBytes: 64 << 10, MetaAppSecret: appSecret, MetaVerifyToken: "verify-me",
		PasswordParams: password.Fast(), WebhookAllow: netguard.Loopback(),
		Media: mediakit.Config{Files: files, SigningKey: []byte("test-media-signing-key-of-32-bytes!"), PublicBaseURL: publicBase + "/",
			URLTTL: time.Hour, Limits: testLimits, Now: clock.Now}}
	srv, err := NewServer(cfg, store, ts, reg, reg, slog.New(slog.DiscardHandler))
	must(t, err)
	must(t, srv.Start())
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	h := &accessHarness{mediaHarness: &mediaHarness{harness: &harness{t: t, store: store, srv: srv, base: "http://" + srv.Addr(), reg: reg},
		files: files, clock: clock}, prefix: prefix, receipts: marker}
	h.hooks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/grand-plaza":
			h.hookHits.gp.Add(1)
		case "/seaside":
			h.hookHits.seaside.Add(1)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.hooks.Close)
	h.openWindow(seedGuest)
	return h
}

// snapshot is every key of the harness's Redis with its serialized value.
func (h *accessHarness) snapshot() map[string]string {
	h.t.Helper()
	ctx := context.Background()
	rdb := h.store.Client()
	out := map[string]string{}
	iter := rdb.Scan(ctx, 0, h.prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		if strings.Contains(iter.Val(), ":lease:") {
			// The dead-letter dispatcher's shard leases expire on their
			// own time, whatever the request did.
			continue
		}
		// A hash by its fields: a hash table's serialized order moves with
		// Redis's rehashing, which reads do too.
		if rdb.Type(ctx, iter.Val()).Val() == "hash" {
			m := rdb.HGetAll(ctx, iter.Val()).Val()
			var b strings.Builder
			for _, k := range slices.Sorted(maps.Keys(m)) {
				b.WriteString(k + "\x00" + m[k] + "\x00")
			}
			out[iter.Val()] = b.String()
			continue
		}
		v, err := rdb.Dump(ctx, iter.Val()).Result()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		must(h.t, err)
		out[iter.Val()] = v
	}
	must(h.t, iter.Err())
	return out
}

// unchanged runs f and fails t when it changed anything in Redis.
func (h *accessHarness) unchanged(t *testing.T, what string, f func()) {
	t.Helper()
	before := h.snapshot()
	f()
	after := h.snapshot()
	var diff []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			diff = append(diff, "deleted "+k)
		} else if w != v {
			diff = append(diff, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diff = append(diff, "created "+k)
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 {
		t.Fatalf("%s changed Redis: %v", what, diff)
	}
}

// accessCall is one request of an endpoint, valid but for its token: were
// it let through, it would do what the endpoint does.
type accessCall struct {
	method, path, body string
	// hdr are extra headers (a multipart Content-Type).
	hdr []string
}

func (h *accessHarness) call(c accessCall, token string, hdr ...string) (int, map[string]any, http.Header) {
	h.t.Helper()
	return h.do(c.method, c.path, token, c.body, append(slices.Clone(c.hdr), hdr...)...)
}

// hotelData are grand-plaza's resources, made through the API as its
// staff and admins would.
type hotelData struct {
	msgID string // a text message, sent with Idempotency-Key hotelIdemKey
	// inboundID is guest's message to hotelMain, otherInboundID to seaside.
	inboundID, otherInboundID string
	batchID                   string // a queued batch of two
	guest                     string // a guest who wrote to every number
	convID                    string // the guest's conversation with hotelMain
	deskConvID                string // a conversation named by the caller, from hotelDesk
	mediaID                   string // an uploaded PNG
	mediaURL                  string // its signed URL
	deadID                    string // a dead-lettered message
	optGuest                  string // a guest the hotel opted out of every number
	hookSecret                string
	reply                     string // the hotel's opt_out_reply setting
	upload                    []byte // a multipart upload body
	uploadCT                  string
	// The hotel's staff: an agent of the front desk (signed in as
	// agent) and an admin; seaside's agent, signed in as otherAgent.
	staffID      string
	adminStaffID string
	otherStaffID string
	agent        staffSession
	otherAgent   staffSession
}

// withSession are the headers of a call made in s: its cookie and CSRF
// token.
func withSession(s staffSession) []string {
	return []string{"Cookie", sessionCookie + "=" + s.cookie, csrfHeader, s.csrf}
}

const (
	hotelIdemKey   = "pms-booking-RB123456"
	hotelTemplate  = "late_checkout_confirmation"
	hotelOptOutMsg = "Grand Plaza: you are unsubscribed."
	probeTemplate  = "access_probe_notice"
	deskConvName   = "frontdesk-ticket-2001"
)

// lateCheckout is seed 001's template submission; body is its body text.
func lateCheckout(name, body string) string {
	b, _ := json.Marshal(map[string]any{"name": name, "category": "UTILITY", "language": "en", "components": []any{
		map[string]any{"type": "HEADER", "format": "TEXT", "text": "Late Checkout Confirmed"},
		map[string]any{"type": "BODY", "text": body},
		map[string]any{"type": "FOOTER", "text": "Thank you for staying with us!"}}})
	return string(b)
}

const hotelTemplateBody = "Hi {{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Additional charges: {{4}}."

// ok fails t unless the call answered want; it returns the answer.
func (h *accessHarness) ok(t *testing.T, want int, method, path, token, body string, hdr ...string) map[string]any {
	t.Helper()
	code, v, _ := h.do(method, path, token, body, hdr...)
	if code != want {
		t.Fatalf("%s %s: %d %v, want %d", method, path, code, v, want)
	}
	return v
}

// refused fails t unless the call answered status with code in the error
// format; it returns the error's details.
func (h *accessHarness) refused(t *testing.T, status int, code, method, path, token, body string, hdr ...string) map[string]any {
	t.Helper()
	c, v, _ := h.do(method, path, token, body, hdr...)
	if c != status || errCode(t, v) != code {
		t.Fatalf("%s %s: %d %v, want %d %s", method, path, c, v, status, code)
	}
	return errDetails(v)
}

// makeHotelData creates grand-plaza's resources.
func (h *accessHarness) makeHotelData(t *testing.T) *hotelData {
	t.Helper()
	d := &hotelData{guest: "+14155550100", optGuest: "+14155550177"}
	h.putTemplates("grand-plaza", hotelTemplates...)
	h.ok(t, 201, "POST", templatesPath, adminToken, lateCheckout(hotelTemplate, hotelTemplateBody))

	v := h.ok(t, 202, "POST", sendPath, staffToken, sendText(seedGuest, "Your room is ready"), "Idempotency-Key", hotelIdemKey)
	d.msgID = v["message_id"].(string)

	// A guest writes to every number; the hotel answers in the guest's
	// conversation.
	wrote := h.guestWrote(d.guest, time.Now())
	h.guestWrote(d.optGuest, time.Now())
	d.inboundID, d.otherInboundID = wrote[hotelMain], wrote[seasideNum]
	v = h.ok(t, 202, "POST", sendPath, staffToken, sendText(d.guest, "We have your booking, Maria."))
	d.convID = v["conversation_id"].(string)
	v = h.ok(t, 202, "POST", sendPath, staffToken,
		`{"guest_phone":"`+d.guest+`","from":"`+hotelDesk+`","message_type":"text","content":{"text":"Front desk here."},"conversation_id":"`+deskConvName+`"}`)
	d.deskConvID = v["conversation_id"].(string)
	if d.deskConvID != deskConvName {
		t.Fatalf("named conversation: %v", v)
	}

	v = h.ok(t, 202, "POST", batchPath, staffToken,
		`{"messages":[{"phone":"`+seedGuest+`","content":"Pool closes at 9"},{"phone":"`+d.guest+`","content":"Pool closes at 9"}]}`)
	d.batchID = v["batch_id"].(string)

	png := mediatest.PNG(t)
	code, up := h.upload(staffToken, "room_key_info.png", png, "image")
	if code != 201 {
		t.Fatalf("upload: %d %v", code, up)
	}
	d.mediaID, d.mediaURL = up["media_id"].(string), up["media_url"].(string)
	d.upload, d.uploadCT = multipartBody(t, formPart{field: "media", filename: "menu.png", value: string(png)}, formPart{field: "media_type", value: "image"})

	v = h.ok(t, 200, "POST", "/api/v1/whatsapp/webhooks/configure", adminToken, h.hookConfig("grand-plaza"))
	d.hookSecret = v["signing_secret"].(string)
	d.reply = hotelOptOutMsg
	h.ok(t, 200, "PUT", "/api/v1/whatsapp/settings", adminToken, `{"opt_out_reply":"`+hotelOptOutMsg+`"}`)
	h.srv.settings.Forget("grand-plaza")

	v = h.ok(t, 202, "POST", sendPath, staffToken, seedSend("Your invoice"))
	d.deadID = v["message_id"].(string)
	j := h.begin(d.deadID)
	must(t, h.store.Finish(context.Background(), j, &redis.Result{Status: message.StatusFailed, AtMS: time.Now().UnixMilli(),
		ErrorCode: 131000, ErrorTitle: "Something went wrong"}, redis.FinishOptions{DeadLetter: true}))

	h.ok(t, 200, "POST", "/api/v1/whatsapp/guests/"+d.optGuest+"/opt-out", staffToken, `{"reason":"asked at the desk"}`)

	// Staff last: a tenant with staff members takes only their ids.
	d.staffID = h.addStaff(adminToken, "alice", "agent", "front_desk")
	d.adminStaffID = h.addStaff(adminToken, "boss", "admin")
	d.otherStaffID = h.addStaff(otherAdminToken, "sam", "agent", "front_desk")
	d.agent = h.login("grand-plaza", "alice", testPassword)
	d.otherAgent = h.login("seaside", "sam", testPassword)
	return d
}

// hookConfig is a webhook configuration posting to the test endpoint's
// path for tenant.
func (h *accessHarness) hookConfig(tenant string) string {
	return `{"webhook_url":"` + h.hooks.URL + `/` + tenant + `","events":["message_delivered","inbound_message"],"verify_token":"vt-` + tenant + `"}`
}

// accessCalls are a valid call of every endpoint of the table, keyed
// "METHOD pattern", as grand-plaza would make it with d's resources.
func accessCalls(h *accessHarness, d *hotelData) map[string]accessCall {
	const api = "/api/v1/whatsapp/"
	hookCfg := ""
	if h != nil {
		hookCfg = h.hookConfig("grand-plaza")
	}
	return map[string]accessCall{
		"POST messages/send":                        {"POST", sendPath, sendText(seedGuest, "Your table is ready"), nil},
		"POST messages/batch-send":                  {"POST", batchPath, `{"messages":[{"phone":"` + seedGuest + `","content":"Spa opens at 8"}]}`, nil},
		"POST messages/send-media":                  {"POST", sendMediaPath, `{"guest_phone":"` + seedGuest + `","media_id":"` + d.mediaID + `","media_type":"image"}`, nil},
		"POST messages/send-interactive":            {"POST", interactivePath, `{"guest_phone":"` + seedGuest + `","interactive_type":"buttons","content":{"text":"Late checkout?","buttons":[{"id":"yes","title":"Yes"}]}}`, nil},
		"GET messages/{id}/status":                  {"GET", api + "messages/" + d.msgID + "/status", "", nil},
		"POST messages/{id}/read":                   {"POST", api + "messages/" + d.inboundID + "/read", `{"typing_indicator":true}`, nil},
		"POST messages/read":                        {"POST", api + "messages/read", `{"message_id":"` + d.inboundID + `"}`, nil},
		"GET batches/{id}":                          {"GET", api + "batches/" + d.batchID, "", nil},
		"POST batches/{id}/cancel":                  {"POST", api + "batches/" + d.batchID + "/cancel", "", nil},
		"GET batches/{id}/messages":                 {"GET", api + "batches/" + d.batchID + "/messages", "", nil},
		"GET templates":                             {"GET", templatesPath, "", nil},
		"POST templates":                            {"POST", templatesPath, lateCheckout(probeTemplate, "Dear {{1}}, the pool is closed until {{2}} for cleaning today."), nil},
		"POST templates/send":                       {"POST", templateSendPath, seedWelcome, nil},
		"GET templates/{name}":                      {"GET", templatesPath + "/welcome_checkin", "", nil},
		"POST media/upload":                         {"POST", uploadPath, string(d.upload), []string{"Content-Type", d.uploadCT}},
		"GET conversations":                         {"GET", api + "conversations", "", nil},
		"GET conversations/{id}":                    {"GET", api + "conversations/" + d.convID, "", nil},
		"GET conversations/{id}/window-status":      {"GET", api + "conversations/" + d.convID + "/window-status", "", nil},
		"GET conversations/{id}/analytics":          {"GET", api + "conversations/" + d.convID + "/analytics", "", nil},
		"POST conversations/{id}/{action}":          {"POST", api + "conversations/" + d.convID + "/assign", `{"assigned_to":"` + d.staffID + `"}`, nil},
		"GET guests/{phone}":                        {"GET", api + "guests/" + d.guest, "", nil},
		"POST guests/{phone}/{action}":              {"POST", api + "guests/" + d.guest + "/opt-out", `{"reason":"asked by phone"}`, nil},
		"POST webhooks/configure":                   {"POST", api + "webhooks/configure", hookCfg, nil},
		"GET webhooks":                              {"GET", api + "webhooks", "", nil},
		"DELETE webhooks":                           {"DELETE", api + "webhooks", "", nil},
		"POST webhooks/test":                        {"POST", api + "webhooks/test", "", nil},
		"GET settings":                              {"GET", api + "settings", "", nil},
		"PUT settings":                              {"PUT", api + "settings", `{"opt_in_reply":"Welcome back to Grand Plaza."}`, nil},
		"GET admin/dead-letters":                    {"GET", api + "admin/dead-letters", "", nil},
		"POST admin/dead-letters/{id}/requeue":      {"POST", api + "admin/dead-letters/" + d.deadID + "/requeue", "", nil},
		"POST webhooks/dead-letters/redeliver":      {"POST", api + "webhooks/dead-letters/redeliver", "", nil},
		"POST webhooks/dead-letters/{id}/redeliver": {"POST", api + "webhooks/dead-letters/evt_0_1-0/redeliver", "", nil},
		"GET inbox/stream":                          {"GET", api + "inbox/stream", "", nil},
		"POST auth/logout":                          {"POST", api + "auth/logout", "", nil},
		"GET auth/me":                               {"GET", api + "auth/me", "", nil},
		"GET staff":                                 {"GET", api + "staff", "", nil},
		"POST staff":                                {"POST", api + "staff", `{"username":"newbie","name":"New Bie","role":"agent","password":"` + testPassword + `"}`, nil},
		"PATCH staff/me":                            {"PATCH", api + "staff/me", `{"availability":"away"}`, nil},
		"GET staff/{id}":                            {"GET", api + "staff/" + d.staffID, "", nil},
		"PATCH staff/{id}":                          {"PATCH", api + "staff/" + d.staffID, `{"name":"Alice M."}`, nil},
		"POST staff/{id}/password":                  {"POST", api + "staff/" + d.staffID + "/password", `{"password":"another-password"}`, nil},
	}
}

// publicEndpoints are the rows without a bearer token: each checks its
// own credential (the media URL's signature).
var publicEndpoints = []string{"GET media/{id}", "POST auth/login"}

// adminEndpoints are the calls the issue keeps to admins: template
// submission, the tenant's webhook, its settings and the dead letters.
var adminEndpoints = []string{
	"POST templates",
	"POST webhooks/configure", "GET webhooks", "DELETE webhooks", "POST webhooks/test",
	"GET settings", "PUT settings",
	"GET admin/dead-letters", "POST admin/dead-letters/{id}/requeue",
	"POST webhooks/dead-letters/redeliver", "POST webhooks/dead-letters/{id}/redeliver",
	"POST staff", "GET staff/{id}", "PATCH staff/{id}", "POST staff/{id}/password",
}

// adminAnswers are what an admin's call of each admin endpoint answers.
var adminAnswers = map[string]int{
	"POST templates":          201,
	"POST webhooks/configure": 200, "GET webhooks": 200, "DELETE webhooks": 204, "POST webhooks/test": 200,
	"GET settings": 200, "PUT settings": 200,
	"GET admin/dead-letters": 200, "POST admin/dead-letters/{id}/requeue": 202,
	"POST webhooks/dead-letters/redeliver": 202, "POST webhooks/dead-letters/{id}/redeliver": 404,
	"POST staff": 201, "GET staff/{id}": 200, "PATCH staff/{id}": 200, "POST staff/{id}/password": 200,
}

func endpointKey(e *endpoint) string { return e.method + " " + e.pattern }

// routeOf is the row serveAPI picks for method and path ("" when none):
// a call meant for one row must not be answered by another.
func routeOf(method, path string) string {
	p, _, _ := strings.Cut(path, "?")
	rest, ok := strings.CutPrefix(p, apiPrefix)
	if !ok {
		return ""
	}
	for _, e := range apiEndpoints() {
		if _, ok := match([]byte(rest), e.pattern); ok && e.method == method {
			return endpointKey(&e)
		}
	}
	return ""
}

func TestEveryEndpointNeedsAToken(t *testing.T) {
	h := newAccessHarness(t)
	d := h.makeHotelData(t)
	calls := accessCalls(h, d)
	bad := []struct{ name, auth string }{
		{"no header", ""},
		{"basic", "Basic x"},
		{"basic with a real token", "Basic " + adminToken},
		{"bearer alone", "Bearer"},
		{"bearer blank", "Bearer    "},
		{"unknown token", "Bearer not-a-wagate-token"},
		{"a token with a character more", "Bearer " + adminToken + "x"},
		{"a token without its last character", "Bearer " + adminToken[:len(adminToken)-1]},
	}
	for _, e := range apiEndpoints() {
		key := endpointKey(&e)
		if e.public {
			continue
		}
		c, ok := calls[key]
		if !ok {
			t.Errorf("%s: no call to try it without a token", key)
			continue
		}
		if got := routeOf(c.method, c.path); got != key {
			t.Errorf("%s: the call %s %s reaches %q", key, c.method, c.path, got)
			continue
		}
		t.Run(key, func(t *testing.T) {
			for _, b := range bad {
				var hdr []string
				if b.auth != "" {
					hdr = []string{"Authorization", b.auth}
				}
				h.unchanged(t, key+" with "+b.name, func() {
					code, v, resp := h.call(c, "", hdr...)
					if code != 401 || errCode(t, v) != "UNAUTHORIZED" || resp.Get("WWW-Authenticate") == "" {
						t.Fatalf("%s: %d %v %v, want 401 UNAUTHORIZED with WWW-Authenticate", b.name, code, v, resp)
					}
					if msg := v["error"].(map[string]any)["message"]; msg != errUnauthorized.Message {
						t.Fatalf("%s: message %v", b.name, msg)
					}
				})
			}
			if h.hookHits.gp.Load() != 0 {
				t.Fatal("a refused call posted to the tenant's webhook")
			}
		})
	}
	// The signed media URL is the credential of GET media/{id}: a token
	// does not replace it, and a URL whose signature does not match its id
	// and expiry is refused before anything is read.
	t.Run("GET media/{id}", func(t *testing.T) {
		u, err := url.Parse(d.mediaURL)
		must(t, err)
		q := u.Query()
		exp, sig := q.Get("expires"), q.Get("signature")
		path := "/api/v1/whatsapp/media/" + d.mediaID
		other := "/api/v1/whatsapp/media/" + mediakit.NewID()
		for _, c := range []struct{ name, path, token string }{
			{"no signature", path, ""},
			{"a token instead of a signature", path, adminToken},
			{"expires alone", path + "?expires=" + exp, adminToken},
			{"signature alone", path + "?signature=" + sig, ""},
			{"another signature", path + "?expires=" + exp + "&signature=" + strings.Repeat("0", len(sig)), ""},
			{"a later expiry", path + "?expires=" + exp + "0&signature=" + sig, ""},
			{"the signature of another id", other + "?expires=" + exp + "&signature=" + sig, ""},
		} {
			h.unchanged(t, c.name, func() {
				code, v, _ := h.do("GET", c.path, c.token, "")
				if code != 403 || errCode(t, v) != "FORBIDDEN" {
					t.Fatalf("%s: %d %v, want 403 FORBIDDEN", c.name, code, v)
				}
			})
		}
		// The URL as the upload answered it serves the file.
		code, hdr, body := h.get(d.mediaURL)
		if code != 200 || hdr.Get("Content-Type") != "image/png" || len(body) == 0 {
			t.Fatalf("signed URL: %d %v", code, hdr)
		}
	})
}

func TestAdminEndpointsRefuseStaff(t *testing.T) {
	// The table's admin rows are exactly the issue's.
	var got []string
	for _, e := range apiEndpoints() {
		if e.admin {
			got = append(got, endpointKey(&e))
		}
		if e.admin && e.public {
			t.Errorf("%s is admin-only and public", endpointKey(&e))
		}
	}
	want := slices.Clone(adminEndpoints)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("admin rows of the table:\n got %v\nwant %v", got, want)
	}

	h := newAccessHarness(t)
	d := h.makeHotelData(t)
	calls := accessCalls(h, d)
	for _, key := range adminEndpoints {
		c := calls[key]
		t.Run(key, func(t *testing.T) {
			// Every admin call finds the hotel's webhook in place (the
			// previous one may have deleted it).
			h.ok(t, 200, "POST", "/api/v1/whatsapp/webhooks/configure", adminToken, h.hookConfig("grand-plaza"))
			hits := h.hookHits.gp.Load()
			for _, tok := range []string{staffToken, otherToken} {
				h.unchanged(t, key+" by staff", func() {
					code, v, _ := h.call(c, tok)
					if code != 403 || errCode(t, v) != "FORBIDDEN" || errDetails(v)["role"] != "staff" {
						t.Fatalf("staff token %q: %d %v, want 403 FORBIDDEN naming the role", tok, code, v)
					}
				})
			}
			// An agent's session is no admin either, of its tenant or another.
			for _, s := range []staffSession{d.agent, d.otherAgent} {
				h.unchanged(t, key+" by an agent's session", func() {
					code, v, _ := h.call(c, "", withSession(s)...)
					if code != 403 || errCode(t, v) != "FORBIDDEN" || errDetails(v)["role"] != "staff" {
						t.Fatalf("agent session: %d %v, want 403 FORBIDDEN naming the role", code, v)
					}
				})
			}
			if h.hookHits.gp.Load() != hits {
				t.Fatal("a staff call posted to the tenant's webhook")
			}
			code, v, _ := h.call(c, adminToken)
			if code != adminAnswers[key] {
				t.Fatalf("admin: %d %v, want %d", code, v, adminAnswers[key])
			}
		})
	}
	// What the admins did took effect: the staff calls before them had not.
	v := h.ok(t, 200, "GET", templatesPath+"/"+probeTemplate, staffToken, "")
	if v["status"] != "PENDING" {
		t.Fatalf("the admin's template: %v", v)
	}
	if h.hookHits.gp.Load() != 1 {
		t.Fatalf("webhook test deliveries: %d, want the admin's one", h.hookHits.gp.Load())
	}
	v = h.ok(t, 200, "GET", "/api/v1/whatsapp/messages/"+d.deadID+"/status", staffToken, "")
	if v["status"] != "queued" {
		t.Fatalf("requeued dead letter: %v", v)
	}
}

// isolationCheck is what seaside may not see or do of grand-plaza's for
// one endpoint (key "METHOD pattern").
type isolationCheck struct {
	key string
	run func(t *testing.T)
}

// ids are the values of field in the objects of list v[key].
func ids(v map[string]any, key, field string) []string {
	var out []string
	items, _ := v[key].([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			s, _ := m[field].(string)
			out = append(out, s)
		}
	}
	return out
}

// isolationChecks are the checks of every endpoint, in the order they run
// (what only reads first, then what seaside changes of its own). h and d
// are nil and empty when only the keys are wanted.
func isolationChecks(h *accessHarness, d *hotelData) []isolationCheck {
	const api = "/api/v1/whatsapp/"
	conv := func(id string) string { return api + "conversations/" + id }
	hotelConv := func(t *testing.T) map[string]any {
		t.Helper()
		return h.ok(t, 200, "GET", conv(d.convID), staffToken, "")
	}
	return []isolationCheck{
		{"POST messages/{id}/read", func(t *testing.T) {
			// Each tenant marks its own guests' messages read, and only
			// those: another's is not found, and reaches no provider.
			before := len(h.receipts.all())
			for _, tok := range []string{otherToken, otherAdminToken} {
				h.refused(t, 404, "MESSAGE_NOT_FOUND", "POST", api+"messages/"+d.inboundID+"/read", tok, "")
			}
			h.refused(t, 404, "MESSAGE_NOT_FOUND", "POST", api+"messages/"+d.otherInboundID+"/read", staffToken, "")
			if got := h.receipts.all(); len(got) != before {
				t.Fatalf("refused receipts reached the provider: %v", got[before:])
			}
			h.ok(t, 200, "POST", api+"messages/"+d.inboundID+"/read", staffToken, "")
			h.ok(t, 200, "POST", api+"messages/"+d.otherInboundID+"/read", otherToken, `{"typing_indicator":true}`)
			got := h.receipts.all()[before:]
			want := []string{hotelMain + " " + d.inboundID + " false", seasideNum + " " + d.otherInboundID + " true"}
			if !slices.Equal(got, want) {
				t.Fatalf("receipts %v, want %v", got, want)
			}
		}},
		{"POST messages/read", func(t *testing.T) {
			before := len(h.receipts.all())
			for _, tok := range []string{otherToken, otherAdminToken} {
				h.refused(t, 404, "MESSAGE_NOT_FOUND", "POST", api+"messages/read", tok, `{"message_id":"`+d.inboundID+`"}`)
			}
			h.refused(t, 400, "INVALID_REQUEST", "POST", api+"messages/read", staffToken, `{"typing_indicator":true}`)
			h.ok(t, 200, "POST", api+"messages/read", staffToken, `{"message_id":"`+d.inboundID+`","typing_indicator":true}`)
			if got := h.receipts.all()[before:]; !slices.Equal(got, []string{hotelMain + " " + d.inboundID + " true"}) {
				t.Fatalf("receipts %v", got)
			}
		}},
		{"GET messages/{id}/status", func(t *testing.T) {
			path := api + "messages/" + d.msgID + "/status"
			h.ok(t, 200, "GET", path, staffToken, "")
			for _, tok := range []string{otherToken, otherAdminToken} {
				h.refused(t, 404, "MESSAGE_NOT_FOUND", "GET", path, tok, "")
			}
		}},
		{"GET batches/{id}", func(t *testing.T) {
			h.ok(t, 200, "GET", api+"batches/"+d.batchID, staffToken, "")
			for _, tok := range []string{otherToken, otherAdminToken} {
				h.refused(t, 404, "BATCH_NOT_FOUND", "GET", api+"batches/"+d.batchID, tok, "")
			}
		}},
		{"GET batches/{id}/messages", func(t *testing.T) {
			v := h.ok(t, 200, "GET", api+"batches/"+d.batchID+"/messages", staffToken, "")
			if ms, _ := v["messages"].([]any); len(ms) == 0 {
				t.Fatalf("the hotel's batch lists no messages: %v", v)
			}
			for _, tok := range []string{otherToken, otherAdminToken} {
				h.refused(t, 404, "BATCH_NOT_FOUND", "GET", api+"batches/"+d.batchID+"/messages?status=failed", tok, "")
			}
		}},
		{"POST batches/{id}/cancel", func(t *testing.T) {
			h.unchanged(t, "seaside canceling the hotel's batch", func() {
				for _, tok := range []string{otherToken, otherAdminToken} {
					h.refused(t, 404, "BATCH_NOT_FOUND", "POST", api+"batches/"+d.batchID+"/cancel", tok, "")
				}
			})
			v := h.ok(t, 200, "GET", api+"batches/"+d.batchID, staffToken, "")
			if v["status"] != "queued" || v["counts"].(map[string]any)["canceled"] != 0.0 || v["counts"].(map[string]any)["queued"] != 2.0 {
				t.Fatalf("the hotel's batch after seaside's cancel: %v", v)
			}
		}},
		{"GET templates", func(t *testing.T) {
			hotel := h.ok(t, 200, "GET", templatesPath, staffToken, "")
			if names := ids(hotel, "templates", "name"); !slices.Contains(names, hotelTemplate) || !slices.Contains(names, "welcome_checkin") {
				t.Fatalf("the hotel's own list: %v", names)
			}
			v := h.ok(t, 200, "GET", templatesPath, otherToken, "")
			if names := ids(v, "templates", "name"); len(names) != 0 || v["total"] != 0.0 {
				t.Fatalf("seaside, which has no templates, lists %v (total %v)", names, v["total"])
			}
			v = h.ok(t, 200, "GET", templatesPath+"?status=APPROVED", otherToken, "")
			if names := ids(v, "templates", "name"); len(names) != 0 {
				t.Fatalf("seaside's approved templates: %v", names)
			}
		}},
		{"GET templates/{name}", func(t *testing.T) {
			for _, name := range []string{"welcome_checkin", hotelTemplate} {
				h.ok(t, 200, "GET", templatesPath+"/"+name, staffToken, "")
				h.refused(t, 404, "TEMPLATE_NOT_FOUND", "GET", templatesPath+"/"+name, otherToken, "")
				h.refused(t, 404, "TEMPLATE_NOT_FOUND", "GET", templatesPath+"/"+name+"?language=en", otherAdminToken, "")
			}
		}},
		{"POST templates/send", func(t *testing.T) {
			h.unchanged(t, "seaside sending the hotel's template", func() {
				h.refused(t, 404, "TEMPLATE_NOT_FOUND", "POST", templateSendPath, otherToken, seedWelcome)
			})
		}},
		{"GET conversations", func(t *testing.T) {
			hotel := h.ok(t, 200, "GET", api+"conversations?guest_phone=%2B14155550100", staffToken, "")
			if got := ids(hotel, "conversations", "conversation_id"); !slices.Contains(got, d.convID) || !slices.Contains(got, d.deskConvID) {
				t.Fatalf("the hotel's conversations with the guest: %v", got)
			}
			for _, q := range []string{"", "?guest_phone=%2B14155550100", "?status=active,initiated,expired,archived,closed&limit=100", "?assigned_to=none"} {
				v := h.ok(t, 200, "GET", api+"conversations"+q, otherToken, "")
				// seaside's member, signed in, lists what seaside's token does.
				sv := h.ok(t, 200, "GET", api+"conversations"+q, "", "", withSession(d.otherAgent)...)
				if got, want := ids(sv, "conversations", "conversation_id"), ids(v, "conversations", "conversation_id"); !slices.Equal(got, want) {
					t.Fatalf("seaside's member lists %v, its token %v", got, want)
				}
				if len(ids(v, "conversations", "conversation_id")) == 0 {
					t.Fatalf("seaside's own conversations (the guests wrote to it too) are missing: %v", v)
				}
				for i, from := range ids(v, "conversations", "from") {
					id := ids(v, "conversations", "conversation_id")[i]
					if from != seasideNum || id == d.convID || id == d.deskConvID {
						t.Fatalf("seaside's list%s holds %s from %s", q, id, from)
					}
				}
			}
		}},
		{"GET conversations/{id}", func(t *testing.T) {
			for _, id := range []string{d.convID, d.deskConvID} {
				h.ok(t, 200, "GET", conv(id), staffToken, "")
				for _, tok := range []string{otherToken, otherAdminToken} {
					h.refused(t, 404, "CONVERSATION_NOT_FOUND", "GET", conv(id), tok, "")
				}
				// seaside's member, signed in, sees none of them either.
				h.refused(t, 404, "CONVERSATION_NOT_FOUND", "GET", conv(id), "", "", withSession(d.otherAgent)...)
			}
		}},
		{"GET conversations/{id}/window-status", func(t *testing.T) {
			h.ok(t, 200, "GET", conv(d.convID)+"/window-status", staffToken, "")
			h.refused(t, 404, "CONVERSATION_NOT_FOUND", "GET", conv(d.convID)+"/window-status", otherToken, "")
			h.refused(t, 404, "CONVERSATION_NOT_FOUND", "GET", conv(d.deskConvID)+"/window-status", otherToken, "")
		}},
		{"GET conversations/{id}/analytics", func(t *testing.T) {
			h.ok(t, 200, "GET", conv(d.convID)+"/analytics", staffToken, "")
			h.refused(t, 404, "CONVERSATION_NOT_FOUND", "GET", conv(d.convID)+"/analytics", otherToken, "")
			h.refused(t, 404, "CONVERSATION_NOT_FOUND", "GET", conv(d.deskConvID)+"/analytics", otherToken, "")
		}},
		{"POST conversations/{id}/{action}", func(t *testing.T) {
			before := hotelConv(t)
			actions := map[string]string{
				"resolve": `{"resolution_notes":"done","satisfaction_rating":5,"resolved_by":"seaside"}`,
				"assign":  `{"assigned_to":"seaside_agent"}`, "link": `{"service_request_id":"SR-1"}`,
				"read": "", "archive": "", "close": "", "reopen": "",
			}
			if len(actions) != len(convActions) {
				t.Fatalf("actions %v, the handler has %v", actions, convActions)
			}
			h.unchanged(t, "seaside's actions on the hotel's conversations", func() {
				for _, a := range convActions {
					for _, id := range []string{d.convID, d.deskConvID} {
						h.refused(t, 404, "CONVERSATION_NOT_FOUND", "POST", conv(id)+"/"+a, otherToken, actions[a])
						h.refused(t, 404, "CONVERSATION_NOT_FOUND", "POST", conv(id)+"/"+a, "", actions[a], withSession(d.otherAgent)...)
					}
				}
				// Nor does the hotel assign its conversation to seaside's member.
				e := h.refused(t, 400, "INVALID_REQUEST", "POST", conv(d.convID)+"/assign", adminToken, `{"assigned_to":"`+d.otherStaffID+`"}`)
				if e["field"] != "assigned_to" {
					t.Fatalf("refusal names %v", e["field"])
				}
			})
			after := hotelConv(t)
			for _, k := range []string{"status", "assigned_to", "service_request_id", "unread_count", "read_at", "resolution", "message_count"} {
				if fmt.Sprint(before[k]) != fmt.Sprint(after[k]) {
					t.Fatalf("the hotel's conversation's %s went from %v to %v", k, before[k], after[k])
				}
			}
		}},
		{"GET guests/{phone}", func(t *testing.T) {
			v := h.ok(t, 200, "GET", api+"guests/"+d.optGuest, staffToken, "")
			if v["opted_out"] != true {
				t.Fatalf("the hotel's view of the guest it opted out: %v", v)
			}
			v = h.ok(t, 200, "GET", api+"guests/"+d.optGuest, otherToken, "")
			nums, _ := v["numbers"].([]any)
			if v["opted_out"] != false || len(nums) != 1 {
				t.Fatalf("seaside's view of a guest only the hotel opted out: %v", v)
			}
			n := nums[0].(map[string]any)
			if n["from"] != seasideNum || n["opted_out"] != false || n["opt_source"] != nil {
				t.Fatalf("seaside's number: %v", n)
			}
			v = h.ok(t, 200, "GET", api+"guests/"+d.guest, otherToken, "")
			n = v["numbers"].([]any)[0].(map[string]any)
			if c := n["conversation_id"]; c == d.convID || c == d.deskConvID || c == nil {
				t.Fatalf("seaside's current conversation with the guest: %v", c)
			}
			// Opt-out is per number: seaside may still write to the guest.
			h.ok(t, 202, "POST", sendPath, otherToken, sendText(d.optGuest, "Seaside here: your towels are ready."))
			h.refused(t, 403, "GUEST_OPTED_OUT", "POST", sendPath, staffToken, sendText(d.optGuest, "Grand Plaza here."))
		}},
		{"POST guests/{phone}/{action}", func(t *testing.T) {
			h.unchanged(t, "seaside opting a guest out of the hotel's number", func() {
				for _, a := range []string{"opt-out", "opt-in"} {
					e := h.refused(t, 400, "INVALID_REQUEST", "POST", api+"guests/"+seedGuest+"/"+a, otherToken, `{"from":"`+hotelMain+`"}`)
					if e["field"] != "from" {
						t.Fatalf("refusal names %v", e["field"])
					}
				}
			})
			// seaside's own choices reach its number only.
			h.ok(t, 200, "POST", api+"guests/"+d.optGuest+"/opt-in", otherToken, "")
			h.refused(t, 403, "GUEST_OPTED_OUT", "POST", sendPath, staffToken, sendText(d.optGuest, "Grand Plaza here."))
			const guest = "+14155550188"
			h.openWindow(guest)
			h.ok(t, 200, "POST", api+"guests/"+guest+"/opt-out", otherToken, "")
			h.refused(t, 403, "GUEST_OPTED_OUT", "POST", sendPath, otherToken, sendText(guest, "Seaside here."))
			v := h.ok(t, 200, "GET", api+"guests/"+guest, staffToken, "")
			if v["opted_out"] != false {
				t.Fatalf("seaside's opt-out reached the hotel: %v", v)
			}
			h.ok(t, 202, "POST", sendPath, staffToken, sendText(guest, "Grand Plaza: checkout is at noon."))
		}},
		{"POST messages/send", func(t *testing.T) {
			h.unchanged(t, "seaside sending from the hotel's numbers or with its ids", func() {
				for _, from := range []string{hotelMain, hotelDesk} {
					e := h.refused(t, 400, "INVALID_REQUEST", "POST", sendPath, otherToken,
						`{"guest_phone":"`+seedGuest+`","from":"`+from+`","message_type":"text","content":{"text":"hi"}}`)
					if e["field"] != "from" {
						t.Fatalf("refusal names %v", e["field"])
					}
				}
				h.refused(t, 404, "MESSAGE_NOT_FOUND", "POST", sendPath, otherToken,
					`{"guest_phone":"`+seedGuest+`","message_type":"reaction","content":{"message_id":"`+d.msgID+`","emoji":"👍"}}`)
				h.refused(t, 404, "MEDIA_NOT_FOUND", "POST", sendPath, otherToken,
					`{"guest_phone":"`+seedGuest+`","message_type":"image","content":{"media_id":"`+d.mediaID+`"}}`)
				// Another tenant's staff id is nobody here, both ways.
				e := h.refused(t, 400, "INVALID_REQUEST", "POST", sendPath, staffToken,
					`{"guest_phone":"`+seedGuest+`","message_type":"text","content":{"text":"hi"},"staff_member_id":"`+d.otherStaffID+`"}`)
				e2 := h.refused(t, 400, "INVALID_REQUEST", "POST", sendPath, otherToken,
					`{"guest_phone":"`+seedGuest+`","message_type":"text","content":{"text":"hi"},"staff_member_id":"`+d.staffID+`"}`)
				if e["field"] != "staff_member_id" || e2["field"] != "staff_member_id" {
					t.Fatalf("refusals name %v, %v", e["field"], e2["field"])
				}
			})
			// The same Idempotency-Key is another message for another tenant.
			code, v, hdr := h.do("POST", sendPath, otherToken, sendText(seedGuest, "Your room is ready"), "Idempotency-Key", hotelIdemKey)
			if code != 202 || v["message_id"] == d.msgID || hdr.Get("Idempotent-Replayed") != "" {
				t.Fatalf("seaside with the hotel's Idempotency-Key: %d %v %v", code, v, hdr)
			}
			st := h.ok(t, 200, "GET", api+"messages/"+v["message_id"].(string)+"/status", otherToken, "")
			if st["from"] != seasideNum {
				t.Fatalf("seaside's message: %v", st)
			}
			h.refused(t, 404, "MESSAGE_NOT_FOUND", "GET", api+"messages/"+v["message_id"].(string)+"/status", staffToken, "")
			// Naming the hotel's conversations never joins them, nor tells
			// seaside they exist: the name is as free as any unused one,
			// and becomes seaside's own conversation.
			before := hotelConv(t)
			for _, id := range []string{d.convID, d.deskConvID} {
				v := h.ok(t, 202, "POST", sendPath, otherToken, `{"guest_phone":"`+d.guest+`","message_type":"text","content":{"text":"Seaside here."},"conversation_id":"`+id+`"}`)
				if v["conversation_id"] != id {
					t.Fatalf("seaside naming %s: %v", id, v)
				}
				own := h.ok(t, 200, "GET", conv(id), otherToken, "")
				if own["from"] != seasideNum || own["message_count"] != 1.0 {
					t.Fatalf("seaside's conversation %s: %v", id, own)
				}
			}
			after := hotelConv(t)
			if before["message_count"] != after["message_count"] {
				t.Fatalf("seaside's message joined the hotel's conversation: %v -> %v", before["message_count"], after["message_count"])
			}
			desk := h.ok(t, 200, "GET", conv(d.deskConvID), staffToken, "")
			if desk["message_count"] != 1.0 {
				t.Fatalf("the hotel's named conversation: %v", desk)
			}
		}},
		{"POST messages/batch-send", func(t *testing.T) {
			h.unchanged(t, "seaside's batch from the hotel's number or with its template", func() {
				e := h.refused(t, 400, "INVALID_REQUEST", "POST", batchPath, otherToken,
					`{"from":"`+hotelMain+`","messages":[{"phone":"`+seedGuest+`","content":"hi"}]}`)
				if e["field"] != "from" {
					t.Fatalf("refusal names %v", e["field"])
				}
				h.refused(t, 404, "TEMPLATE_NOT_FOUND", "POST", batchPath, otherToken,
					`{"template_name":"welcome_checkin","language":"en","messages":[{"phone":"`+seedGuest+`","parameters":{"guest_name":"A","hotel_name":"B","room_number":"1","checkin_time":"2","checkout_date":"3"}}]}`)
			})
			v := h.ok(t, 202, "POST", batchPath, otherToken, `{"messages":[{"phone":"`+seedGuest+`","content":"Seaside: breakfast at 7"}]}`)
			if v["from"] != seasideNum {
				t.Fatalf("seaside's batch: %v", v)
			}
			h.refused(t, 404, "BATCH_NOT_FOUND", "GET", api+"batches/"+v["batch_id"].(string), staffToken, "")
			h.refused(t, 404, "BATCH_NOT_FOUND", "POST", api+"batches/"+v["batch_id"].(string)+"/cancel", adminToken, "")
			h.ok(t, 200, "GET", api+"batches/"+v["batch_id"].(string), otherToken, "")
		}},
		{"POST messages/send-media", func(t *testing.T) {
			h.unchanged(t, "seaside sending the hotel's upload", func() {
				e := h.refused(t, 404, "MEDIA_NOT_FOUND", "POST", sendMediaPath, otherToken,
					`{"guest_phone":"`+seedGuest+`","media_id":"`+d.mediaID+`","media_type":"image"}`)
				if e["media_id"] != d.mediaID {
					t.Fatalf("details %v", e)
				}
				e = h.refused(t, 400, "INVALID_REQUEST", "POST", sendMediaPath, otherToken,
					`{"guest_phone":"`+seedGuest+`","from":"`+hotelMain+`","media_url":"https://cdn.example.com/a.jpg","media_type":"image"}`)
				if e["field"] != "from" {
					t.Fatalf("refusal names %v", e["field"])
				}
			})
		}},
		{"POST messages/send-interactive", func(t *testing.T) {
			h.unchanged(t, "seaside sending an interactive message from the hotel's number", func() {
				e := h.refused(t, 400, "INVALID_REQUEST", "POST", interactivePath, otherToken,
					`{"guest_phone":"`+seedGuest+`","from":"`+hotelDesk+`","interactive_type":"buttons","content":{"text":"Late checkout?","buttons":[{"id":"yes","title":"Yes"}]}}`)
				if e["field"] != "from" {
					t.Fatalf("refusal names %v", e["field"])
				}
			})
		}},
		{"POST media/upload", func(t *testing.T) {
			code, v := h.post(uploadPath, otherToken, d.uploadCT, d.upload)
			if code != 201 || v["media_id"] == d.mediaID || v["media_id"] == nil {
				t.Fatalf("seaside's upload of the same bytes: %d %v", code, v)
			}
			id := v["media_id"].(string)
			if rec, err := h.store.Media(context.Background(), id); err != nil || rec.TenantID != "seaside" {
				t.Fatalf("seaside's upload is filed as %+v %v", rec, err)
			}
			h.unchanged(t, "the hotel sending seaside's upload", func() {
				h.refused(t, 404, "MEDIA_NOT_FOUND", "POST", sendMediaPath, staffToken, `{"guest_phone":"`+seedGuest+`","media_id":"`+id+`","media_type":"image"}`)
			})
			h.ok(t, 202, "POST", sendMediaPath, otherToken, `{"guest_phone":"`+seedGuest+`","media_id":"`+id+`","media_type":"image"}`)
		}},
		{"GET media/{id}", func(t *testing.T) {
			// Knowing an id and holding a token opens nothing: only the
			// upload's signed URL does.
			for _, tok := range []string{otherToken, otherAdminToken} {
				h.refused(t, 403, "FORBIDDEN", "GET", api+"media/"+d.mediaID, tok, "")
			}
			code, v := h.upload(otherToken, "logo.png", mediatest.PNG(t), "image")
			if code != 201 {
				t.Fatalf("seaside upload: %d %v", code, v)
			}
			u, err := url.Parse(v["media_url"].(string))
			must(t, err)
			h.refused(t, 403, "FORBIDDEN", "GET", api+"media/"+d.mediaID+"?"+u.RawQuery, otherToken, "")
		}},
		{"GET webhooks", func(t *testing.T) {
			h.refused(t, 404, "NOT_FOUND", "GET", api+"webhooks", otherAdminToken, "")
			v := h.ok(t, 200, "GET", api+"webhooks", adminToken, "")
			if !strings.HasSuffix(v["webhook_url"].(string), "/grand-plaza") {
				t.Fatalf("the hotel's webhook: %v", v)
			}
		}},
		{"POST webhooks/test", func(t *testing.T) {
			h.unchanged(t, "seaside testing a webhook it has not configured", func() {
				h.refused(t, 404, "NOT_FOUND", "POST", api+"webhooks/test", otherAdminToken, "")
			})
			if n := h.hookHits.gp.Load(); n != 0 {
				t.Fatalf("seaside's test reached the hotel's endpoint %d times", n)
			}
		}},
		{"POST webhooks/configure", func(t *testing.T) {
			v := h.ok(t, 200, "POST", api+"webhooks/configure", otherAdminToken, h.hookConfig("seaside"))
			if v["signing_secret"] == d.hookSecret {
				t.Fatal("seaside was given the hotel's signing secret")
			}
			hotel := h.ok(t, 200, "GET", api+"webhooks", adminToken, "")
			if !strings.HasSuffix(hotel["webhook_url"].(string), "/grand-plaza") || hotel["verify_token"] != "vt-grand-plaza" ||
				hotel["signing_secret"] != "…"+d.hookSecret[len(d.hookSecret)-4:] {
				t.Fatalf("the hotel's webhook after seaside configured its own: %v", hotel)
			}
			h.ok(t, 200, "POST", api+"webhooks/test", otherAdminToken, "")
			if h.hookHits.seaside.Load() != 1 || h.hookHits.gp.Load() != 0 {
				t.Fatalf("seaside's test delivery went to seaside %d, hotel %d times", h.hookHits.seaside.Load(), h.hookHits.gp.Load())
			}
		}},
		{"DELETE webhooks", func(t *testing.T) {
			h.ok(t, 204, "DELETE", api+"webhooks", otherAdminToken, "")
			h.refused(t, 404, "NOT_FOUND", "GET", api+"webhooks", otherAdminToken, "")
			h.ok(t, 200, "GET", api+"webhooks", adminToken, "")
		}},
		{"GET settings", func(t *testing.T) {
			v := h.ok(t, 200, "GET", api+"settings", otherAdminToken, "")
			if v["tenant_id"] != "seaside" || fmt.Sprint(v["senders"]) != "["+seasideNum+"]" || v["opt_out_reply"] != settings.Default().OptOutReply {
				t.Fatalf("seaside's settings: %v", v)
			}
			if v := h.ok(t, 200, "GET", api+"settings", adminToken, ""); v["opt_out_reply"] != d.reply {
				t.Fatalf("the hotel's settings: %v", v)
			}
		}},
		{"PUT settings", func(t *testing.T) {
			v := h.ok(t, 200, "PUT", api+"settings", otherAdminToken, `{"opt_out_reply":"Seaside: unsubscribed.","window_enforcement":false}`)
			if v["tenant_id"] != "seaside" || v["opt_out_reply"] != "Seaside: unsubscribed." {
				t.Fatalf("seaside's new settings: %v", v)
			}
			hotel := h.ok(t, 200, "GET", api+"settings", adminToken, "")
			if hotel["opt_out_reply"] != d.reply || hotel["window_enforcement"] != true {
				t.Fatalf("the hotel's settings after seaside's change: %v", hotel)
			}
			// The hotel's window rule still holds.
			h.srv.settings.Forget("grand-plaza")
			h.refused(t, 403, "MESSAGE_WINDOW_EXPIRED", "POST", sendPath, staffToken, sendText("+14155550999", "hi"))
		}},
		{"GET admin/dead-letters", func(t *testing.T) {
			v := h.ok(t, 200, "GET", api+"admin/dead-letters", adminToken, "")
			if got := ids(v, "dead_letters", "message_id"); !slices.Equal(got, []string{d.deadID}) {
				t.Fatalf("the hotel's dead letters: %v", got)
			}
			v = h.ok(t, 200, "GET", api+"admin/dead-letters?limit=500", otherAdminToken, "")
			if got := ids(v, "dead_letters", "message_id"); len(got) != 0 || v["next_cursor"] != nil {
				t.Fatalf("seaside's dead letters: %v", v)
			}
		}},
		{"POST admin/dead-letters/{id}/requeue", func(t *testing.T) {
			h.unchanged(t, "seaside requeueing the hotel's dead letter", func() {
				h.refused(t, 404, "MESSAGE_NOT_FOUND", "POST", api+"admin/dead-letters/"+d.deadID+"/requeue", otherAdminToken, "")
			})
			v := h.ok(t, 200, "GET", api+"messages/"+d.deadID+"/status", staffToken, "")
			if v["status"] != "failed" {
				t.Fatalf("the hotel's dead letter after seaside's requeue: %v", v)
			}
		}},
		{"POST templates", func(t *testing.T) {
			// Template names are the tenant's own: seaside may submit one
			// the hotel has, and each keeps its own.
			const seasideBody = "Hi {{1}}, checkout at Seaside moves to {{2}} for room {{3}}. Fee: {{4}} per extra hour."
			h.ok(t, 201, "POST", templatesPath, otherAdminToken, lateCheckout(hotelTemplate, seasideBody))
			text := func(v map[string]any) string {
				for _, c := range v["components"].([]any) {
					if c := c.(map[string]any); c["type"] == "BODY" {
						return c["text"].(string)
					}
				}
				return ""
			}
			if got := text(h.ok(t, 200, "GET", templatesPath+"/"+hotelTemplate, staffToken, "")); got != hotelTemplateBody {
				t.Fatalf("the hotel's template body: %q", got)
			}
			if got := text(h.ok(t, 200, "GET", templatesPath+"/"+hotelTemplate, otherToken, "")); got != seasideBody {
				t.Fatalf("seaside's template body: %q", got)
			}
			if names := ids(h.ok(t, 200, "GET", templatesPath, otherToken, ""), "templates", "name"); !slices.Equal(names, []string{hotelTemplate}) {
				t.Fatalf("seaside's templates: %v", names)
			}
		}},
		{"POST webhooks/dead-letters/redeliver", func(t *testing.T) {
			h.ok(t, 200, "POST", api+"webhooks/configure", otherAdminToken, h.hookConfig("seaside"))
			v := h.ok(t, 202, "POST", api+"webhooks/dead-letters/redeliver", otherAdminToken, "")
			if v["scheduled"] != 0.0 {
				t.Fatalf("seaside, which has no dead deliveries, redelivered %v", v)
			}
		}},
		{"POST webhooks/dead-letters/{id}/redeliver", func(t *testing.T) {
			h.refused(t, 404, "NOT_FOUND", "POST", api+"webhooks/dead-letters/evt_0_1-0/redeliver", otherAdminToken, "")
		}},
		{"GET inbox/stream", func(t *testing.T) {
			mine, theirs := h.openStream(staffToken), h.openStream(otherToken)
			v := h.ok(t, 202, "POST", sendPath, staffToken, sendText(d.guest, "Your taxi is here."))
			next(t, mine, "message_status", func(e map[string]any) bool { return e["message_id"] == v["message_id"] })
			for {
				select {
				case ev := <-theirs:
					if ev.name != "ready" && (ev.data["conversation_id"] == d.convID || ev.data["message_id"] == v["message_id"]) {
						t.Fatalf("seaside's stream got the hotel's %s %v", ev.name, ev.data)
					}
					continue
				default:
				}
				break
			}
		}},
		{"POST auth/login", func(t *testing.T) {
			// A member signs in to their own tenant only.
			for _, c := range []struct{ tenant, user string }{{"grand-plaza", "sam"}, {"seaside", "alice"}, {"seaside", "boss"}} {
				code, v, hdr := h.do("POST", api+"auth/login", "", `{"tenant":"`+c.tenant+`","username":"`+c.user+`","password":"`+testPassword+`"}`)
				if code != 401 || errCode(t, v) != "UNAUTHORIZED" || sessionCookieOf(hdr) != nil {
					t.Fatalf("%s at %s: %d %v", c.user, c.tenant, code, v)
				}
			}
		}},
		{"GET auth/me", func(t *testing.T) {
			for _, c := range []struct {
				s  staffSession
				id string
			}{{d.agent, d.staffID}, {d.otherAgent, d.otherStaffID}} {
				code, v, _ := h.do("GET", api+"auth/me", "", "", withSession(c.s)...)
				if code != 200 || v["staff"].(map[string]any)["id"] != c.id {
					t.Fatalf("me: %d %v, want %s", code, v, c.id)
				}
			}
		}},
		{"GET staff", func(t *testing.T) {
			for _, c := range []struct {
				token string
				s     *staffSession
				want  []string
			}{
				{otherToken, nil, []string{"sam"}}, {otherAdminToken, nil, []string{"sam"}}, {"", &d.otherAgent, []string{"sam"}},
				{staffToken, nil, []string{"alice", "boss"}}, {"", &d.agent, []string{"alice", "boss"}},
			} {
				var hdr []string
				if c.s != nil {
					hdr = withSession(*c.s)
				}
				code, v, _ := h.do("GET", api+"staff?include_disabled=true", c.token, "", hdr...)
				if got := ids(v, "staff", "username"); code != 200 || !slices.Equal(got, c.want) {
					t.Fatalf("list: %d %v, want %v", code, got, c.want)
				}
			}
		}},
		{"GET staff/{id}", func(t *testing.T) {
			h.refused(t, 404, "STAFF_NOT_FOUND", "GET", api+"staff/"+d.staffID, otherAdminToken, "")
			h.refused(t, 404, "STAFF_NOT_FOUND", "GET", api+"staff/"+d.otherStaffID, adminToken, "")
		}},
		{"PATCH staff/{id}", func(t *testing.T) {
			h.unchanged(t, "seaside changing the hotel's member", func() {
				h.refused(t, 404, "STAFF_NOT_FOUND", "PATCH", api+"staff/"+d.staffID, otherAdminToken, `{"disabled":true,"role":"admin"}`)
			})
			h.ok(t, 200, "GET", api+"auth/me", "", "", withSession(d.agent)...)
		}},
		{"POST staff/{id}/password", func(t *testing.T) {
			h.unchanged(t, "seaside resetting the hotel's member's password", func() {
				h.refused(t, 404, "STAFF_NOT_FOUND", "POST", api+"staff/"+d.staffID+"/password", otherAdminToken, `{"password":"seaside-knows-it"}`)
			})
			h.ok(t, 200, "GET", api+"auth/me", "", "", withSession(d.agent)...)
		}},
		{"PATCH staff/me", func(t *testing.T) {
			v := h.ok(t, 200, "PATCH", api+"staff/me", "", `{"availability":"away"}`, withSession(d.otherAgent)...)
			if v["id"] != d.otherStaffID {
				t.Fatalf("seaside's availability changed %v", v)
			}
			if v := h.ok(t, 200, "GET", api+"staff/"+d.staffID, adminToken, ""); v["availability"] != "offline" {
				t.Fatalf("the hotel's member: %v", v)
			}
		}},
		{"POST staff", func(t *testing.T) {
			// User names are the tenant's own: seaside may have an alice.
			v := h.ok(t, 201, "POST", api+"staff", otherAdminToken, `{"username":"alice","name":"Alice of Seaside","role":"agent","password":"seaside-password"}`)
			if v["id"] == d.staffID {
				t.Fatal("seaside's alice is the hotel's")
			}
			if got := ids(h.ok(t, 200, "GET", api+"staff", adminToken, ""), "staff", "name"); slices.Contains(got, "Alice of Seaside") {
				t.Fatalf("the hotel lists seaside's member: %v", got)
			}
			h.login("grand-plaza", "alice", testPassword)
			if code, _, _ := h.do("POST", api+"auth/login", "", `{"tenant":"grand-plaza","username":"alice","password":"seaside-password"}`); code != 401 {
				t.Fatalf("seaside's password opened the hotel's alice: %d", code)
			}
		}},
		{"POST auth/logout", func(t *testing.T) {
			other := h.login("seaside", "sam", testPassword)
			h.ok(t, 204, "POST", api+"auth/logout", "", "", withSession(other)...)
			h.ok(t, 200, "GET", api+"auth/me", "", "", withSession(d.agent)...)
			h.ok(t, 200, "GET", api+"auth/me", "", "", withSession(d.otherAgent)...)
		}},
	}
}

func TestTenantsNeverSeeEachOther(t *testing.T) {
	h := newAccessHarness(t)
	d := h.makeHotelData(t)
	for _, c := range isolationChecks(h, d) {
		t.Run(c.key, c.run)
	}
}

func TestEveryEndpointIsCoveredByTheAccessTests(t *testing.T) {
	table := map[string]*endpoint{}
	eps := apiEndpoints()
	for i := range eps {
		key := endpointKey(&eps[i])
		if table[key] != nil {
			t.Errorf("%s is twice in the table", key)
		}
		table[key] = &eps[i]
	}
	// Plausible ids, so that every call's path reaches its row.
	calls := accessCalls(nil, &hotelData{msgID: message.NewID(1, 1), batchID: "bat_x_1", guest: seedGuest, convID: "conv_x_1", inboundID: "wamid.x",
		mediaID: mediakit.NewID(), deadID: message.NewID(2, 1), staffID: redis.NewStaffID()})
	checks := map[string]bool{}
	for _, c := range isolationChecks(nil, &hotelData{}) {
		if checks[c.key] {
			t.Errorf("isolation check %s is there twice", c.key)
		}
		checks[c.key] = true
	}
	for key, e := range table {
		switch {
		case e.public && !slices.Contains(publicEndpoints, key):
			t.Errorf("%s is public: add it to publicEndpoints with a check of its own credential in TestEveryEndpointNeedsAToken", key)
		case !e.public && calls[key].method == "":
			t.Errorf("%s has no call in accessCalls: TestEveryEndpointNeedsAToken does not try it without a token", key)
		}
		// Every row, not only those naming a resource: lists and sends
		// may leak too.
		if !checks[key] {
			t.Errorf("%s has no isolation check in isolationChecks", key)
		}
	}
	for key, c := range calls {
		if got := routeOf(c.method, c.path); got != key {
			t.Errorf("accessCalls' %s (%s %s) reaches %q", key, c.method, c.path, got)
		}
	}
	for key := range checks {
		if table[key] == nil {
			t.Errorf("isolationChecks has %s, which is not in the table", key)
		}
	}
	for _, key := range publicEndpoints {
		if e := table[key]; e == nil || !e.public {
			t.Errorf("publicEndpoints has %s, which is not a public row of the table", key)
		}
	}
	for _, key := range adminEndpoints {
		if _, ok := adminAnswers[key]; !ok || table[key] == nil {
			t.Errorf("admin endpoint %s has no expected answer or is not in the table", key)
		}
	}
}
