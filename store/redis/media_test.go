package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMediaRecordRoundTrip(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	rec := &MediaRecord{ID: "med_0123456789abcdefghjkmnpqrs", TenantID: "grand-plaza", SHA256: strings.Repeat("ab", 32),
		MIME: "application/pdf", Type: "document", Size: 48213, Filename: "hotel amenities guide.pdf", CreatedMS: 1763700000123}
	if err := s.PutMedia(ctx, rec, time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := s.Media(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *rec {
		t.Fatalf("read back %+v, wrote %+v", got, rec)
	}
	if ttl := rdb.PTTL(ctx, s.Keys().Media(rec.ID)).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("record ttl %v, want an hour", ttl)
	}
	if _, err := s.Media(ctx, "med_unknown"); !errors.Is(err, ErrMediaNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if err := s.PutMedia(ctx, &MediaRecord{ID: "med_x"}, time.Hour); err == nil {
		t.Fatal("a record without tenant was written")
	}
}

func TestProviderMediaIDCache(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	sum := strings.Repeat("cd", 32)
	if id, err := s.ProviderMediaID(ctx, "meta/100000000000001", sum); err != nil || id != "" {
		t.Fatalf("empty cache: %q %v", id, err)
	}
	if err := s.SetProviderMediaID(ctx, "meta/100000000000001", sum, "1037543291543636", DefaultProviderMediaTTL); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.ProviderMediaID(ctx, "meta/100000000000001", sum); id != "1037543291543636" {
		t.Fatalf("cached id %q", id)
	}
	// Another account (or number) uploads on its own.
	if id, _ := s.ProviderMediaID(ctx, "meta/100000000000002", sum); id != "" {
		t.Fatalf("another account sees %q", id)
	}
	ttl := rdb.PTTL(ctx, s.Keys().ProviderMedia("meta/100000000000001", sum)).Val()
	if ttl < 28*24*time.Hour || ttl > 29*24*time.Hour {
		t.Fatalf("cache ttl %v: want Meta's 30 days less a margin", ttl)
	}
	if err := s.SetProviderMediaID(ctx, "meta/100000000000001", sum, "", 0); err != nil {
		t.Fatal(err)
	}
	if id, _ := s.ProviderMediaID(ctx, "meta/100000000000001", sum); id != "" {
		t.Fatalf("forgotten id still there: %q", id)
	}
}
