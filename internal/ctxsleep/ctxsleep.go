// Package ctxsleep waits for a while or until a context ends, whichever
// comes first: the pause every polling loop of wagate's roles takes.
package ctxsleep

import (
	"context"
	"time"
)

// Sleep waits d, or less when ctx ends first; it then returns ctx's error
// (nil when the whole d passed).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
