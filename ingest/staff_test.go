package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/password"
	"github.com/wagate/wagate/store/redis"
)

const (
	staffPath    = "/api/v1/whatsapp/staff"
	loginPath    = "/api/v1/whatsapp/auth/login"
	logoutPath   = "/api/v1/whatsapp/auth/logout"
	mePath       = "/api/v1/whatsapp/auth/me"
	convsPath    = "/api/v1/whatsapp/conversations"
	testPassword = "correct-horse-battery"
)

// staffSession is a signed-in member: the session cookie's value, the
// CSRF token and the member's id.
type staffSession struct{ cookie, csrf, id string }

// fastPasswords makes a harness hash passwords cheaply (a -race build
// runs argon2id's real cost slowly); the algorithm is the same.
func fastPasswords(c *Config) { c.PasswordParams = password.Fast() }

// addStaff creates a member of the admin token's tenant with
// testPassword, through the API, and returns its id.
func (h *harness) addStaff(admin, username, role string, depts ...string) string {
	h.t.Helper()
	if depts == nil {
		depts = []string{}
	}
	b, _ := json.Marshal(map[string]any{"username": username, "name": strings.ToUpper(username[:1]) + username[1:], "role": role,
		"departments": depts, "password": testPassword})
	code, v, _ := h.do("POST", staffPath, admin, string(b))
	if code != 201 {
		h.t.Fatalf("create %s: %d %v", username, code, v)
	}
	return v["id"].(string)
}

// login signs username of tenant in and returns the session.
func (h *harness) login(tenant, username, pw string) staffSession {
	h.t.Helper()
	code, v, hdr := h.do("POST", loginPath, "", `{"tenant":"`+tenant+`","username":"`+username+`","password":"`+pw+`"}`)
	if code != 200 {
		h.t.Fatalf("login %s/%s: %d %v", tenant, username, code, v)
	}
	c := sessionCookieOf(hdr)
	if c == nil {
		h.t.Fatalf("login %s: no session cookie in %v", username, hdr)
	}
	return staffSession{cookie: c.Value, csrf: v["csrf_token"].(string), id: v["staff"].(map[string]any)["id"].(string)}
}

