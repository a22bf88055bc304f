package ingest

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/internal/password"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// sessionCookie names the cookie of a staff member's session: an opaque
// 32-byte random value (base64url), HttpOnly, Secure, SameSite=Strict.
const sessionCookie = "wagate_session"

// csrfHeader carries a session's CSRF token on every call but GET and
// HEAD: a page of another site can make the browser send the cookie, but
// cannot read the token to send with it.
const csrfHeader = "X-CSRF-Token"

// Password lengths, in characters.
const (
	minPasswordRunes = 10
	maxPasswordRunes = 128
)

// randomSecret returns 32 random bytes, base64url without padding.
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

var (
	// errLoginFailed is the one answer of every refused login, whichever
	// of tenant, user name or password was wrong, or the member disabled:
	// a guesser learns nothing of which.
	errLoginFailed = &apiError{Code: message.CodeUnauthorized, Message: "Wrong tenant, user name or password",
		RecoveryOptions: []string{"Check the tenant, user name and password; an admin of the tenant can reset the password"}}
	errSessionEnded = &apiError{Code: message.CodeUnauthorized, Message: "The session has ended: sign in again",
		RecoveryOptions: []string{"Sign in with POST /api/v1/whatsapp/auth/login"}}
	errCSRF = &apiError{Code: message.CodeForbidden, Message: "CSRF token missing or wrong",
		Details:         map[string]any{"header": csrfHeader},
		RecoveryOptions: []string{"Send the session's csrf_token (from POST /api/v1/whatsapp/auth/login or GET /api/v1/whatsapp/auth/me) in the X-CSRF-Token header"}}
	errSessionOnly = &apiError{Code: message.CodeForbidden, Message: "This call is for a signed-in staff member, not an API token",
		Details:         map[string]any{"reason": "session_required"},
		RecoveryOptions: []string{"Sign in with POST /api/v1/whatsapp/auth/login and call it with the session cookie"}}
)

