package mediakit

import (
	"time"

	"github.com/wagate/wagate/store/redis"
)

// The media_status of a guest's media.
const (
	// StatusPending: the download is under way (no record yet).
	StatusPending = "pending"
	// StatusReady: kept; its URL serves the bytes.
	StatusReady = "ready"
	// StatusFailed: it could not be had (media_failure_code says why).
	StatusFailed = "failed"
	// StatusExpired: the record passed its retention (the history
	// outlived it); the bytes are no longer served.
	StatusExpired = "expired"
)

// Attachment is a guest's attachment in the history and in webhooks.
type Attachment struct {
	// ID is wagate's media id of the copy (the provider's id for messages
	// received before downloads existed).
	ID              string `json:"id"`
	ProviderMediaID string `json:"provider_media_id,omitempty"`
	// MimeType is the type told from the bytes once ready, the one the
	// provider stated until then.
	MimeType string `json:"mime_type"`
	Filename string `json:"filename,omitempty"`
	Caption  string `json:"caption,omitempty"`
	Size     int64  `json:"size,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
}

// Access is what a reader learns of a guest's media: its status, and a
// signed URL once it is ready.
type Access struct {
	MediaStatus        string `json:"media_status,omitempty"`
	MediaURL           string `json:"media_url,omitempty"`
	MediaURLExpiresAt  string `json:"media_url_expires_at,omitempty"`
	MediaFailureCode   string `json:"media_failure_code,omitempty"`
	MediaFailureReason string `json:"media_failure_reason,omitempty"`
}

// Link fills acc and attachment a from rec, the record of a guest's media
// whose message came at atMS (nil: not written yet, or gone), for tenant;
// URLs live ttl at most.
func (m *Media) Link(acc *Access, a *Attachment, rec *redis.MediaRecord, tenant string, atMS int64, ttl time.Duration) {
	now := m.Now()
	switch {
	case rec == nil || rec.TenantID != tenant:
		// No record is a download under way, unless the record's retention
		// has passed since.
		acc.MediaStatus = StatusPending
		if now.Sub(time.UnixMilli(atMS)) > m.Retention {
			acc.MediaStatus = StatusExpired
		}
	case rec.Status == redis.MediaFailed:
		acc.MediaStatus, acc.MediaFailureCode, acc.MediaFailureReason = StatusFailed, rec.Reason, rec.Detail
	default:
		acc.MediaStatus = StatusReady
		a.MimeType, a.Size, a.SHA256 = rec.MIME, rec.Size, rec.SHA256
		if m.Files != nil {
			expires := now.Add(min(ttl, m.URLTTL)).Unix()
			acc.MediaURL, acc.MediaURLExpiresAt = m.URL(rec.ID, expires), rfc3339(expires*1000)
		}
	}
}

// rfc3339 writes a time as the API shows every time.
func rfc3339(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
