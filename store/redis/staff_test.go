package redis

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStaffMembersAreKeptPerTenantWithUniqueUserNames(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	alice := &StaffMember{TenantID: "grand-plaza", Username: "alice", Name: "Alice Martin", Role: StaffAgent,
		Departments: []string{"front_desk"}, PasswordHash: "$argon2id$x"}
	must(t, s.CreateStaff(ctx, alice))
	if !ValidStaffID(alice.ID) || !strings.HasPrefix(alice.ID, "stf_") || alice.Availability != AvailabilityOffline || alice.CreatedMS == 0 {
		t.Fatalf("created %+v", alice)
	}
	// The member's hash and the index are the tenant's keys.
	for _, k := range []string{s.keys.Staff("grand-plaza", alice.ID), s.keys.StaffNames("grand-plaza")} {
		if !strings.Contains(k, "{grand-plaza}") || rdb.Exists(ctx, k).Val() != 1 {
			t.Fatalf("key %s: missing or not the tenant's", k)
		}
	}

	f := func(name string, m *StaffMember, want error) {
		t.Run(name, func(t *testing.T) {
			err := s.CreateStaff(ctx, m)
			if want == nil && err != nil || want != nil && !errors.Is(err, want) {
				t.Fatalf("CreateStaff: %v, want %v", err, want)
			}
		})
	}
	f("the same user name", &StaffMember{TenantID: "grand-plaza", Username: "alice", Role: StaffAdmin}, ErrUsernameTaken)
	f("another tenant's alice", &StaffMember{TenantID: "seaside", Username: "alice", Role: StaffAgent}, nil)
	f("a second member", &StaffMember{TenantID: "grand-plaza", Username: "bruno", Name: "Bruno Keller", Role: StaffSupervisor}, nil)

	got, err := s.StaffByUsername(ctx, "grand-plaza", "alice")
	must(t, err)
	if got.ID != alice.ID || got.Name != "Alice Martin" || !slices.Equal(got.Departments, []string{"front_desk"}) || got.PasswordHash != "$argon2id$x" {
		t.Fatalf("by user name: %+v", got)
	}
	// Another tenant's id is not found, nor is an id that is no staff id.
	for _, c := range []struct{ tenant, id string }{{"seaside", alice.ID}, {"grand-plaza", "stf_nobody"}, {"grand-plaza", "staff_456"}, {"grand-plaza", "stf_a:b"}} {
		if _, err := s.Staff(ctx, c.tenant, c.id); !errors.Is(err, ErrStaffNotFound) {
			t.Errorf("Staff(%s, %s): %v, want ErrStaffNotFound", c.tenant, c.id, err)
		}
	}
	if _, err := s.StaffByUsername(ctx, "seaside", "bruno"); !errors.Is(err, ErrStaffNotFound) {
		t.Fatalf("seaside's bruno: %v", err)
	}
	list, err := s.ListStaff(ctx, "grand-plaza")
	must(t, err)
	var names []string
	for _, m := range list {
		names = append(names, m.Username)
	}
	if !slices.Equal(names, []string{"alice", "bruno"}) {
		t.Fatalf("grand-plaza's staff: %v", names)
	}
	if list, _ := s.ListStaff(ctx, "nobody"); len(list) != 0 {
		t.Fatalf("a tenant without staff lists %v", list)
	}
}

func TestConcurrentCreationsOfOneUserNameHaveOneWinner(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.CreateStaff(ctx, &StaffMember{TenantID: "grand-plaza", Username: "night.porter", Role: StaffAgent})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrUsernameTaken):
			t.Fatalf("creation: %v", err)
		}
	}
	list, _ := s.ListStaff(ctx, "grand-plaza")
	if won != 1 || len(list) != 1 {
		t.Fatalf("%d creations won, %d members", won, len(list))
	}
}

func TestUpdatingStaffRaisesTheGenerationOnlyToEndSessions(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	m := &StaffMember{TenantID: "grand-plaza", Username: "carla", Role: StaffAgent, PasswordHash: "h1"}
	must(t, s.CreateStaff(ctx, m))
	f := func(name string, change func(*StaffMember), wantGen int64) {
		t.Run(name, func(t *testing.T) {
			got, err := s.UpdateStaff(ctx, "grand-plaza", m.ID, func(x *StaffMember) error { change(x); return nil })
			must(t, err)
			stored, _ := s.Staff(ctx, "grand-plaza", m.ID)
			if got.Generation != wantGen || stored.Generation != wantGen {
				t.Fatalf("generation %d (stored %d), want %d", got.Generation, stored.Generation, wantGen)
			}
		})
	}
	f("new departments", func(x *StaffMember) { x.Departments = []string{"spa", "concierge"} }, 0)
	f("away", func(x *StaffMember) { x.Availability = AvailabilityAway }, 0)
	f("a new role", func(x *StaffMember) { x.Role = StaffSupervisor }, 0)
	f("a new password", func(x *StaffMember) { x.PasswordHash = "h2" }, 1)
	f("disabled", func(x *StaffMember) { x.Disabled = true }, 2)
	f("still disabled, renamed", func(x *StaffMember) { x.Name = "Carla R." }, 2)
	f("enabled again", func(x *StaffMember) { x.Disabled = false }, 2)
	// What a change may not touch stays.
	got, err := s.UpdateStaff(ctx, "grand-plaza", m.ID, func(x *StaffMember) error { x.Username, x.ID = "mallory", "stf_other"; return nil })
	must(t, err)
	if got.Username != "carla" || got.ID != m.ID || !slices.Equal(got.Departments, []string{"spa", "concierge"}) || got.Name != "Carla R." {
		t.Fatalf("after all changes: %+v", got)
	}
	// The change's own error comes back as it is, and nothing is written.
	errNo := errors.New("no")
	if _, err := s.UpdateStaff(ctx, "grand-plaza", m.ID, func(x *StaffMember) error { x.Name = "X"; return errNo }); err != errNo {
		t.Fatalf("change error: %v", err)
	}
	if st, _ := s.Staff(ctx, "grand-plaza", m.ID); st.Name != "Carla R." {
		t.Fatalf("a refused change was written: %+v", st)
	}
	if _, err := s.UpdateStaff(ctx, "seaside", m.ID, func(*StaffMember) error { return nil }); !errors.Is(err, ErrStaffNotFound) {
		t.Fatalf("another tenant's update: %v", err)
	}
}

