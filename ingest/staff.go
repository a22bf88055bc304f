package ingest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/internal/password"
	"github.com/wagate/wagate/internal/tenantcache"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// staffRoles and availabilities are the values the staff API takes.
var (
	staffRoles     = []string{redis.StaffAgent, redis.StaffSupervisor, redis.StaffAdmin}
	availabilities = []string{redis.AvailabilityOnline, redis.AvailabilityAway, redis.AvailabilityOffline}
)

// Limits of a member's fields.
const (
	maxStaffName      = 100
	maxDepartmentLen  = 40
	maxDepartments    = 20
	usernameRule      = "username must be 2 to 32 lower-case letters, digits, '.', '_' or '-'"
	departmentExample = "front_desk, housekeeping, concierge, maintenance, spa"
)

// staffJSON is a staff member as the API shows it: never its password hash.
type staffJSON struct {
	ID           string   `json:"id"`
	Username     string   `json:"username"`
	Name         string   `json:"name"`
	Role         string   `json:"role"`
	Departments  []string `json:"departments"`
	Availability string   `json:"availability"`
	Disabled     bool     `json:"disabled"`
	CreatedAt    string   `json:"created_at"`
	UpdatedAt    string   `json:"updated_at"`
}

func memberJSON(m *redis.StaffMember) staffJSON {
	dp := m.Departments
	if dp == nil {
		dp = []string{}
	}
	return staffJSON{ID: m.ID, Username: m.Username, Name: m.Name, Role: m.Role, Departments: dp,
		Availability: m.Availability, Disabled: m.Disabled, CreatedAt: rfc3339(m.CreatedMS), UpdatedAt: rfc3339(m.UpdatedMS)}
}

// normalizeDepartment is a department as stored and compared: trimmed,
// lower case, runs of spaces as one '_' ("Front Desk" is front_desk); ""
// when it is not a department name (empty, too long, control characters).
func normalizeDepartment(d string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.TrimSpace(d) {
		switch {
		case unicode.IsControl(r):
			return ""
		case unicode.IsSpace(r):
			space = true
			continue
		}
		if space {
			b.WriteByte('_')
			space = false
		}
		b.WriteRune(unicode.ToLower(r))
	}
	n := b.String()
	if n == "" || utf8.RuneCountInString(n) > maxDepartmentLen {
		return ""
	}
	return n
}

