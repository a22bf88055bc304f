package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ErrMediaNotFound says no media record has that id.
var ErrMediaNotFound = errors.New("media not found")

// DefaultProviderMediaTTL is how long a provider's media id is reused:
// Meta keeps uploaded media 30 days; a day of margin keeps a message that
// waits in its queue from being sent with an id that expired meanwhile.
const DefaultProviderMediaTTL = 29 * 24 * time.Hour

// MediaRecord is one upload: who owns it and what its bytes are. The bytes
// themselves are in the file store, under SHA256.
type MediaRecord struct {
	// ID is wagate's media id ("med_…").
	ID       string
	TenantID string
	// SHA256 is the hex digest of the bytes, their name in the file store.
	SHA256 string
	// MIME is the type detected from the bytes ("image/jpeg").
	MIME string
	// Type is the WhatsApp media type: image, document, audio, video or
	// sticker.
	Type string
	Size int64
	// Filename is the uploaded file's name, cleaned.
	Filename  string
	CreatedMS int64
	// Source is "in" for a file a guest sent (downloaded from the
	// provider), "" for an upload. ProviderMediaID is the provider's id of
	// a guest's file.
	Source          string
	ProviderMediaID string
	// Status is MediaFailed when a guest's file could not be had (no bytes:
	// SHA256 is empty), with Reason (a code) and Detail; "" when the bytes
	// are stored.
	Status, Reason, Detail string
}

// MediaFailed is the Status of a record whose bytes could not be had.
const MediaFailed = "failed"

// Media is the hash of one media record. Records have no hash tag: they are
// read and written on their own, never inside a shard's script.
func (k *Keys) Media(id string) string { return k.prefix + ":media:" + id }

// ProviderMedia maps (provider account, SHA-256 of the bytes) to the
// provider's media id of those bytes.
func (k *Keys) ProviderMedia(account, sum string) string {
	return k.prefix + ":pmedia:" + account + ":" + sum
}

// mediaFields are the hash fields of a record, in MediaRecord's order
// after ID.
var mediaFields = []string{"t", "h", "m", "ty", "n", "f", "ca", "src", "pm", "st", "er", "em"}

// PutMedia writes rec, which lives for ttl. Empty fields are not written.
func (s *Store) PutMedia(ctx context.Context, rec *MediaRecord, ttl time.Duration) error {
	if rec.ID == "" || rec.TenantID == "" || rec.SHA256 == "" && rec.Status != MediaFailed {
		return errors.New("put media: record without id, tenant or digest")
	}
	key := s.keys.Media(rec.ID)
	vals := []any{"t", rec.TenantID, "ty", rec.Type, "n", rec.Size, "ca", rec.CreatedMS}
	for _, f := range [...]struct{ k, v string }{{"h", rec.SHA256}, {"m", rec.MIME}, {"f", rec.Filename}, {"src", rec.Source},
		{"pm", rec.ProviderMediaID}, {"st", rec.Status}, {"er", rec.Reason}, {"em", rec.Detail}} {
		if f.v != "" {
			vals = append(vals, f.k, f.v)
		}
	}
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		if rec.Status == "" {
			// The bytes are had: whatever an earlier attempt wrote failed.
			p.HDel(ctx, key, "st", "er", "em")
		}
		p.HSet(ctx, key, vals...)
		p.PExpire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("put media %s: %w", rec.ID, err)
	}
	return nil
}

// Media returns the record of id, or ErrMediaNotFound.
func (s *Store) Media(ctx context.Context, id string) (*MediaRecord, error) {
	v, err := s.rdb.HMGet(ctx, s.keys.Media(id), mediaFields...).Result()
	if err != nil {
		return nil, fmt.Errorf("media %s: %w", id, err)
	}
	rec := decodeMedia(id, v)
	if rec == nil {
		return nil, ErrMediaNotFound
	}
	return rec, nil
}

// decodeMedia reads the values of mediaFields; nil when the hash is gone.
func decodeMedia(id string, v []any) *MediaRecord {
	str := func(i int) string { x, _ := v[i].(string); return x }
	if str(0) == "" {
		return nil
	}
	size, _ := strconv.ParseInt(str(4), 10, 64)
	created, _ := strconv.ParseInt(str(6), 10, 64)
	return &MediaRecord{ID: id, TenantID: str(0), SHA256: str(1), MIME: str(2), Type: str(3),
		Size: size, Filename: str(5), CreatedMS: created, Source: str(7), ProviderMediaID: str(8),
		Status: str(9), Reason: str(10), Detail: str(11)}
}

// MediaRecords returns the records of ids in one round trip, nil for the
// ones that are gone (or not written yet).
func (s *Store) MediaRecords(ctx context.Context, ids []string) ([]*MediaRecord, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	p := s.rdb.Pipeline()
	cmds := make([]*goredis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.HMGet(ctx, s.keys.Media(id), mediaFields...)
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("media records: %w", err)
	}
	out := make([]*MediaRecord, len(ids))
	for i, c := range cmds {
		out[i] = decodeMedia(ids[i], c.Val())
	}
	return out, nil
}

// ProviderMediaID returns the provider's media id of the bytes sum for
// account, "" when there is none (never uploaded, or expired).
func (s *Store) ProviderMediaID(ctx context.Context, account, sum string) (string, error) {
	id, err := s.rdb.Get(ctx, s.keys.ProviderMedia(account, sum)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("provider media id: %w", err)
	}
	return id, nil
}

// SetProviderMediaID remembers id as account's media id of the bytes sum
// for ttl; an empty id forgets it (the provider refused it).
func (s *Store) SetProviderMediaID(ctx context.Context, account, sum, id string, ttl time.Duration) error {
	key := s.keys.ProviderMedia(account, sum)
	var err error
	if id == "" {
		err = s.rdb.Del(ctx, key).Err()
	} else {
		err = s.rdb.Set(ctx, key, id, ttl).Err()
	}
	if err != nil {
		return fmt.Errorf("set provider media id: %w", err)
	}
	return nil
}