// sessionCookieOf is the wagate_session cookie an answer sets, nil if none.
func sessionCookieOf(hdr http.Header) *http.Cookie {
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

// sdo makes a call with the session's cookie and CSRF token.
func (h *harness) sdo(s staffSession, method, path, body string, hdr ...string) (int, map[string]any, http.Header) {
	h.t.Helper()
	return h.do(method, path, "", body, append([]string{"Cookie", sessionCookie + "=" + s.cookie, csrfHeader, s.csrf}, hdr...)...)
}

func TestLoginSetsASessionCookieThatMeAndLogoutUse(t *testing.T) {
	h := newHarness(t, fastPasswords)
	id := h.addStaff(adminToken, "alice", "agent", "Front Desk")

	code, v, hdr := h.do("POST", loginPath, "", `{"tenant":"grand-plaza","username":"Alice","password":"`+testPassword+`"}`)
	if code != 200 {
		t.Fatalf("login: %d %v", code, v)
	}
	raw := hdr.Get("Set-Cookie")
	c := sessionCookieOf(hdr)
	if c == nil || len(c.Value) != 43 || strings.ContainsAny(c.Value, "+/=") || c.Path != "/" || !c.HttpOnly || !c.Secure ||
		c.SameSite != http.SameSiteStrictMode || c.MaxAge != 43200 {
		t.Fatalf("cookie %q: want a 43-character base64url value, Path=/, HttpOnly, Secure, SameSite=Strict, Max-Age=43200", raw)
	}
	st := v["staff"].(map[string]any)
	if st["id"] != id || st["username"] != "alice" || st["role"] != "agent" || st["availability"] != "offline" ||
		st["disabled"] != false || !slices.Equal(strSlice(st["departments"]), []string{"front_desk"}) {
		t.Fatalf("staff %v", st)
	}
	csrf, _ := v["csrf_token"].(string)
	if len(csrf) < 32 || csrf == c.Value {
		t.Fatalf("csrf_token %q", csrf)
	}
	body, _ := json.Marshal(v)
	if strings.Contains(string(body), "argon2") || strings.Contains(string(body), testPassword) {
		t.Fatalf("the answer shows the password or its hash: %s", body)
	}
	s := staffSession{cookie: c.Value, csrf: csrf, id: id}

	// /auth/me gives the member and the token back to a page that has only
	// the cookie.
	code, v, hdr = h.do("GET", mePath, "", "", "Cookie", sessionCookie+"="+s.cookie)
	if code != 200 || v["csrf_token"] != csrf || v["staff"].(map[string]any)["id"] != id {
		t.Fatalf("me: %d %v", code, v)
	}
	// Each use renews the cookie with the session.
	if again := sessionCookieOf(hdr); again == nil || again.Value != s.cookie || again.MaxAge != 43200 || !again.HttpOnly || !again.Secure {
		t.Fatalf("the cookie after a use: %q", hdr.Get("Set-Cookie"))
	}
	// A token is no session.
	if code, v, _ := h.do("GET", mePath, staffToken, ""); code != 403 || errDetails(v)["reason"] != "session_required" {
		t.Fatalf("me with a token: %d %v", code, v)
	}
	if code, v, _ := h.do("GET", mePath, "", ""); code != 401 || errCode(t, v) != "UNAUTHORIZED" {
		t.Fatalf("me without anything: %d %v", code, v)
	}

	// Logout is a change: without the CSRF token it is refused.
	code, v, _ = h.do("POST", logoutPath, "", "", "Cookie", sessionCookie+"="+s.cookie)
	if code != 403 || errCode(t, v) != "FORBIDDEN" || v["error"].(map[string]any)["message"] != "CSRF token missing or wrong" {
		t.Fatalf("logout without CSRF: %d %v", code, v)
	}
	code, _, hdr = h.sdo(s, "POST", logoutPath, "")
	if gone := sessionCookieOf(hdr); code != 204 || gone == nil || gone.MaxAge >= 0 || gone.Value != "" {
		t.Fatalf("logout: %d, cookie %q", code, hdr.Get("Set-Cookie"))
	}
	code, v, hdr = h.sdo(s, "GET", mePath, "")
	if code != 401 || errCode(t, v) != "UNAUTHORIZED" || sessionCookieOf(hdr) == nil {
		t.Fatalf("me after logout: %d %v (the answer should clear the cookie)", code, v)
	}
}

func TestLoginRefusalsAreOneAnswer(t *testing.T) {
	h := newHarness(t, fastPasswords)
	h.addStaff(adminToken, "alice", "agent")
	gone := h.addStaff(adminToken, "gone", "agent")
	h.do("PATCH", staffPath+"/"+gone, adminToken, `{"disabled":true}`)
	f := func(name, tenant, user, pw string) {
		t.Run(name, func(t *testing.T) {
			b, _ := json.Marshal(map[string]string{"tenant": tenant, "username": user, "password": pw})
			code, v, hdr := h.do("POST", loginPath, "", string(b))
			if code != 401 || errCode(t, v) != "UNAUTHORIZED" || v["error"].(map[string]any)["message"] != "Wrong tenant, user name or password" {
				t.Fatalf("%d %v", code, v)
			}
			if sessionCookieOf(hdr) != nil {
				t.Fatalf("a refused login set a cookie: %q", hdr.Get("Set-Cookie"))
			}
			if len(pw) > 3 && strings.Contains(mustJSON(v), pw) {
				t.Fatalf("the answer repeats the password: %v", v)
			}
		})
	}
	f("wrong password", "grand-plaza", "alice", "wrong-password-1")
	f("unknown user", "grand-plaza", "nobody", testPassword)
	f("unknown tenant", "nowhere", "alice", testPassword)
	f("another tenant's name for the hotel", "seaside", "alice", testPassword)
	f("a user name no member can have", "grand-plaza", "a:b", testPassword)
	f("disabled member", "grand-plaza", "gone", testPassword)
	f("empty-ish password", "grand-plaza", "alice", " ")

	bad := func(name, body, field string) {
		t.Run(name, func(t *testing.T) {
			code, v, _ := h.do("POST", loginPath, "", body)
			if code != 400 || errCode(t, v) != "INVALID_REQUEST" || (field != "" && errDetails(v)["field"] != field) {
				t.Fatalf("%d %v, want 400 naming %q", code, v, field)
			}
		})
	}
	bad("no tenant", `{"username":"alice","password":"`+testPassword+`"}`, "tenant")
	bad("no password", `{"tenant":"grand-plaza","username":"alice"}`, "password")
	bad("unknown field", `{"tenant":"grand-plaza","username":"alice","password":"x","remember":true}`, "remember")
	bad("password too long", `{"tenant":"grand-plaza","username":"alice","password":"`+strings.Repeat("p", 129)+`"}`, "password")
	bad("not an object", `["alice"]`, "")
}

func TestFailedLoginsAreLimitedPerTenantAndUserName(t *testing.T) {
	h := newHarness(t, fastPasswords)
	h.addStaff(adminToken, "alice", "agent")
	h.addStaff(adminToken, "bruno", "supervisor")
	seasideAdmin := "seaside-admin-token"
	h.srv.tokens.Add(seasideAdmin, Principal{Tenant: h.srv.tokens.tenant("seaside"), Role: RoleAdmin}) //nolint:errcheck // checked by the logins below
	h.addStaff(seasideAdmin, "alice", "agent")
	try := func(tenant, user, pw string) (int, map[string]any, http.Header) {
		return h.do("POST", loginPath, "", `{"tenant":"`+tenant+`","username":"`+user+`","password":"`+pw+`"}`)
	}
	for i := range 10 {
		if code, v, _ := try("grand-plaza", "alice", "wrong-password-"+strconv.Itoa(i)); code != 401 {
			t.Fatalf("failure %d: %d %v", i+1, code, v)
		}
	}
	// The 11th within the window is refused, the right password too.
	code, v, hdr := try("grand-plaza", "alice", testPassword)
	ra, _ := strconv.Atoi(hdr.Get("Retry-After"))
	if code != 429 || errCode(t, v) != "RATE_LIMIT_EXCEEDED" || ra < 1 || ra > 900 || sessionCookieOf(hdr) != nil {
		t.Fatalf("after 10 failures: %d %v Retry-After %q", code, v, hdr.Get("Retry-After"))
	}
	// Another user name, and the same one at another tenant, are not held.
	h.login("grand-plaza", "bruno", testPassword)
	h.login("seaside", "alice", testPassword)

	// A success forgets the failures before it.
	for range 9 {
		try("grand-plaza", "bruno", "wrong-password")
	}
	h.login("grand-plaza", "bruno", testPassword)
	for i := range 10 {
		if code, v, _ := try("grand-plaza", "bruno", "wrong-password"); code != 401 {
			t.Fatalf("failure %d after a success: %d %v", i+1, code, v)
		}
	}
	if code, _, _ := try("grand-plaza", "bruno", testPassword); code != 429 {
		t.Fatalf("bruno after 10 new failures: %d", code)
	}
}

func TestASessionsChangesNeedItsCSRFToken(t *testing.T) {
	h := newHarness(t, fastPasswords)
	h.addStaff(adminToken, "alice", "agent")
	s := h.login("grand-plaza", "alice", testPassword)
	send := sendText(seedGuest, "Your room is ready")
	cookie := []string{"Cookie", sessionCookie + "=" + s.cookie}
	before := h.queued()
	for _, c := range []struct {
		name string
		hdr  []string
	}{
		{"no token", cookie},
		{"a wrong token", append(slices.Clone(cookie), csrfHeader, s.csrf[:len(s.csrf)-1]+"x")},
		{"an empty token", append(slices.Clone(cookie), csrfHeader, "")},
		{"the cookie as token", append(slices.Clone(cookie), csrfHeader, s.cookie)},
	} {
		code, v, _ := h.do("POST", sendPath, "", send, c.hdr...)
		if code != 403 || errCode(t, v) != "FORBIDDEN" || v["error"].(map[string]any)["message"] != "CSRF token missing or wrong" {
			t.Fatalf("%s: %d %v", c.name, code, v)
		}
	}
	if h.queued() != before {
		t.Fatal("a send refused for its CSRF token was queued")
	}
	// Reads need no token; a change with it goes through, as the member.
	if code, v, _ := h.do("GET", convsPath, "", "", cookie...); code != 200 {
		t.Fatalf("list without CSRF: %d %v", code, v)
	}
	code, v, _ := h.sdo(s, "POST", sendPath, send)
	if code != 202 {
		t.Fatalf("send with CSRF: %d %v", code, v)
	}
	st := h.ok202Status(v["message_id"].(string))
	if st["staff_member_id"] != s.id {
		t.Fatalf("a member's send is recorded as %v, want %s", st["staff_member_id"], s.id)
	}
	// An Authorization header is judged alone: a machine's token with a
	// stray cookie needs no CSRF token.
	if code, v, _ := h.do("POST", sendPath, staffToken, send, cookie...); code != 202 {
		t.Fatalf("token with a cookie: %d %v", code, v)
	}
	// A cookie that is no session.
	if code, v, _ := h.do("GET", convsPath, "", "", "Cookie", sessionCookie+"=not-a-session"); code != 401 || errCode(t, v) != "UNAUTHORIZED" {
		t.Fatalf("a made-up cookie: %d %v", code, v)
	}
}

// ok202Status reads a message's status as the hotel's staff token.
func (h *harness) ok202Status(id string) map[string]any {
	h.t.Helper()
	code, v, _ := h.do("GET", "/api/v1/whatsapp/messages/"+id+"/status", staffToken, "")
	if code != 200 {
		h.t.Fatalf("status of %s: %d %v", id, code, v)
	}
	return v
}

func TestStaffAreManagedByAdmins(t *testing.T) {
	h := newHarness(t, fastPasswords)
	alice := h.addStaff(adminToken, "alice", "agent", "front_desk")
	h.addStaff(adminToken, "hugo", "agent", "housekeeping", "Maintenance")
	boss := h.addStaff(adminToken, "boss", "admin")

	bad := func(name, body, field string, status int, code string) {
		t.Run(name, func(t *testing.T) {
			n := func() int {
				c, v, _ := h.do("GET", staffPath+"?include_disabled=true", adminToken, "")
				if c != 200 {
					t.Fatalf("list: %d %v", c, v)
				}
				return len(v["staff"].([]any))
			}
			before := n()
			c, v, _ := h.do("POST", staffPath, adminToken, body)
			if c != status || errCode(t, v) != code || errDetails(v)["field"] != field {
				t.Fatalf("%d %v, want %d %s naming %s", c, v, status, code, field)
			}
			if n() != before {
				t.Fatal("a refused creation made a member")
			}
		})
	}
	member := func(over map[string]any) string {
		m := map[string]any{"username": "carla", "name": "Carla", "role": "agent", "departments": []string{"spa"}, "password": testPassword}
		for k, v := range over {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return mustJSON(m)
	}
	bad("taken user name", member(map[string]any{"username": "alice"}), "username", 409, "USERNAME_TAKEN")
	bad("upper case", member(map[string]any{"username": "Carla"}), "username", 400, "INVALID_REQUEST")
	bad("one letter", member(map[string]any{"username": "c"}), "username", 400, "INVALID_REQUEST")
	bad("a space", member(map[string]any{"username": "carla r"}), "username", 400, "INVALID_REQUEST")
	bad("no name", member(map[string]any{"name": "  "}), "name", 400, "INVALID_REQUEST")
	bad("long name", member(map[string]any{"name": strings.Repeat("n", 101)}), "name", 400, "INVALID_REQUEST")
	bad("unknown role", member(map[string]any{"role": "manager"}), "role", 400, "INVALID_REQUEST")
	bad("short password", member(map[string]any{"password": "short-pw"}), "password", 400, "INVALID_REQUEST")
	bad("long password", member(map[string]any{"password": strings.Repeat("p", 129)}), "password", 400, "INVALID_REQUEST")
	bad("no password", member(map[string]any{"password": nil}), "password", 400, "INVALID_REQUEST")
	bad("empty department", member(map[string]any{"departments": []string{"spa", " "}}), "departments[1]", 400, "INVALID_REQUEST")
	bad("long department", member(map[string]any{"departments": []string{strings.Repeat("d", 41)}}), "departments[0]", 400, "INVALID_REQUEST")
	bad("unknown field", member(map[string]any{"email": "c@example.com"}), "email", 400, "INVALID_REQUEST")

	// The list: admins may ask for disabled members, others never see them.
	h.do("PATCH", staffPath+"/"+alice, adminToken, `{"disabled":true}`)
	names := func(token, q string) []string {
		t.Helper()
		c, v, _ := h.do("GET", staffPath+q, token, "")
		if c != 200 {
			t.Fatalf("list%s: %d %v", q, c, v)
		}
		return ids(v, "staff", "username")
	}
	for _, c := range []struct {
		token, q string
		want     []string
	}{
		{adminToken, "", []string{"boss", "hugo"}},
		{adminToken, "?include_disabled=true", []string{"alice", "boss", "hugo"}},
		{staffToken, "?include_disabled=true", []string{"boss", "hugo"}},
		{adminToken, "?department=maintenance", []string{"hugo"}},
		{adminToken, "?department=Front%20Desk&include_disabled=true", []string{"alice"}},
		{adminToken, "?availability=online", nil},
		{otherToken, "", nil},
	} {
		if got := names(c.token, c.q); !slices.Equal(got, c.want) {
			t.Errorf("list%s by %s: %v, want %v", c.q, c.token, got, c.want)
		}
	}
	if c, v, _ := h.do("GET", staffPath+"?availability=busy", adminToken, ""); c != 400 || errDetails(v)["field"] != "availability" {
		t.Fatalf("a bad availability: %d %v", c, v)
	}

	// One member; a change; unknown ids.
	c, v, _ := h.do("PATCH", staffPath+"/"+alice, adminToken, `{"disabled":false,"role":"supervisor","departments":["Front Desk","concierge","front_desk"],"name":"Alice Martin"}`)
	if c != 200 || v["role"] != "supervisor" || v["disabled"] != false || v["name"] != "Alice Martin" ||
		!slices.Equal(strSlice(v["departments"]), []string{"front_desk", "concierge"}) {
		t.Fatalf("patch: %d %v", c, v)
	}
	if c, v, _ := h.do("GET", staffPath+"/"+alice, adminToken, ""); c != 200 || v["name"] != "Alice Martin" {
		t.Fatalf("get: %d %v", c, v)
	}
	for _, id := range []string{"stf_unknown0000", "staff_456", "me"} {
		if c, v, _ := h.do("GET", staffPath+"/"+id, adminToken, ""); c != 404 || errCode(t, v) != "STAFF_NOT_FOUND" {
			t.Fatalf("get %s: %d %v", id, c, v)
		}
		if c, v, _ := h.do("PATCH", staffPath+"/"+id, adminToken, `{"name":"X"}`); id != "me" && (c != 404 || errCode(t, v) != "STAFF_NOT_FOUND") {
			t.Fatalf("patch %s: %d %v", id, c, v)
		}
	}
	for name, body := range map[string]string{"nothing": `{}`, "a bad role": `{"role":"owner"}`, "the user name": `{"username":"al"}`,
		"a password": `{"password":"` + testPassword + `"}`, "disabled as text": `{"disabled":"yes"}`} {
		if c, v, _ := h.do("PATCH", staffPath+"/"+alice, adminToken, body); c != 400 || errCode(t, v) != "INVALID_REQUEST" {
			t.Errorf("patch with %s: %d %v", name, c, v)
		}
	}

	// Only admins manage: an agent's session and a staff token get 403;
	// a staff admin's session may.
	h.addStaff(adminToken, "ines", "agent")
	agent := h.login("grand-plaza", "ines", testPassword)
	for _, call := range []struct{ method, path, body string }{
		{"POST", staffPath, member(nil)}, {"GET", staffPath + "/" + alice, ""}, {"PATCH", staffPath + "/" + alice, `{"name":"X"}`},
		{"POST", staffPath + "/" + alice + "/password", `{"password":"` + testPassword + `"}`},
	} {
		if c, v, _ := h.sdo(agent, call.method, call.path, call.body); c != 403 || errDetails(v)["role"] != "staff" {
			t.Errorf("agent %s %s: %d %v", call.method, call.path, c, v)
		}
		if c, _, _ := h.do(call.method, call.path, staffToken, call.body); c != 403 {
			t.Errorf("staff token %s %s: %d", call.method, call.path, c)
		}
	}
	admin := h.login("grand-plaza", "boss", testPassword)
	if c, v, _ := h.sdo(admin, "POST", staffPath, member(nil)); c != 201 || v["username"] != "carla" {
		t.Fatalf("a staff admin's creation: %d %v", c, v)
	}
	// An admin cannot lock themselves out.
	for _, body := range []string{`{"disabled":true}`, `{"role":"agent"}`} {
		if c, v, _ := h.sdo(admin, "PATCH", staffPath+"/"+boss, body); c != 400 {
			t.Errorf("the admin's own %s: %d %v", body, c, v)
		}
	}

	// Everyone sets their own availability, and colleagues see it.
	if c, v, _ := h.sdo(agent, "PATCH", staffPath+"/me", `{"availability":"away"}`); c != 200 || v["availability"] != "away" || v["username"] != "ines" {
		t.Fatalf("availability: %d %v", c, v)
	}
	if got := names(staffToken, "?availability=away"); !slices.Equal(got, []string{"ines"}) {
		t.Fatalf("away: %v", got)
	}
	for _, body := range []string{`{"availability":"busy"}`, `{}`, `{"availability":"online","role":"admin"}`} {
		if c, _, _ := h.sdo(agent, "PATCH", staffPath+"/me", body); c != 400 {
			t.Errorf("availability %s: %d", body, c)
		}
	}
	if c, v, _ := h.do("PATCH", staffPath+"/me", staffToken, `{"availability":"away"}`); c != 403 || errDetails(v)["reason"] != "session_required" {
		t.Fatalf("a token's availability: %d %v", c, v)
	}
}

func strSlice(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestDisablingOrANewPasswordEndsTheSessions(t *testing.T) {
	h := newHarness(t, fastPasswords)
	id := h.addStaff(adminToken, "alice", "agent")
	s1 := h.login("grand-plaza", "alice", testPassword)
	s2 := h.login("grand-plaza", "alice", testPassword)
	if s1.cookie == s2.cookie || s1.csrf == s2.csrf {
		t.Fatal("two logins share a session")
	}
	live := func(s staffSession) bool {
		c, _, _ := h.sdo(s, "GET", mePath, "")
		return c == 200
	}
	if !live(s1) || !live(s2) {
		t.Fatal("fresh sessions are not live")
	}
	h.do("PATCH", staffPath+"/"+id, adminToken, `{"disabled":true}`)
	if live(s1) || live(s2) {
		t.Fatal("a disabled member's sessions go on")
	}
	if c, _, _ := h.do("POST", loginPath, "", `{"tenant":"grand-plaza","username":"alice","password":"`+testPassword+`"}`); c != 401 {
		t.Fatalf("a disabled member's login: %d", c)
	}
	// Enabled again: the old sessions stay ended, a new login works.
	h.do("PATCH", staffPath+"/"+id, adminToken, `{"disabled":false}`)
	if live(s1) {
		t.Fatal("re-enabling brought an old session back")
	}
	s3 := h.login("grand-plaza", "alice", testPassword)

	// A new password ends the sessions too, and only it signs in.
	const newPassword = "a-brand-new-password"
	if c, v, _ := h.do("POST", staffPath+"/"+id+"/password", adminToken, `{"password":"short"}`); c != 400 || errDetails(v)["field"] != "password" {
		t.Fatalf("a short password: %d %v", c, v)
	}
	if !live(s3) {
		t.Fatal("a refused password reset ended the session")
	}
	if c, v, _ := h.do("POST", staffPath+"/"+id+"/password", adminToken, `{"password":"`+newPassword+`"}`); c != 200 || v["id"] != id {
		t.Fatalf("reset: %d %v", c, v)
	}
	if live(s3) {
		t.Fatal("a password reset left the session on")
	}
	if c, _, _ := h.do("POST", loginPath, "", `{"tenant":"grand-plaza","username":"alice","password":"`+testPassword+`"}`); c != 401 {
		t.Fatalf("the old password: %d", c)
	}
	h.login("grand-plaza", "alice", newPassword)
	// A role change applies to a live session at once, without ending it.
	s4 := h.login("grand-plaza", "alice", newPassword)
	h.do("PATCH", staffPath+"/"+id, adminToken, `{"role":"admin"}`)
	if c, v, _ := h.sdo(s4, "GET", staffPath+"/"+id, ""); c != 200 {
		t.Fatalf("a new admin's session: %d %v", c, v)
	}
}

// inboxFixture is a tenant's inbox of six conversations, each assigned
// its own way, and the members who look at it.
type inboxFixture struct {
	alice, bruno, hugo string // agent [front_desk], supervisor, agent [housekeeping]
	conv               map[string]string
	guest              map[string]string // each conversation's guest
	wamid              map[string]string // the guest's message in it
}

func newInbox(t *testing.T, h *harness) *inboxFixture {
	t.Helper()
	f := &inboxFixture{conv: map[string]string{}, guest: map[string]string{}, wamid: map[string]string{}}
	f.alice = h.addStaff(adminToken, "alice", "agent", "front_desk")
	f.bruno = h.addStaff(adminToken, "bruno", "supervisor")
	f.hugo = h.addStaff(adminToken, "hugo", "agent", "housekeeping")
	assign := map[string]string{
		"unassigned":  ``,
		"alice":       `{"assigned_to":"` + f.alice + `"}`,
		"bruno":       `{"assigned_to":"` + f.bruno + `"}`,
		"housekeep":   `{"department":"housekeeping"}`,
		"frontdesk":   `{"department":"front_desk"}`,
		"bruno+front": `{"assigned_to":"` + f.bruno + `","department":"Front Desk"}`,
	}
	i := 0
	for name, body := range assign {
		i++
		guest := "+1415555020" + strconv.Itoa(i)
		f.wamid[name] = h.guestWrote(guest, time.Now())["+15550001000"]
		c, v, _ := h.do("POST", sendPath, staffToken, sendText(guest, "Hello from the desk"))
		if c != 202 {
			t.Fatalf("send: %d %v", c, v)
		}
		f.conv[name] = v["conversation_id"].(string)
		f.guest[name] = guest
		if body != "" {
			if c, v, _ := h.do("POST", convsPath+"/"+f.conv[name]+"/assign", adminToken, body); c != 200 {
				t.Fatalf("assign %s: %d %v", name, c, v)
			}
		}
	}
	return f
}

func TestAgentsSeeTheirOwnTheirDepartmentsAndUnassignedConversations(t *testing.T) {
	h := newHarness(t, fastPasswords)
	f := newInbox(t, h)
	all := []string{"unassigned", "alice", "bruno", "housekeep", "frontdesk", "bruno+front"}
	sees := map[string][]string{
		"alice": {"unassigned", "alice", "frontdesk", "bruno+front"},
		"hugo":  {"unassigned", "housekeep"},
		"bruno": all,
	}
	names := func(v map[string]any) []string {
		var out []string
		for _, id := range ids(v, "conversations", "conversation_id") {
			for n, c := range f.conv {
				if c == id {
					out = append(out, n)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	for who, want := range sees {
		t.Run(who, func(t *testing.T) {
			s := h.login("grand-plaza", who, testPassword)
			want = slices.Sorted(slices.Values(want))
			c, v, _ := h.sdo(s, "GET", convsPath+"?limit=100", "")
			if got := names(v); c != 200 || !slices.Equal(got, want) {
				t.Fatalf("list: %d %v, want %v", c, got, want)
			}
			for _, n := range all {
				id := f.conv[n]
				visible := slices.Contains(want, n)
				for _, sub := range []string{"", "/window-status", "/analytics"} {
					c, v, _ := h.sdo(s, "GET", convsPath+"/"+id+sub, "")
					if visible && c != 200 || !visible && (c != 404 || errCode(t, v) != "CONVERSATION_NOT_FOUND") {
						t.Errorf("GET %s%s (%s): %d %v", n, sub, id, c, v)
					}
				}
				c, v, _ := h.sdo(s, "POST", convsPath+"/"+id+"/read", "")
				if visible && c != 200 || !visible && (c != 404 || errCode(t, v) != "CONVERSATION_NOT_FOUND") {
					t.Errorf("read %s: %d %v", n, c, v)
				}
				// Marking the guest's message read: a conversation the
				// agent does not see is not found (the harness has no
				// provider for receipts: a visible one answers 400).
				c, v, _ = h.sdo(s, "POST", "/api/v1/whatsapp/messages/"+f.wamid[n]+"/read", "")
				if visible && c != 400 || !visible && (c != 404 || errCode(t, v) != "MESSAGE_NOT_FOUND") {
					t.Errorf("mark %s's message read: %d %v", n, c, v)
				}
				// Writing into it, by its id.
				c, v, _ = h.sdo(s, "POST", sendPath, `{"guest_phone":"`+f.guest[n]+`","message_type":"text","content":{"text":"Any news?"},"conversation_id":"`+id+`"}`)
				if visible && c != 202 || !visible && (c != 404 || errCode(t, v) != "CONVERSATION_NOT_FOUND") {
					t.Errorf("send into %s: %d %v", n, c, v)
				}
			}
		})
	}
	// Tokens see everything, as before sessions.
	c, v, _ := h.do("GET", convsPath+"?limit=100", staffToken, "")
	if got := names(v); c != 200 || !slices.Equal(got, slices.Sorted(slices.Values(all))) {
		t.Fatalf("a token's list: %v", got)
	}
	// Filters: nobody, one's own, a department.
	bruno := h.login("grand-plaza", "bruno", testPassword)
	for q, want := range map[string][]string{
		"?assigned_to=none":           {"frontdesk", "housekeep", "unassigned"},
		"?assigned_to=me":             {"bruno", "bruno+front"},
		"?assigned_to=" + f.alice:     {"alice"},
		"?department=front_desk":      {"bruno+front", "frontdesk"},
		"?department=Housekeeping":    {"housekeep"},
		"?department=spa":             nil,
		"?assigned_to=none&status=xx": nil,
	} {
		c, v, _ := h.sdo(bruno, "GET", convsPath+q, "")
		// (Not "contains xx": a random staff id may hold it.)
		if strings.HasSuffix(q, "&status=xx") {
			if c != 400 {
				t.Errorf("%s: %d", q, c)
			}
			continue
		}
		if got := names(v); c != 200 || !slices.Equal(got, want) {
			t.Errorf("%s: %d %v, want %v", q, c, got, want)
		}
	}
	// An agent who hands a conversation on gets the answer, then loses it.
	alice := h.login("grand-plaza", "alice", testPassword)
	c, v, _ = h.sdo(alice, "POST", convsPath+"/"+f.conv["alice"]+"/assign", `{"department":"housekeeping"}`)
	if c != 200 || v["assigned_to"] != nil || v["assigned_department"] != "housekeeping" {
		t.Fatalf("hand-over: %d %v", c, v)
	}
	if c, _, _ := h.sdo(alice, "GET", convsPath+"/"+f.conv["alice"], ""); c != 404 {
		t.Fatalf("after the hand-over: %d", c)
	}
	hugo := h.login("grand-plaza", "hugo", testPassword)
	if c, _, _ := h.sdo(hugo, "GET", convsPath+"/"+f.conv["alice"], ""); c != 200 {
		t.Fatalf("housekeeping after the hand-over: %d", c)
	}
}

func TestStaffIDsOnSendsAndAssignmentsMustBeTheTenantsMembers(t *testing.T) {
	h := newHarness(t, fastPasswords)
	convID := func() string {
		_, v, _ := h.do("POST", sendPath, staffToken, sendText(seedGuest, "hi"))
		return v["conversation_id"].(string)
	}
	conv := convID()
	// Before the hotel has staff members, any id goes (the seeds' machine
	// integrations name their own people).
	if c, v, _ := h.do("POST", sendPath, staffToken, seedSend("Welcome")); c != 202 {
		t.Fatalf("staff_456 before staff exist: %d %v", c, v)
	}
	if c, v, _ := h.do("POST", convsPath+"/"+conv+"/assign", staffToken, `{"assigned_to":"staff_123"}`); c != 200 || v["assigned_to"] != "staff_123" {
		t.Fatalf("staff_123 before staff exist: %d %v", c, v)
	}
	alice := h.addStaff(adminToken, "alice", "agent")
	gone := h.addStaff(adminToken, "gone", "agent")
	h.do("PATCH", staffPath+"/"+gone, adminToken, `{"disabled":true}`)
	seasideMember := func() string {
		h.srv.tokens.Add("seaside-admin", Principal{Tenant: h.srv.tokens.tenant("seaside"), Role: RoleAdmin}) //nolint:errcheck // used at once
		return h.addStaff("seaside-admin", "sam", "agent")
	}()

	sends := []struct{ name, path, body string }{
		{"messages/send", sendPath, `{"guest_phone":"` + seedGuest + `","message_type":"text","content":{"text":"hi"},"staff_member_id":"%s"}`},
		{"send-interactive", interactivePath, `{"guest_phone":"` + seedGuest + `","interactive_type":"buttons","content":{"text":"Late checkout?","buttons":[{"id":"yes","title":"Yes"}]},"staff_member_id":"%s"}`},
		{"send-media", sendMediaPath, `{"guest_phone":"` + seedGuest + `","media_url":"https://cdn.example.com/a.jpg","media_type":"image","staff_member_id":"%s"}`},
		{"templates/send", templateSendPath, strings.TrimSuffix(seedWelcome, "}") + `,"staff_member_id":"%s"}`},
	}
	h.putTemplates("grand-plaza", hotelTemplates...)
	for _, s := range sends {
		t.Run(s.name, func(t *testing.T) {
			for _, bad := range []string{"staff_456", gone, seasideMember, "stf_nobody"} {
				before := h.queued()
				c, v, _ := h.do("POST", s.path, staffToken, strings.Replace(s.body, "%s", bad, 1))
				if c != 400 || errCode(t, v) != "INVALID_REQUEST" || errDetails(v)["field"] != "staff_member_id" {
					t.Fatalf("staff_member_id %s: %d %v", bad, c, v)
				}
				if h.queued() != before {
					t.Fatal("a refused send was queued")
				}
			}
			c, v, _ := h.do("POST", s.path, staffToken, strings.Replace(s.body, "%s", alice, 1))
			if c != 202 || h.ok202Status(v["message_id"].(string))["staff_member_id"] != alice {
				t.Fatalf("alice's id: %d %v", c, v)
			}
		})
	}
	// A member's own send is theirs; naming a colleague is refused.
	s := h.login("grand-plaza", "alice", testPassword)
	bruno := h.addStaff(adminToken, "bruno", "supervisor")
	if c, v, _ := h.sdo(s, "POST", sendPath, `{"guest_phone":"`+seedGuest+`","message_type":"text","content":{"text":"hi"},"staff_member_id":"`+bruno+`"}`); c != 400 ||
		errDetails(v)["field"] != "staff_member_id" {
		t.Fatalf("alice sending as bruno: %d %v", c, v)
	}

	// Assignments name members too.
	for _, bad := range []string{"staff_123", gone, seasideMember} {
		c, v, _ := h.do("POST", convsPath+"/"+conv+"/assign", staffToken, `{"assigned_to":"`+bad+`"}`)
		if c != 400 || errDetails(v)["field"] != "assigned_to" {
			t.Fatalf("assigned_to %s: %d %v", bad, c, v)
		}
	}
	c, v, _ := h.do("GET", convsPath+"/"+conv, staffToken, "")
	if c != 200 || v["assigned_to"] != "staff_123" {
		t.Fatalf("refused assignments changed the conversation: %v", v["assigned_to"])
	}
	for _, a := range []struct {
		body string
		want [2]any
	}{
		{`{"assigned_to":"` + alice + `"}`, [2]any{alice, nil}},
		{`{"department":"Front Desk"}`, [2]any{nil, "front_desk"}}, // handed to the department's queue
		{`{"assigned_to":"` + bruno + `","department":"concierge"}`, [2]any{bruno, "concierge"}},
		{`{"assigned_to":null}`, [2]any{nil, "concierge"}},
		{`{"assigned_to":"` + alice + `"}`, [2]any{alice, "concierge"}},
		{`{"department":null}`, [2]any{alice, nil}},
	} {
		body, want := a.body, a.want
		c, v, _ := h.do("POST", convsPath+"/"+conv+"/assign", staffToken, body)
		if c != 200 || v["assigned_to"] != want[0] || v["assigned_department"] != want[1] {
			t.Errorf("assign %s: %d assigned_to %v, department %v; want %v", body, c, v["assigned_to"], v["assigned_department"], want)
		}
	}
	if c, v, _ := h.do("POST", convsPath+"/"+conv+"/assign", staffToken, `{"department":"`+strings.Repeat("d", 41)+`"}`); c != 400 || errDetails(v)["field"] != "department" {
		t.Fatalf("a long department: %d %v", c, v)
	}
}

// TestSessionsExpireWhenUnused: a session lives its TTL past its last
// use, then answers 401.
func TestSessionsExpireWhenUnused(t *testing.T) {
	h := newHarness(t, fastPasswords, func(c *Config) { c.SessionTTL = time.Minute })
	h.addStaff(adminToken, "alice", "agent")
	s := h.login("grand-plaza", "alice", testPassword)
	ctx := context.Background()
	if _, err := h.store.Session(ctx, s.cookie, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if c, _, _ := h.sdo(s, "GET", mePath, ""); c != 401 {
		t.Fatalf("an expired session: %d", c)
	}
	s = h.login("grand-plaza", "alice", testPassword)
	if c, _, _ := h.sdo(s, "GET", mePath, ""); c != 200 {
		t.Fatalf("a fresh session: %d", c)
	}
	// Using it renewed it to the whole TTL.
	ttl := h.store.Client().PTTL(ctx, h.store.Keys().Session(sha256Hex(s.cookie))).Val()
	if ttl < 50*time.Second {
		t.Fatalf("a used session's TTL: %v, want about a minute", ttl)
	}
}

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

// TestATenantWithoutTokensStillSignsItsStaffIn: a tenant of the
// configuration with no API token (AddTenant) is known to logins.
func TestATenantWithoutTokensStillSignsItsStaffIn(t *testing.T) {
	h := newHarness(t, fastPasswords)
	if err := h.srv.tokens.AddTenant(&Tenant{ID: "lakeside", Senders: []string{"+15550003000"}}); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.tokens.AddTenant(&Tenant{ID: "nowhere"}); err == nil {
		t.Fatal("a tenant without numbers was taken")
	}
	hash, err := password.Hash(testPassword, password.Fast())
	must(t, err)
	must(t, h.store.CreateStaff(context.Background(), &redis.StaffMember{TenantID: "lakeside", Username: "lena", Name: "Lena", Role: "admin", PasswordHash: hash}))
	s := h.login("lakeside", "lena", testPassword)
	if c, v, _ := h.sdo(s, "GET", staffPath, ""); c != 200 || !slices.Equal(ids(v, "staff", "username"), []string{"lena"}) {
		t.Fatalf("lakeside's staff: %d %v", c, v)
	}
}

// TestStaffKeepTheIDsTheirHotelGaveThem: a member may be created with the
// id the hotel's systems use for that person (seed 001's staff_456), which
// its sends then name; an id in use or malformed is refused.
func TestStaffKeepTheIDsTheirHotelGaveThem(t *testing.T) {
	h := newHarness(t, fastPasswords)
	body := func(id, user string) string {
		b, _ := json.Marshal(map[string]any{"id": id, "username": user, "name": "Alice Martin", "role": "agent",
			"departments": []string{"front_desk"}, "password": testPassword})
		return string(b)
	}
	code, v, _ := h.do("POST", staffPath, adminToken, body("staff_456", "alice"))
	if code != 201 || v["id"] != "staff_456" {
		t.Fatalf("create with an id: %d %v", code, v)
	}
	tests := []struct {
		id, user string
		code     int
		field    string
	}{
		{"staff_456", "alice2", 409, "id"},
		{"staff 456", "alice3", 400, "id"},
		{"staff:456", "alice4", 400, "id"},
		{strings.Repeat("a", 65), "alice5", 400, "id"},
	}
	for _, tt := range tests {
		code, v, _ := h.do("POST", staffPath, adminToken, body(tt.id, tt.user))
		if code != tt.code || errDetails(v)["field"] != tt.field {
			t.Errorf("id %q: %d %v, want %d on %s", tt.id, code, v, tt.code, tt.field)
		}
	}
	// Seed 001's send, as written, names her.
	if code, v, _ := h.do("POST", sendPath, staffToken, seedSend("Welcome to Grand Plaza Hotel!")); code != 202 {
		t.Fatalf("seed 001's send naming staff_456: %d %v", code, v)
	}
}
