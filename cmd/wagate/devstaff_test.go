package main

import (
	"context"
	"slices"
	"testing"

	"github.com/wagate/wagate/internal/password"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// TestDevStaffAreMadeAtEveryStart: `wagate dev` gives the demo tenant
// alice and bruno with the printed password, again after a restart that
// finds them changed, and keeps what else an admin changed.
func TestDevStaffAreMadeAtEveryStart(t *testing.T) {
	rdb := redistest.Client(t)
	store, err := redis.New(context.Background(), rdb, redis.Config{Prefix: redistest.Prefix(t, rdb), Shards: 2, InboundParts: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	ctx := context.Background()
	check := func(wantDepts map[string][]string) {
		t.Helper()
		list, err := store.ListStaff(ctx, devTenant)
		if err != nil || len(list) != 2 {
			t.Fatalf("demo staff %v %v", list, err)
		}
		want := map[string][2]string{"alice": {"agent", "Alice Martin"}, "bruno": {"supervisor", "Bruno Keller"}}
		for _, m := range list {
			if w := want[m.Username]; m.Role != w[0] || m.Name != w[1] || m.Disabled || !slices.Equal(m.Departments, wantDepts[m.Username]) {
				t.Fatalf("%s: %+v", m.Username, m)
			}
			if ok, err := password.Verify(devStaffPassword, m.PasswordHash); !ok || err != nil {
				t.Fatalf("%s does not sign in with %s: %v", m.Username, devStaffPassword, err)
			}
		}
	}
	first := map[string][]string{"alice": {"front_desk"}, "bruno": {}}
	if err := devStaff(ctx, store); err != nil {
		t.Fatal(err)
	}
	check(first)
	alice, _ := store.StaffByUsername(ctx, devTenant, "alice")
	if err := devStaff(ctx, store); err != nil {
		t.Fatal(err)
	}
	check(first)
	if again, _ := store.StaffByUsername(ctx, devTenant, "alice"); again.ID != alice.ID || again.Generation != alice.Generation {
		t.Fatalf("a second start made alice again or ended her sessions: %+v", again)
	}
	// An admin disabled alice, gave her another password and departments.
	other, _ := password.Hash("another-password", password.Fast())
	if _, err := store.UpdateStaff(ctx, devTenant, alice.ID, func(m *redis.StaffMember) error {
		m.Disabled, m.PasswordHash, m.Departments = true, other, []string{"spa"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := devStaff(ctx, store); err != nil {
		t.Fatal(err)
	}
	check(map[string][]string{"alice": {"spa"}, "bruno": {}})
}
