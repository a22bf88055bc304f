package ingest

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// Role is what a token may do: staff send and read, admins also configure.
type Role string

// The two roles.
const (
	RoleStaff Role = "staff"
	RoleAdmin Role = "admin"
)

// Tenant is one customer of the gateway (a hotel, a marketing platform) and
// the business numbers it sends from.
type Tenant struct {
	ID string
	// Senders are the tenant's numbers in E.164; the first is the default.
	Senders []string
	// MaxQueued caps the tenant's messages not yet sent; 0 takes the
	// server's default. Past it, sends are refused with 429.
	MaxQueued int64
}

// owns reports whether sender is one of the tenant's numbers.
func (t *Tenant) owns(sender string) bool {
	for _, s := range t.Senders {
		if s == sender {
			return true
		}
	}
	return false
}

// Principal is who a request acts as: a machine holding an API token, or
// a staff member signed in with a session cookie.
type Principal struct {
	Tenant *Tenant
	// Role is RoleAdmin for admin tokens and staff admins, RoleStaff for
	// the others.
	Role Role
	// Staff is the signed-in staff member of a session; nil for API
	// tokens (machines), which see all of their tenant's conversations.
	Staff *StaffIdentity
	// session is the session the request came with (nil for tokens).
	session *sessionRef
}

// StaffIdentity is the staff member behind a session principal, as read
// at the request (a role or department change applies at once).
type StaffIdentity struct {
	StaffID string
	// StaffRole is redis.StaffAgent, StaffSupervisor or StaffAdmin.
	StaffRole   string
	Departments []string
	Username    string
	Name        string
}

// sessionRef is what a request knows of its session: its cookie value
// (to end it), its CSRF token (to hand it back in /auth/me) and the
// member as read at the request.
type sessionRef struct {
	token  string
	csrf   string
	member *redis.StaffMember
}

// Tokens maps API tokens to principals. Only SHA-256 hashes of tokens are
// kept, so a memory dump or a config file does not leak usable tokens.
// It also knows the tenants by id, for staff logins. Tokens is filled
// before the server starts and only read afterwards.
type Tokens struct {
	byHash  map[[sha256.Size]byte]Principal
	tenants map[string]*Tenant
}

// NewTokens returns an empty token set.
func NewTokens() *Tokens {
	return &Tokens{byHash: map[[sha256.Size]byte]Principal{}, tenants: map[string]*Tenant{}}
}

// AddTenant registers a tenant whose staff may sign in, whether or not it
// has API tokens (AddHash registers the tenants of tokens itself).
func (ts *Tokens) AddTenant(t *Tenant) error {
	if err := checkTenant(t); err != nil {
		return err
	}
	if _, ok := ts.tenants[t.ID]; !ok {
		ts.tenants[t.ID] = t
	}
	return nil
}

// tenant returns the registered tenant id, nil when there is none.
func (ts *Tokens) tenant(id string) *Tenant { return ts.tenants[id] }

func checkTenant(t *Tenant) error {
	if t == nil || t.ID == "" || len(t.Senders) == 0 {
		return fmt.Errorf("token for a tenant without id or sender numbers")
	}
	for _, s := range t.Senders {
		if !message.ValidE164(s) {
			return fmt.Errorf("tenant %s: sender %q is not E.164", t.ID, s)
		}
	}
	return nil
}

// Add registers a token (in clear) for p.
func (ts *Tokens) Add(token string, p Principal) error {
	return ts.AddHash(sha256.Sum256([]byte(token)), p)
}

// AddHash registers a token by its SHA-256 hash.
func (ts *Tokens) AddHash(h [sha256.Size]byte, p Principal) error {
	if err := checkTenant(p.Tenant); err != nil {
		return err
	}
	if p.Role != RoleStaff && p.Role != RoleAdmin {
		return fmt.Errorf("tenant %s: unknown role %q", p.Tenant.ID, p.Role)
	}
	if prev, ok := ts.byHash[h]; ok {
		return fmt.Errorf("tenant %s: the same token is already given to tenant %s", p.Tenant.ID, prev.Tenant.ID)
	}
	ts.byHash[h] = p
	return ts.AddTenant(p.Tenant)
}

var bearer = []byte("Bearer ")

// lookup returns the principal of an Authorization header value.
func (ts *Tokens) lookup(auth []byte) (Principal, bool) {
	if len(auth) <= len(bearer) || !bytes.EqualFold(auth[:len(bearer)], bearer) {
		return Principal{}, false
	}
	p, ok := ts.byHash[sha256.Sum256(bytes.TrimSpace(auth[len(bearer):]))]
	return p, ok
}
