package tenantcache

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCacheKeepsAndFallsBack: a value is read once per ttl, forgotten on
// demand, and kept through a failing load; with nothing kept, the load's
// answer and error come back.
func TestCacheKeepsAndFallsBack(t *testing.T) {
	var loads int
	var fail bool
	c := New(time.Hour, func(ctx context.Context, tenant string) (string, error) {
		loads++
		if fail {
			return "default", errors.New("redis down")
		}
		return tenant + "-v" + string(rune('0'+loads)), nil
	})
	ctx := context.Background()
	for _, step := range []struct {
		name   string
		forget bool
		// expire ages the kept value past the ttl.
		expire  bool
		fail    bool
		tenant  string
		want    string
		wantErr bool
		loads   int
	}{
		{name: "first read loads", tenant: "a", want: "a-v1", loads: 1},
		{name: "within the ttl, kept", tenant: "a", want: "a-v1", loads: 1},
		{name: "forgotten, loaded again", forget: true, tenant: "a", want: "a-v2", loads: 2},
		{name: "expired and load fails: the last value", expire: true, fail: true, tenant: "a", want: "a-v2", loads: 3},
		{name: "nothing kept and load fails: its answer and error", fail: true, tenant: "b", want: "default", wantErr: true, loads: 4},
	} {
		fail = step.fail
		if step.forget {
			c.Forget(step.tenant)
		}
		if step.expire {
			c.m[step.tenant] = cached[string]{v: c.m[step.tenant].v}
		}
		got, err := c.Get(ctx, step.tenant)
		if got != step.want || (err != nil) != step.wantErr || loads != step.loads {
			t.Fatalf("%s: %q %v after %d loads, want %q (error %v) after %d", step.name, got, err, loads, step.want, step.wantErr, step.loads)
		}
	}
}
