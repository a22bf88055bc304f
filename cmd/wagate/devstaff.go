package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/wagate/wagate/internal/password"
	"github.com/wagate/wagate/store/redis"
)

// devStaffPassword is the password of the demo tenant's staff members.
const devStaffPassword = "dev-password"

// devStaffMembers are the demo tenant's staff members: an agent of the
// front desk and a supervisor, to try the inbox as both. Alice is seed
// 001's staff_456, the staff member its example sends name.
func devStaffMembers() []redis.StaffMember {
	return []redis.StaffMember{
		{ID: "staff_456", TenantID: devTenant, Username: "alice", Name: "Alice Martin", Role: redis.StaffAgent, Departments: []string{"front_desk"}},
		{ID: "staff_123", TenantID: devTenant, Username: "bruno", Name: "Bruno Keller", Role: redis.StaffSupervisor, Departments: []string{}},
	}
}

// devStaff makes the demo tenant's staff members at every start: a
// member missing is created, one there is enabled and given
// devStaffPassword again if it had another, so that the printed
// credentials always work; the rest of what was changed through the API
// stays.
func devStaff(ctx context.Context, store *redis.Store) error {
	hash, err := password.Hash(devStaffPassword, password.Default())
	if err != nil {
		return fmt.Errorf("demo staff: %w", err)
	}
	for _, m := range devStaffMembers() {
		m.PasswordHash = hash
		err := store.CreateStaff(ctx, &m)
		if !errors.Is(err, redis.ErrUsernameTaken) {
			if err != nil {
				return fmt.Errorf("demo staff %s: %w", m.Username, err)
			}
			continue
		}
		have, err := store.StaffByUsername(ctx, devTenant, m.Username)
		if err != nil {
			return fmt.Errorf("demo staff %s: %w", m.Username, err)
		}
		same, _ := password.Verify(devStaffPassword, have.PasswordHash)
		if same && !have.Disabled {
			continue
		}
		if _, err := store.UpdateStaff(ctx, devTenant, have.ID, func(x *redis.StaffMember) error {
			x.Disabled = false
			if !same {
				x.PasswordHash = hash
			}
			return nil
		}); err != nil {
			return fmt.Errorf("demo staff %s: %w", m.Username, err)
		}
	}
	return nil
}
