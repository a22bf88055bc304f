package ingest

import (
	"encoding/json"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
)

// handleMediaUpload serves POST /api/v1/whatsapp/media/upload (multipart).
func (s *Server) handleMediaUpload(ctx *fasthttp.RequestCtx, p Principal, _ params) { notBuilt(ctx) }

// handleMediaGet serves GET /api/v1/whatsapp/media/{id} by signed URL.
func (s *Server) handleMediaGet(ctx *fasthttp.RequestCtx, _ Principal, ps params) { notBuilt(ctx) }

// handleSendMedia serves POST /api/v1/whatsapp/messages/send-media.
func (s *Server) handleSendMedia(ctx *fasthttp.RequestCtx, p Principal, _ params) { notBuilt(ctx) }

// buildMedia appends Meta's media object of type t for a messages/send
// content ({media_id | link, caption, filename}) to dst.
func (s *Server) buildMedia(p Principal, t message.Type, raw json.RawMessage, dst []byte) ([]byte, string, *apiError) {
	return dst, "", &apiError{Code: message.CodeInternal, Message: "not built yet"}
}

// MediaConfig configures media uploads.
type MediaConfig struct{}

// mediaState is the server's media store and URL signer.
type mediaState struct{}

// initMedia sets up s.media from s.cfg.Media.
func (s *Server) initMedia() error { return nil }
