package redis

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Staff errors callers act on.
var (
	// ErrStaffNotFound: no staff member of the tenant has this id or user
	// name.
	ErrStaffNotFound = errors.New("staff member not found")
	// ErrUsernameTaken: another staff member of the tenant has the user
	// name.
	ErrUsernameTaken = errors.New("user name is taken")
	// ErrStaffIDTaken: a member was created with an id another has.
	ErrStaffIDTaken = errors.New("staff member id is taken")
	// ErrSessionNotFound: no live session has this cookie value (never
	// made, logged out, or expired).
	ErrSessionNotFound = errors.New("session not found")
)

// Staff roles: agents work the conversations of their departments,
// supervisors and admins see the tenant's whole inbox, admins also manage
// the staff and the tenant's configuration.
const (
	StaffAgent      = "agent"
	StaffSupervisor = "supervisor"
	StaffAdmin      = "admin"
)

// Staff availabilities, set by each member for their colleagues to see.
const (
	AvailabilityOnline  = "online"
	AvailabilityAway    = "away"
	AvailabilityOffline = "offline"
)

// StaffMember is one of a tenant's staff, a person who signs in to the
// inbox. The hash at Keys.Staff holds it: `id`, `u` user name, `n` name,
// `r` role, `dp` departments (JSON list), `av` availability, `x` "1" when
// disabled, `ph` password hash (PHC string), `g` generation, `ca`/`ua`
// created and updated (ms).
type StaffMember struct {
	ID       string
	TenantID string
	Username string
	Name     string
	// Role is StaffAgent, StaffSupervisor or StaffAdmin.
	Role        string
	Departments []string
	// Availability is AvailabilityOnline, AvailabilityAway or
	// AvailabilityOffline.
	Availability string
	// Disabled members cannot sign in, and their sessions are void.
	Disabled     bool
	PasswordHash string
	// Generation goes up when the member is disabled or their password
	// is reset: a session made under an older generation is void, so
	// both end every session at once without finding them.
	Generation int64
	CreatedMS  int64
	UpdatedMS  int64
}

// staffIDEncoding spells staff ids in lower-case base32 without the
// letters that read as digits, as message and media ids are.
var staffIDEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewStaffID returns a new staff member id: "stf_" and 80 random bits.
func NewStaffID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return "stf_" + staffIDEncoding.EncodeToString(b)
}

// ValidStaffID reports whether id can be a staff member's id: one wagate
// made ("stf_" and 80 random bits) or one the tenant brought (its PMS's,
// "staff_456": 1–64 letters, digits, '.', '_' and '-'). It goes into a
// key, so it is checked before any lookup.
func ValidStaffID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidUsername reports whether u can be a user name: 2–32 lower-case
// letters, digits, '.', '_' and '-'.
func ValidUsername(u string) bool {
	if len(u) < 2 || len(u) > 32 {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (m *StaffMember) fields() map[string]any {
	dp, _ := json.Marshal(m.Departments)
	if m.Departments == nil {
		dp = []byte("[]")
	}
	x := "0"
	if m.Disabled {
		x = "1"
	}
	return map[string]any{"id": m.ID, "u": m.Username, "n": m.Name, "r": m.Role, "dp": string(dp), "av": m.Availability,
		"x": x, "ph": m.PasswordHash, "g": m.Generation, "ca": m.CreatedMS, "ua": m.UpdatedMS}
}

// decodeStaff reads a member's hash; nil when it is gone.
func decodeStaff(tenant string, h map[string]string) *StaffMember {
	if h["id"] == "" {
		return nil
	}
	num := func(k string) int64 { n, _ := strconv.ParseInt(h[k], 10, 64); return n }
	m := &StaffMember{ID: h["id"], TenantID: tenant, Username: h["u"], Name: h["n"], Role: h["r"], Availability: h["av"],
		Disabled: h["x"] == "1", PasswordHash: h["ph"], Generation: num("g"), CreatedMS: num("ca"), UpdatedMS: num("ua")}
	_ = json.Unmarshal([]byte(h["dp"]), &m.Departments) // written by fields from a list of strings
	if m.Departments == nil {
		m.Departments = []string{}
	}
	return m
}

// CreateStaff adds m to its tenant, with a new id when m has none;
// ErrUsernameTaken when another member has its user name, ErrStaffIDTaken
// when one has its id. The user name's index entry and the member are
// written in one transaction, watched, so that two creations of one name
// (or id) cannot both win.
func (s *Store) CreateStaff(ctx context.Context, m *StaffMember) error {
	chosen := m.ID != ""
	if !chosen {
		m.ID = NewStaffID()
	}
	if !ValidUsername(m.Username) || !ValidStaffID(m.ID) {
		return fmt.Errorf("create staff member: bad user name %q or id %q", m.Username, m.ID)
	}
	now := s.nowMS()
	m.CreatedMS, m.UpdatedMS = now, now
	if m.Availability == "" {
		m.Availability = AvailabilityOffline
	}
	names := s.keys.StaffNames(m.TenantID)
	key := s.keys.Staff(m.TenantID, m.ID)
	err := s.rdb.Watch(ctx, func(tx *goredis.Tx) error {
		taken, err := tx.HExists(ctx, names, m.Username).Result()
		if err != nil {
			return err
		}
		if taken {
			return ErrUsernameTaken
		}
		if chosen {
			n, err := tx.Exists(ctx, key).Result()
			if err != nil {
				return err
			}
			if n > 0 {
				return ErrStaffIDTaken
			}
		}
		_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.HSet(ctx, names, m.Username, m.ID)
			p.HSet(ctx, key, m.fields())
			return nil
		})
		return err
	}, names, key)
	switch {
	case errors.Is(err, ErrUsernameTaken), errors.Is(err, ErrStaffIDTaken):
		return err
	case errors.Is(err, goredis.TxFailedErr):
		// The index changed while we looked: someone else created a
		// member; if it took this name, say so.
		if _, e := s.StaffByUsername(ctx, m.TenantID, m.Username); e == nil {
			return ErrUsernameTaken
		}
		return fmt.Errorf("create staff member: %w", err)
	case err != nil:
		return fmt.Errorf("create staff member: %w", err)
	}
	return nil
}