// sessionAuth authenticates a call by its session cookie: the session must
// be live, its member enabled and of the session's generation (a disable
// or a password reset ends every session at once), and a call other than
// GET or HEAD must carry the session's CSRF token. Using a session renews
// it and its cookie (a sliding expiry).
func (s *Server) sessionAuth(ctx *fasthttp.RequestCtx, token string) (Principal, bool) {
	rctx, cancel := s.apiCtx()
	defer cancel()
	p, e := s.sessionPrincipal(rctx, token)
	if e != nil {
		writeError(ctx, e)
		if e.Code == message.CodeUnauthorized {
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="wagate"`)
			clearSessionCookie(ctx)
		}
		return Principal{}, false
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		got := ctx.Request.Header.Peek(csrfHeader)
		if subtle.ConstantTimeCompare(got, []byte(p.session.csrf)) != 1 {
			writeError(ctx, errCSRF)
			return Principal{}, false
		}
	}
	// The cookie slides with the session: a member at work is not signed
	// out by their browser 12 hours after signing in.
	setSessionCookie(ctx, token, s.cfg.SessionTTL)
	return p, true
}

// sessionPrincipal reads the session of token and its member.
func (s *Server) sessionPrincipal(rctx context.Context, token string) (Principal, *apiError) {
	sess, err := s.store.Session(rctx, token, s.cfg.SessionTTL)
	switch {
	case errors.Is(err, redis.ErrSessionNotFound):
		return Principal{}, errSessionEnded
	case err != nil:
		s.log.Warn("session", "err", err)
		return Principal{}, unavailable("read")
	}
	t := s.tokens.tenant(sess.TenantID)
	m, err := s.store.Staff(rctx, sess.TenantID, sess.StaffID)
	switch {
	case err != nil && !errors.Is(err, redis.ErrStaffNotFound):
		s.log.Warn("session member", "err", err)
		return Principal{}, unavailable("read")
	case t == nil || err != nil || m.Disabled || m.Generation != sess.Generation:
		// Void: the tenant left the configuration, or the member was
		// removed, disabled or given a new password since.
		if err := s.store.DeleteSession(rctx, token); err != nil {
			s.log.Warn("end a void session", "err", err)
		}
		return Principal{}, errSessionEnded
	}
	p := staffPrincipal(t, m)
	p.session = &sessionRef{token: token, csrf: sess.CSRF, member: m}
	return p, nil
}

// staffPrincipal is the principal of member m of tenant t: a staff admin
// has the admin role, agents and supervisors the staff role.
func staffPrincipal(t *Tenant, m *redis.StaffMember) Principal {
	role := RoleStaff
	if m.Role == redis.StaffAdmin {
		role = RoleAdmin
	}
	return Principal{Tenant: t, Role: role, Staff: &StaffIdentity{StaffID: m.ID, StaffRole: m.Role,
		Departments: m.Departments, Username: m.Username, Name: m.Name}}
}

// setSessionCookie gives the browser the session's cookie.
func setSessionCookie(ctx *fasthttp.RequestCtx, token string, ttl time.Duration) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(sessionCookie)
	c.SetValue(token)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSecure(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	c.SetMaxAge(int(ttl / time.Second))
	ctx.Response.Header.SetCookie(c)
}

// clearSessionCookie tells the browser to drop the session's cookie.
func clearSessionCookie(ctx *fasthttp.RequestCtx) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(sessionCookie)
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSecure(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	c.SetMaxAge(-1) // Max-Age=0: gone now
	ctx.Response.Header.SetCookie(c)
}

// loginRequest is the body of POST /auth/login.
type loginRequest struct {
	Tenant   string `json:"tenant"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// sessionAnswer is what login and /auth/me answer: the member and the
// session's CSRF token.
type sessionAnswer struct {
	Staff     staffJSON `json:"staff"`
	CSRFToken string    `json:"csrf_token"`
}

// handleLogin serves POST /api/v1/whatsapp/auth/login: a staff member
// signs in with tenant, user name and password and gets the session
// cookie and its CSRF token. Every refusal of the credentials is the same
// 401, after the same work (an unknown user's password is checked against
// a dummy hash); a user name with too many failures in the window gets
// 429 until the window ends.
func (s *Server) handleLogin(ctx *fasthttp.RequestCtx, _ Principal, _ params) {
	var r loginRequest
	if e := decodeJSON(ctx.PostBody(), &r); e != nil {
		writeError(ctx, e)
		return
	}
	for _, f := range []struct{ name, v string }{{"tenant", r.Tenant}, {"username", r.Username}, {"password", r.Password}} {
		if f.v == "" {
			writeError(ctx, invalidRequest(f.name+" is required", map[string]any{"field": f.name}))
			return
		}
	}
	if utf8.RuneCountInString(r.Password) > maxPasswordRunes {
		writeError(ctx, invalidRequest("password is longer than 128 characters", map[string]any{"field": "password", "max_length": maxPasswordRunes}))
		return
	}
	username := strings.ToLower(strings.TrimSpace(r.Username))
	t := s.tokens.tenant(r.Tenant)
	if t == nil || !redis.ValidUsername(username) {
		s.refuseLogin(ctx, r.Password)
		return
	}
	rctx, cancel := s.apiCtx()
	defer cancel()
	n, left, err := s.store.LoginAttempt(rctx, t.ID, username, s.cfg.LoginWindow)
	if err != nil {
		s.log.Warn("login attempt", "err", err)
		writeError(ctx, unavailable("checked"))
		return
	}
	if n > s.cfg.LoginAttempts {
		s.log.Warn("login refused: too many failures", "tenant", t.ID, "username", username)
		writeError(ctx, &apiError{Code: message.CodeRateLimitExceeded, Message: "Too many failed logins for this user name: try again later",
			Details:         map[string]any{"retry_after_seconds": retryAfter(left)},
			RecoveryOptions: []string{"Wait for Retry-After seconds, or ask an admin of the tenant to reset the password"},
			RetryAfter:      retryAfter(left)})
		return
	}
	m, err := s.store.StaffByUsername(rctx, t.ID, username)
	switch {
	case errors.Is(err, redis.ErrStaffNotFound):
		s.refuseLogin(ctx, r.Password)
		return
	case err != nil:
		s.log.Warn("login", "err", err)
		writeError(ctx, unavailable("checked"))
		return
	}
	ok, err := password.Verify(r.Password, m.PasswordHash)
	if err != nil {
		s.log.Error("a staff member's stored password hash is unreadable", "tenant", t.ID, "staff_id", m.ID, "err", err)
	}
	if !ok || m.Disabled {
		s.log.Info("login refused", "tenant", t.ID, "username", username)
		writeError(ctx, errLoginFailed)
		return
	}
	if err := s.store.ClearLoginFailures(rctx, t.ID, username); err != nil {
		s.log.Warn("clear login failures", "err", err)
	}
	token, sess, err := s.store.CreateSession(rctx, t.ID, m.ID, m.Generation, s.cfg.SessionTTL)
	if err != nil {
		s.log.Warn("login", "err", err)
		writeError(ctx, unavailable("signed in"))
		return
	}
	setSessionCookie(ctx, token, s.cfg.SessionTTL)
	writeJSON(ctx, fasthttp.StatusOK, sessionAnswer{Staff: memberJSON(m), CSRFToken: sess.CSRF})
}

// refuseLogin answers a login that names no member after checking its
// password against a dummy hash, as a wrong password costs.
func (s *Server) refuseLogin(ctx *fasthttp.RequestCtx, pw string) {
	_, _ = password.Verify(pw, s.dummyHash())
	writeError(ctx, errLoginFailed)
}

// retryAfter is a wait in whole seconds, at least 1.
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// handleLogout serves POST /api/v1/whatsapp/auth/logout: the session ends
// and the browser drops its cookie.
func (s *Server) handleLogout(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	rctx, cancel := s.apiCtx()
	defer cancel()
	if err := s.store.DeleteSession(rctx, p.session.token); err != nil {
		s.log.Warn("logout", "err", err)
		writeError(ctx, unavailable("changed"))
		return
	}
	clearSessionCookie(ctx)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// handleMe serves GET /api/v1/whatsapp/auth/me: the signed-in member and
// the session's CSRF token, for a page loaded with the cookie alone.
func (s *Server) handleMe(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	writeJSON(ctx, fasthttp.StatusOK, sessionAnswer{Staff: memberJSON(p.session.member), CSRFToken: p.session.csrf})
}

// sessionOnly refuses an API token on a call that is a session's own
// (logout, /auth/me, the member's availability).
func sessionOnly(ctx *fasthttp.RequestCtx, p Principal) bool {
	if p.Staff != nil && p.session != nil {
		return true
	}
	writeError(ctx, errSessionOnly)
	return false
}
