package message

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWebhookSignatures(t *testing.T) {
	body := []byte(`{"event":"message_read","event_id":"evt_1"}`)
	at := time.Unix(1_767_000_000, 0)
	sig := SignWebhook("s3cret", body, at)
	if !strings.HasPrefix(sig, "t=1767000000,v1=") || len(sig) != len("t=1767000000,v1=")+64 {
		t.Fatalf("signature %q", sig)
	}
	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"fresh", "s3cret", sig, body, at.Add(time.Minute), nil},
		{"a rotated secret's second signature", "s3cret", "t=1767000000,v1=" + strings.Repeat("0", 64) + "," + sig[len("t=1767000000,"):], body, at, nil},
		{"replayed an hour later", "s3cret", sig, body, at.Add(time.Hour), ErrWebhookTooOld},
		{"from the future", "s3cret", sig, body, at.Add(-10 * time.Minute), ErrWebhookTooOld},
		{"another body", "s3cret", sig, []byte(`{"event":"message_read","event_id":"evt_2"}`), at, ErrWebhookSignature},
		{"another secret", "other", sig, body, at, ErrWebhookSignature},
		{"the time changed", "s3cret", strings.Replace(sig, "t=1767000000", "t=1767003600", 1), body, at.Add(time.Hour), ErrWebhookSignature},
		{"the old scheme", "s3cret", "sha256=" + strings.Repeat("a", 64), body, at, ErrWebhookSignature},
		{"empty", "s3cret", "", body, at, ErrWebhookSignature},
	}
	for _, tt := range tests {
		if err := VerifyWebhook(tt.secret, tt.header, tt.body, tt.now, WebhookTolerance); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}