func TestSessionsSlideAndEnd(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	token, sess, err := s.CreateSession(ctx, "grand-plaza", "stf_abc", 3, time.Minute)
	must(t, err)
	if len(token) != 43 || strings.ContainsAny(token, "+/=") || len(sess.CSRF) != 43 || sess.CSRF == token {
		t.Fatalf("token %q csrf %q", token, sess.CSRF)
	}
	key := s.sessionKey(token)
	if strings.Contains(key, token) || rdb.Exists(ctx, key).Val() != 1 {
		t.Fatalf("session key %s holds the cookie value or is missing", key)
	}
	// Use renews the TTL.
	rdb.Expire(ctx, key, 5*time.Second)
	got, err := s.Session(ctx, token, time.Hour)
	must(t, err)
	if got.TenantID != "grand-plaza" || got.StaffID != "stf_abc" || got.Generation != 3 || got.CSRF != sess.CSRF {
		t.Fatalf("session %+v", got)
	}
	if ttl := rdb.TTL(ctx, key).Val(); ttl < 59*time.Minute {
		t.Fatalf("TTL after use %v, want about an hour", ttl)
	}
	for _, bad := range []string{"", token + "x", token[:42], strings.Repeat("a", 500)} {
		if _, err := s.Session(ctx, bad, time.Hour); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("Session(%q): %v", bad, err)
		}
	}
	must(t, s.DeleteSession(ctx, token))
	if _, err := s.Session(ctx, token, time.Hour); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	// An expired session is gone.
	token, _, _ = s.CreateSession(ctx, "grand-plaza", "stf_abc", 0, 50*time.Millisecond)
	time.Sleep(120 * time.Millisecond)
	if _, err := s.Session(ctx, token, time.Hour); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestLoginAttemptsAreCountedPerTenantAndUserInAWindow(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		n, left, err := s.LoginAttempt(ctx, "grand-plaza", "alice", 15*time.Minute)
		must(t, err)
		if n != int64(i) || left <= 14*time.Minute || left > 15*time.Minute {
			t.Fatalf("attempt %d: %d, %v left", i, n, left)
		}
	}
	// Other users and tenants have their own counts.
	if n, _, _ := s.LoginAttempt(ctx, "seaside", "alice", 15*time.Minute); n != 1 {
		t.Fatalf("seaside's alice: %d", n)
	}
	if n, _, _ := s.LoginAttempt(ctx, "grand-plaza", "bruno", 15*time.Minute); n != 1 {
		t.Fatalf("bruno: %d", n)
	}
	must(t, s.ClearLoginFailures(ctx, "grand-plaza", "alice"))
	if n, _, _ := s.LoginAttempt(ctx, "grand-plaza", "alice", 15*time.Minute); n != 1 {
		t.Fatalf("after a clear: %d", n)
	}
	// The window runs from the first attempt: later ones do not extend it.
	s.LoginAttempt(ctx, "grand-plaza", "dora", 200*time.Millisecond)
	time.Sleep(120 * time.Millisecond)
	s.LoginAttempt(ctx, "grand-plaza", "dora", 200*time.Millisecond)
	time.Sleep(150 * time.Millisecond)
	if n, _, _ := s.LoginAttempt(ctx, "grand-plaza", "dora", 200*time.Millisecond); n != 1 {
		t.Fatalf("a window extended by later attempts: %d", n)
	}
}

func TestAssignSetsPersonAndDepartmentApart(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	a := textArgs("+14155550100", "hi")
	a.ConversationID = "conv_dept"
	_, err := s.Enqueue(ctx, a)
	must(t, err)
	c, err := s.FindConversation(ctx, "hotel", []string{testSender}, "conv_dept")
	must(t, err)
	f := func(fields map[string]any, wantAs, wantDp string) {
		t.Helper()
		if _, _, err := s.ConversationAction(ctx, c, ActionAssign, fields); err != nil {
			t.Fatal(err)
		}
		got, _ := s.FindConversation(ctx, "hotel", []string{testSender}, "conv_dept")
		if got.AssignedTo != wantAs || got.Department != wantDp {
			t.Fatalf("after %v: assigned %q department %q, want %q %q", fields, got.AssignedTo, got.Department, wantAs, wantDp)
		}
	}
	f(map[string]any{"department": "housekeeping"}, "", "housekeeping")
	f(map[string]any{"assigned_to": "stf_x"}, "stf_x", "housekeeping")
	f(map[string]any{"assigned_to": "", "department": "spa"}, "", "spa")
	f(map[string]any{"department": ""}, "", "")
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