// Staff returns tenant's member id; ErrStaffNotFound.
func (s *Store) Staff(ctx context.Context, tenant, id string) (*StaffMember, error) {
	if !ValidStaffID(id) {
		return nil, ErrStaffNotFound
	}
	h, err := s.rdb.HGetAll(ctx, s.keys.Staff(tenant, id)).Result()
	if err != nil {
		return nil, fmt.Errorf("staff member: %w", err)
	}
	m := decodeStaff(tenant, h)
	if m == nil {
		return nil, ErrStaffNotFound
	}
	return m, nil
}

// StaffByUsername returns tenant's member with user name u;
// ErrStaffNotFound.
func (s *Store) StaffByUsername(ctx context.Context, tenant, u string) (*StaffMember, error) {
	if !ValidUsername(u) {
		return nil, ErrStaffNotFound
	}
	id, err := s.rdb.HGet(ctx, s.keys.StaffNames(tenant), u).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, ErrStaffNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("staff member by user name: %w", err)
	}
	return s.Staff(ctx, tenant, id)
}

// ListStaff returns every member of tenant, disabled ones too, by user
// name.
func (s *Store) ListStaff(ctx context.Context, tenant string) ([]*StaffMember, error) {
	ids, err := s.rdb.HGetAll(ctx, s.keys.StaffNames(tenant)).Result()
	if err != nil {
		return nil, fmt.Errorf("list staff: %w", err)
	}
	if len(ids) == 0 {
		return []*StaffMember{}, nil
	}
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.MapStringStringCmd, 0, len(ids))
	for _, id := range ids {
		cmds = append(cmds, p.HGetAll(ctx, s.keys.Staff(tenant, id)))
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("list staff: %w", err)
	}
	out := make([]*StaffMember, 0, len(cmds))
	for _, c := range cmds {
		if m := decodeStaff(tenant, c.Val()); m != nil {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *StaffMember) int { return strings.Compare(a.Username, b.Username) })
	return out, nil
}

// UpdateStaff applies change to tenant's member id and stores the result
// (ErrStaffNotFound; change's own error is returned as it is). Disabling
// the member or changing its password hash raises its generation, which
// voids its sessions. The member is watched: a concurrent update makes
// this one start again from what the other wrote.
func (s *Store) UpdateStaff(ctx context.Context, tenant, id string, change func(*StaffMember) error) (*StaffMember, error) {
	if !ValidStaffID(id) {
		return nil, ErrStaffNotFound
	}
	key := s.keys.Staff(tenant, id)
	var out *StaffMember
	var err error
	for range 10 {
		err = s.rdb.Watch(ctx, func(tx *goredis.Tx) error {
			h, err := tx.HGetAll(ctx, key).Result()
			if err != nil {
				return err
			}
			m := decodeStaff(tenant, h)
			if m == nil {
				return ErrStaffNotFound
			}
			before := *m
			if err := change(m); err != nil {
				return changeError{err}
			}
			m.ID, m.TenantID, m.Username, m.CreatedMS = before.ID, tenant, before.Username, before.CreatedMS
			if (m.Disabled && !before.Disabled) || m.PasswordHash != before.PasswordHash {
				m.Generation = before.Generation + 1
			}
			m.UpdatedMS = s.nowMS()
			_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.HSet(ctx, key, m.fields())
				return nil
			})
			out = m
			return err
		}, key)
		if !errors.Is(err, goredis.TxFailedErr) {
			break
		}
	}
	var ce changeError
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, ErrStaffNotFound):
		return nil, ErrStaffNotFound
	case errors.As(err, &ce):
		return nil, ce.err
	}
	return nil, fmt.Errorf("update staff member: %w", err)
}

