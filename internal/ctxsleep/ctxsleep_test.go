package ctxsleep

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		d       time.Duration
		want    error
		atLeast time.Duration
	}{
		{"waits the whole time", context.Background(), 20 * time.Millisecond, nil, 20 * time.Millisecond},
		{"nothing to wait", context.Background(), 0, nil, 0},
		{"ended context returns at once", cancelled, time.Hour, context.Canceled, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := Sleep(tt.ctx, tt.d)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Sleep = %v, want %v", err, tt.want)
			}
			if took := time.Since(start); took < tt.atLeast || took > tt.atLeast+time.Minute {
				t.Fatalf("Sleep took %v, want at least %v", took, tt.atLeast)
			}
		})
	}
}
