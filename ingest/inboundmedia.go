package ingest

import (
	"context"
	"encoding/json"
	"time"

	"github.com/wagate/wagate/internal/mediakit"
	"github.com/wagate/wagate/store/redis"
)

// Guests' media are downloaded by the inbound role (package inbound); the
// API links them in the history it shows.

// historyURLTTL is how long a media URL of the history works: it is made
// at every read.
const historyURLTTL = time.Hour

// linkHistory gives the history's attachments (messages, made from hist)
// their status and URL, reading their records in one round trip: a
// guest's, and those staff sent from the media store (their content names
// it by id), so that the inbox shows both.
func (s *Server) linkHistory(ctx context.Context, tenant string, hist []redis.HistoryEntry, msgs []messageJSON) error {
	var ids []string
	var at []int
	for i := range hist {
		if hist[i].Direction == "in" && mediakit.ValidID(hist[i].MediaID) && msgs[i].Media != nil {
			ids, at = append(ids, hist[i].MediaID), append(at, i)
			continue
		}
		if hist[i].Direction != "in" && len(msgs[i].Content) > 0 && msgs[i].Media == nil {
			var c struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(msgs[i].Content, &c) == nil && mediakit.ValidID(c.ID) {
				msgs[i].Media = &mediakit.Attachment{ID: c.ID}
				ids, at = append(ids, c.ID), append(at, i)
			}
		}
	}
	recs, err := s.store.MediaRecords(ctx, ids)
	if err != nil {
		return err
	}
	for k, i := range at {
		s.media.Link(&msgs[i].Access, msgs[i].Media, recs[k], tenant, hist[i].AtMS, historyURLTTL)
	}
	return nil
}

// historyMedia is the attachment of an inbound history entry, nil if none.
func historyMedia(e *redis.HistoryEntry) *mediakit.Attachment {
	if e.MediaID == "" {
		return nil
	}
	return &mediakit.Attachment{ID: e.MediaID, ProviderMediaID: e.ProviderMediaID, MimeType: e.MimeType, Filename: e.Filename, Caption: e.Caption}
}