// departments checks and normalizes a list of departments, dropping
// repeats; the error names field[i].
func departments(field string, in []string) ([]string, *apiError) {
	if len(in) > maxDepartments {
		return nil, invalidRequest(field+" takes at most 20 departments", map[string]any{"field": field, "count": len(in), "max_items": maxDepartments})
	}
	out := []string{}
	for i, d := range in {
		n := normalizeDepartment(d)
		if n == "" {
			f := field + "[" + strconv.Itoa(i) + "]"
			return nil, invalidRequest(f+" must be a department name of 1 to 40 characters (e.g. "+departmentExample+")",
				map[string]any{"field": f, "max_length": maxDepartmentLen})
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// checkPassword refuses a password outside 10–128 characters.
func checkPassword(field, pw string) *apiError {
	if n := utf8.RuneCountInString(pw); n < minPasswordRunes || n > maxPasswordRunes {
		return invalidRequest(field+" must be 10 to 128 characters long", map[string]any{"field": field, "length": n,
			"min_length": minPasswordRunes, "max_length": maxPasswordRunes})
	}
	return nil
}

// checkName refuses an empty or over-long name.
func checkName(name string) *apiError {
	if strings.TrimSpace(name) == "" {
		return invalidRequest("name is required", map[string]any{"field": "name"})
	}
	if n := utf8.RuneCountInString(name); n > maxStaffName {
		return invalidRequest("name is longer than 100 characters", map[string]any{"field": "name", "length": n, "max_length": maxStaffName})
	}
	return nil
}

func checkRole(role string) *apiError {
	if !slices.Contains(staffRoles, role) {
		return invalidRequest("role must be agent, supervisor or admin", map[string]any{"field": "role", "allowed": staffRoles})
	}
	return nil
}

// staffNotFound answers an id that is no member of the tenant.
func staffNotFound(id string) *apiError {
	return &apiError{Code: message.CodeStaffNotFound, Message: "No staff member with this id",
		Details: map[string]any{"staff_id": id}, RecoveryOptions: []string{"List the staff with GET /api/v1/whatsapp/staff"}}
}

// staffCreate is the body of POST /staff.
type staffCreate struct {
	// ID is the member's id where the tenant has one already (its PMS's:
	// the staff_member_id its integrations send); wagate makes one
	// otherwise.
	ID          string   `json:"id"`
	Username    string   `json:"username"`
	Name        string   `json:"name"`
	Role        string   `json:"role"`
	Departments []string `json:"departments"`
	Password    string   `json:"password"`
}

// handleStaffCreate serves POST /api/v1/whatsapp/staff (admin): a new
// member who signs in with username and password.
func (s *Server) handleStaffCreate(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	var r staffCreate
	if e := decodeJSON(ctx.PostBody(), &r); e != nil {
		writeError(ctx, e)
		return
	}
	if !redis.ValidUsername(r.Username) {
		writeError(ctx, invalidRequest(usernameRule, map[string]any{"field": "username", "value": quote(r.Username)}))
		return
	}
	if r.ID != "" && !redis.ValidStaffID(r.ID) {
		writeError(ctx, invalidRequest("id may hold 1 to 64 letters, digits, '.', '_' and '-'", map[string]any{"field": "id"}))
		return
	}
	e := checkName(r.Name)
	if e == nil {
		e = checkRole(r.Role)
	}
	if e == nil {
		e = checkPassword("password", r.Password)
	}
	if e != nil {
		writeError(ctx, e)
		return
	}
	dps, e := departments("departments", r.Departments)
	if e != nil {
		writeError(ctx, e)
		return
	}
	hash, err := password.Hash(r.Password, s.cfg.PasswordParams)
	if err != nil {
		s.log.Error("hash a password", "err", err)
		writeError(ctx, &apiError{Code: message.CodeInternal, Message: "The password could not be hashed; nothing was changed"})
		return
	}
	m := &redis.StaffMember{ID: r.ID, TenantID: p.Tenant.ID, Username: r.Username, Name: strings.TrimSpace(r.Name), Role: r.Role,
		Departments: dps, PasswordHash: hash}
	rctx, cancel := s.apiCtx()
	defer cancel()
	switch err := s.store.CreateStaff(rctx, m); {
	case errors.Is(err, redis.ErrUsernameTaken):
		writeError(ctx, &apiError{Code: message.CodeUsernameTaken, Message: "Another staff member of this tenant has this user name",
			Details: map[string]any{"field": "username", "value": r.Username}, RecoveryOptions: []string{"Choose another user name"}})
		return
	case errors.Is(err, redis.ErrStaffIDTaken):
		writeError(ctx, &apiError{Code: message.CodeUsernameTaken, Message: "Another staff member of this tenant has this id",
			Details: map[string]any{"field": "id", "value": r.ID}, RecoveryOptions: []string{"Choose another id, or leave it out for wagate to make one"}})
		return
	case err != nil:
		s.log.Warn("create staff member", "err", err)
		writeError(ctx, unavailable("changed"))
		return
	}
	s.staff.Forget(p.Tenant.ID)
	writeJSON(ctx, fasthttp.StatusCreated, memberJSON(m))
}

// handleStaffList serves GET /api/v1/whatsapp/staff
// ?department=&availability=&include_disabled=: the tenant's members by
// user name. Anyone of the tenant may list them (the inbox offers
// colleagues to assign to); disabled members only to admins who ask.
func (s *Server) handleStaffList(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	q := ctx.QueryArgs()
	dept := ""
	if v := string(q.Peek("department")); v != "" {
		if dept = normalizeDepartment(v); dept == "" {
			writeError(ctx, invalidRequest("department must be a department name of 1 to 40 characters", map[string]any{"field": "department"}))
			return
		}
	}
	avail := string(q.Peek("availability"))
	if avail != "" && !slices.Contains(availabilities, avail) {
		writeError(ctx, invalidRequest("availability must be online, away or offline", map[string]any{"field": "availability", "allowed": availabilities}))
		return
	}
	disabled := false
	switch v := string(q.Peek("include_disabled")); v {
	case "", "false":
	case "true":
		disabled = p.Role == RoleAdmin
	default:
		writeError(ctx, invalidRequest("include_disabled must be true or false", map[string]any{"field": "include_disabled"}))
		return
	}
	rctx, cancel := s.apiCtx()
	defer cancel()
	all, err := s.store.ListStaff(rctx, p.Tenant.ID)
	if err != nil {
		s.log.Warn("list staff", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	out := struct {
		Staff []staffJSON `json:"staff"`
	}{Staff: []staffJSON{}}
	for _, m := range all {
		if (m.Disabled && !disabled) || (dept != "" && !slices.Contains(m.Departments, dept)) || (avail != "" && m.Availability != avail) {
			continue
		}
		out.Staff = append(out.Staff, memberJSON(m))
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// handleStaffGet serves GET /api/v1/whatsapp/staff/{id} (admin).
func (s *Server) handleStaffGet(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	rctx, cancel := s.apiCtx()
	defer cancel()
	m, err := s.store.Staff(rctx, p.Tenant.ID, ps[0])
	switch {
	case errors.Is(err, redis.ErrStaffNotFound):
		writeError(ctx, staffNotFound(ps[0]))
		return
	case err != nil:
		s.log.Warn("staff member", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, memberJSON(m))
}

// staffPatch is the body of PATCH /staff/{id}: the fields given replace
// the member's.
type staffPatch struct {
	Name        *string   `json:"name"`
	Role        *string   `json:"role"`
	Departments *[]string `json:"departments"`
	Disabled    *bool     `json:"disabled"`
}

// handleStaffPatch serves PATCH /api/v1/whatsapp/staff/{id} (admin):
// name, role, departments, disabled. Disabling a member ends their
// sessions at once. A signed-in admin may not disable or demote
// themselves, so that a slip does not lock the tenant's staff out.
func (s *Server) handleStaffPatch(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	var r staffPatch
	if e := decodeJSON(ctx.PostBody(), &r); e != nil {
		writeError(ctx, e)
		return
	}
	if r.Name == nil && r.Role == nil && r.Departments == nil && r.Disabled == nil {
		writeError(ctx, invalidRequest("Give at least one of name, role, departments, disabled", map[string]any{"field": "name"}))
		return
	}
	var e *apiError
	if r.Name != nil {
		e = checkName(*r.Name)
	}
	if e == nil && r.Role != nil {
		e = checkRole(*r.Role)
	}
	var dps []string
	if e == nil && r.Departments != nil {
		dps, e = departments("departments", *r.Departments)
	}
	if e == nil && p.Staff != nil && p.Staff.StaffID == ps[0] {
		switch {
		case r.Disabled != nil && *r.Disabled:
			e = invalidRequest("You cannot disable yourself", map[string]any{"field": "disabled"})
		case r.Role != nil && *r.Role != redis.StaffAdmin:
			e = invalidRequest("You cannot take the admin role from yourself", map[string]any{"field": "role"})
		}
	}
	if e != nil {
		writeError(ctx, e)
		return
	}
	s.updateStaff(ctx, p, ps[0], func(m *redis.StaffMember) error {
		if r.Name != nil {
			m.Name = strings.TrimSpace(*r.Name)
		}
		if r.Role != nil {
			m.Role = *r.Role
		}
		if r.Departments != nil {
			m.Departments = dps
		}
		if r.Disabled != nil {
			m.Disabled = *r.Disabled
		}
		return nil
	})
}

// updateStaff applies change to member id of p's tenant and answers the
// member.
func (s *Server) updateStaff(ctx *fasthttp.RequestCtx, p Principal, id string, change func(*redis.StaffMember) error) {
	rctx, cancel := s.apiCtx()
	defer cancel()
	m, err := s.store.UpdateStaff(rctx, p.Tenant.ID, id, change)
	switch {
	case errors.Is(err, redis.ErrStaffNotFound):
		writeError(ctx, staffNotFound(id))
		return
	case err != nil:
		s.log.Warn("update staff member", "err", err)
		writeError(ctx, unavailable("changed"))
		return
	}
	s.staff.Forget(p.Tenant.ID)
	writeJSON(ctx, fasthttp.StatusOK, memberJSON(m))
}

// handleStaffPassword serves POST /api/v1/whatsapp/staff/{id}/password
// (admin): a new password, which ends the member's sessions.
func (s *Server) handleStaffPassword(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	var r struct {
		Password string `json:"password"`
	}
	if e := decodeJSON(ctx.PostBody(), &r); e != nil {
		writeError(ctx, e)
		return
	}
	if e := checkPassword("password", r.Password); e != nil {
		writeError(ctx, e)
		return
	}
	hash, err := password.Hash(r.Password, s.cfg.PasswordParams)
	if err != nil {
		s.log.Error("hash a password", "err", err)
		writeError(ctx, &apiError{Code: message.CodeInternal, Message: "The password could not be hashed; nothing was changed"})
		return
	}
	s.updateStaff(ctx, p, ps[0], func(m *redis.StaffMember) error {
		m.PasswordHash = hash
		return nil
	})
}

// handleStaffMe serves PATCH /api/v1/whatsapp/staff/me (a session): the
// member's own availability.
func (s *Server) handleStaffMe(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	var r struct {
		Availability string `json:"availability"`
	}
	if e := decodeJSON(ctx.PostBody(), &r); e != nil {
		writeError(ctx, e)
		return
	}
	if !slices.Contains(availabilities, r.Availability) {
		writeError(ctx, invalidRequest("availability must be online, away or offline", map[string]any{"field": "availability", "allowed": availabilities}))
		return
	}
	s.updateStaff(ctx, p, p.Staff.StaffID, func(m *redis.StaffMember) error {
		m.Availability = r.Availability
		return nil
	})
}

// staffCache keeps, per tenant, which staff ids are enabled members, for
// the checks of sends and assignments, so that a send naming a member
// costs no Redis read.
type staffCache = tenantcache.Cache[staffIDs]

// staffIDs are a tenant's members: enabled[id] for each, false when
// disabled.
type staffIDs struct {
	enabled map[string]bool
}

func newStaffCache(store *redis.Store, ttl time.Duration) *staffCache {
	return tenantcache.New(ttl, func(ctx context.Context, tenant string) (staffIDs, error) {
		all, err := store.ListStaff(ctx, tenant)
		if err != nil {
			return staffIDs{}, err
		}
		ids := staffIDs{enabled: make(map[string]bool, len(all))}
		for _, m := range all {
			ids.enabled[m.ID] = !m.Disabled
		}
		return ids, nil
	})
}

// checkStaffRef checks that id (the value of field) names an enabled
// staff member of p's tenant. A tenant without staff members takes any
// id, as machine integrations name their own people (seed 001's
// "staff_456"); once a tenant has members, ids must be theirs.
func (s *Server) checkStaffRef(rctx context.Context, p Principal, field, id string) *apiError {
	op := "changed"
	if field == "staff_member_id" {
		op = "sent"
	}
	ids, err := s.staff.Get(rctx, p.Tenant.ID)
	if err != nil {
		s.log.Warn("staff ids", "err", err)
		return unavailable(op)
	}
	if len(ids.enabled) == 0 || ids.enabled[id] {
		return nil
	}
	if _, known := ids.enabled[id]; !known {
		// Made in another process since the ids were read?
		m, err := s.store.Staff(rctx, p.Tenant.ID, id)
		switch {
		case err == nil && !m.Disabled:
			return nil
		case err != nil && !errors.Is(err, redis.ErrStaffNotFound):
			s.log.Warn("staff member", "err", err)
			return unavailable(op)
		}
	}
	return invalidRequest(field+" names no enabled staff member of this tenant", map[string]any{"field": field, "value": quote(id)})
}

// sendStaffID is the staff_member_id a send records for p: a session
// member's own id (the default; naming someone else is refused), or a
// token's id checked by checkStaffRef.
func (s *Server) sendStaffID(rctx context.Context, p Principal, id string) (string, *apiError) {
	if p.Staff != nil {
		if id != "" && id != p.Staff.StaffID {
			return "", invalidRequest("staff_member_id of a signed-in staff member's send is the member's own id (or leave it out)",
				map[string]any{"field": "staff_member_id", "value": quote(id)})
		}
		return p.Staff.StaffID, nil
	}
	if id == "" {
		return "", nil
	}
	return id, s.checkStaffRef(rctx, p, "staff_member_id", id)
}