// changeError carries the error of UpdateStaff's change function through
// the transaction, told apart from Redis's own.
type changeError struct{ err error }

func (e changeError) Error() string { return e.err.Error() }

// Session is a staff member's browser session, as the hash at
// Keys.Session holds it: `t` tenant, `s` staff id, `g` the member's
// generation when it began, `c` its CSRF token, `ca` created (ms).
type Session struct {
	TenantID   string
	StaffID    string
	Generation int64
	// CSRF is the token every request of the session but GET and HEAD
	// must echo in X-CSRF-Token.
	CSRF      string
	CreatedMS int64
}

// randomToken returns 32 random bytes, base64url without padding.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionKey is the key of the session whose cookie value is token.
func (s *Store) sessionKey(token string) string {
	d := sha256.Sum256([]byte(token))
	return s.keys.Session(hex.EncodeToString(d[:]))
}

// maxSessionToken bounds a cookie value worth looking up (a token is 43
// characters).
const maxSessionToken = 128

// CreateSession begins a session of tenant's member staffID (at its
// generation gen) that lives ttl past its last use, and returns its
// cookie value (32 random bytes, base64url) and the session.
func (s *Store) CreateSession(ctx context.Context, tenant, staffID string, gen int64, ttl time.Duration) (string, *Session, error) {
	token := randomToken()
	sess := &Session{TenantID: tenant, StaffID: staffID, Generation: gen, CSRF: randomToken(), CreatedMS: s.nowMS()}
	key := s.sessionKey(token)
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSet(ctx, key, "t", sess.TenantID, "s", sess.StaffID, "g", sess.Generation, "c", sess.CSRF, "ca", sess.CreatedMS)
		p.PExpire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("create session: %w", err)
	}
	return token, sess, nil
}

// Session returns the live session whose cookie value is token and
// renews it for ttl (a sliding expiry); ErrSessionNotFound.
func (s *Store) Session(ctx context.Context, token string, ttl time.Duration) (*Session, error) {
	if token == "" || len(token) > maxSessionToken {
		return nil, ErrSessionNotFound
	}
	key := s.sessionKey(token)
	p := s.rdb.Pipeline()
	h := p.HGetAll(ctx, key)
	p.PExpire(ctx, key, ttl) // nothing when the key is gone
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	v := h.Val()
	if v["t"] == "" || v["s"] == "" {
		return nil, ErrSessionNotFound
	}
	g, _ := strconv.ParseInt(v["g"], 10, 64)
	ca, _ := strconv.ParseInt(v["ca"], 10, 64)
	return &Session{TenantID: v["t"], StaffID: v["s"], Generation: g, CSRF: v["c"], CreatedMS: ca}, nil
}

// DeleteSession ends the session whose cookie value is token (nothing
// when there is none).
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	if token == "" || len(token) > maxSessionToken {
		return nil
	}
	if err := s.rdb.Del(ctx, s.sessionKey(token)).Err(); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// LoginAttempt counts one login attempt of tenant's user name u against
// the brute-force window (which starts at the first attempt counted and
// lasts window) and returns the attempts counted in it so far, this one
// included, and what is left of the window. Counting before the password
// is checked lets no burst of parallel guesses slip past the limit;
// ClearLoginFailures forgets them after a success.
func (s *Store) LoginAttempt(ctx context.Context, tenant, u string, window time.Duration) (int64, time.Duration, error) {
	key := s.keys.LoginFailures(tenant, u)
	p := s.rdb.TxPipeline()
	n := p.Incr(ctx, key)
	p.Do(ctx, "PEXPIRE", key, window.Milliseconds(), "NX")
	left := p.PTTL(ctx, key)
	if _, err := p.Exec(ctx); err != nil {
		return 0, 0, fmt.Errorf("login attempt: %w", err)
	}
	return n.Val(), left.Val(), nil
}

// ClearLoginFailures forgets the counted attempts of tenant's user name u.
func (s *Store) ClearLoginFailures(ctx context.Context, tenant, u string) error {
	if err := s.rdb.Del(ctx, s.keys.LoginFailures(tenant, u)).Err(); err != nil {
		return fmt.Errorf("clear login failures: %w", err)
	}
	return nil
}
