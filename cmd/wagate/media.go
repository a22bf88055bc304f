package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wagate/wagate/inbound"
	"github.com/wagate/wagate/ingest"
	"github.com/wagate/wagate/internal/mediakit"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/store/media"
	"github.com/wagate/wagate/store/redis"
)

// devMediaSigningKey signs the media URLs of `wagate dev`, so that they
// survive a restart of the demo. Never for serve.
const devMediaSigningKey = "wagate-dev-media-signing-key-not-for-production"

// mediaFlags are the settings of media uploads: where files are kept, how
// their URLs are signed and where clients reach them.
type mediaFlags struct {
	dir        string
	signingKey string
	publicURL  string
	urlTTL     time.Duration
}

func (m *mediaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.dir, "media-dir", env("WAGATE_MEDIA_DIR", ".wagate/media"),
		"folder of uploaded media files; every API and dispatcher instance needs the same one (WAGATE_MEDIA_DIR)")
	m.signingKey = env("WAGATE_MEDIA_SIGNING_KEY", "")
	fs.Var(secretFlag{&m.signingKey, hideSecret}, "media-signing-key",
		"`key` of media URL signatures, at least 32 bytes, the same on every instance; empty: a random one, and URLs stop working when the process stops (WAGATE_MEDIA_SIGNING_KEY)")
	fs.StringVar(&m.publicURL, "public-url", env("WAGATE_PUBLIC_URL", ""),
		"where clients reach the API, the start of media URLs, e.g. https://wa.example.com (default: http://<-http address>) (WAGATE_PUBLIC_URL)")
	fs.DurationVar(&m.urlTTL, "media-url-ttl", envDuration("WAGATE_MEDIA_URL_TTL", 24*time.Hour),
		"how long a media URL works (WAGATE_MEDIA_URL_TTL)")
}

// setup opens the media folder and returns the API's media settings and
// the Meta clients' media source, both over it and store. Without a
// folder, uploads are off (sends by link still work) and the source is nil.
func (m *mediaFlags) setup(httpAddr string, store *redis.Store, log *slog.Logger) (mediakit.Config, meta.MediaSource, error) {
	if m.dir == "" {
		return mediakit.Config{}, nil, nil
	}
	files, err := media.New(m.dir)
	if err != nil {
		return mediakit.Config{}, nil, fmt.Errorf("media folder: %w", err)
	}
	key := []byte(m.signingKey)
	switch {
	case len(key) == 0:
		key = make([]byte, 32)
		rand.Read(key)
		log.Warn("no media signing key (-media-signing-key): media URLs work only on this instance, until it stops")
	case len(key) < 32:
		return mediakit.Config{}, nil, errors.New("media signing key: at least 32 bytes")
	}
	base := m.publicURL
	if base == "" {
		base = "http://" + reachable(httpAddr)
	}
	cfg := mediakit.Config{Files: files, SigningKey: key, PublicBaseURL: base, URLTTL: m.urlTTL}
	return cfg, newMediaSource(files, store, redis.DefaultProviderMediaTTL), nil
}

// mediaSource is the Meta clients' meta.MediaSource: media records and the
// provider id cache in Redis, bytes in the media folder.
type mediaSource struct {
	files *media.Store
	store *redis.Store
	// ttl is how long a provider's media id is reused.
	ttl time.Duration
}

var _ meta.MediaSource = (*mediaSource)(nil)

// newMediaSource returns the media source over files and store; Meta's
// ids are reused for ttl.
func newMediaSource(files *media.Store, store *redis.Store, ttl time.Duration) *mediaSource {
	return &mediaSource{files: files, store: store, ttl: ttl}
}

// Media returns what the record of id says, with a way to open its bytes.
func (m *mediaSource) Media(ctx context.Context, id string) (meta.Media, error) {
	rec, err := m.store.Media(ctx, id)
	if errors.Is(err, redis.ErrMediaNotFound) {
		return meta.Media{}, fmt.Errorf("media %s: %w", id, meta.ErrMediaNotFound)
	}
	if err != nil {
		return meta.Media{}, err
	}
	sum := rec.SHA256
	return meta.Media{SHA256: sum, MIME: rec.MIME, Size: rec.Size, Filename: rec.Filename,
		Open: func() (io.ReadCloser, error) {
			f, err := m.files.Open(sum)
			if errors.Is(err, media.ErrNotFound) || errors.Is(err, media.ErrBadSum) {
				return nil, fmt.Errorf("media %s file %s: %w", id, sum, meta.ErrMediaNotFound)
			}
			return f, err
		}}, nil
}

// ProviderMediaID returns account's cached Meta id of the bytes sum.
func (m *mediaSource) ProviderMediaID(ctx context.Context, account, sum string) (string, error) {
	return m.store.ProviderMediaID(ctx, account, sum)
}

// SetProviderMediaID caches (or, with "", forgets) account's Meta id of
// the bytes sum.
func (m *mediaSource) SetProviderMediaID(ctx context.Context, account, sum, id string) error {
	return m.store.SetProviderMediaID(ctx, account, sum, id, m.ttl)
}

// mediaFetchers returns, by Meta phone number id, the fetcher of the Meta
// account that holds the number: guests' media sent to a number are
// downloaded with its account's token.
func (fc *fileConfig) mediaFetchers() (map[string]inbound.MediaFetcher, error) {
	out := map[string]inbound.MediaFetcher{}
	for _, a := range fc.Meta.Accounts {
		f, err := meta.NewMediaFetcher(meta.Config{Name: a.Name, BaseURL: a.BaseURL, Version: a.Version, AccessToken: a.AccessToken,
			PhoneNumberIDs: a.Numbers}, meta.FetchConfig{})
		if err != nil {
			return nil, fmt.Errorf("config: meta account %s: %w", a.Name, err)
		}
		for _, id := range a.Numbers {
			out[id] = f
		}
	}
	return out, nil
}

// readMarkers are the API's clients for read receipts and typing
// indicators: one per Meta account, by business number (E.164).
func (fc *fileConfig) readMarkers() (map[string]ingest.ReadMarker, error) {
	out := map[string]ingest.ReadMarker{}
	for _, a := range fc.Meta.Accounts {
		c, err := meta.New(meta.Config{Name: a.Name, BaseURL: a.BaseURL, Version: a.Version, AccessToken: a.AccessToken,
			PhoneNumberIDs: a.Numbers, WABAID: a.WABAID})
		if err != nil {
			return nil, fmt.Errorf("config: meta account %s: %w", a.Name, err)
		}
		for sender := range a.Numbers {
			out[sender] = c
		}
	}
	return out, nil
}
