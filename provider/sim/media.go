package sim

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

type mediaObject struct {
	ID       string `json:"id"`
	Link     string `json:"link"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
}

func validateMedia(typ string, m *mediaObject) *apiError {
	switch {
	case m == nil:
		e := errRequired(typ)
		return &e
	case m.ID == "" && m.Link == "":
		e := errParam("(#100) Param "+typ+" must have either id or link.", "The parameter "+typ+"['id'] or "+typ+"['link'] is required.")
		return &e
	case m.ID != "" && m.Link != "":
		e := errParam("(#100) Param "+typ+" must have either id or link, not both.", "Both id and link were given.")
		return &e
	case utf8.RuneCountInString(m.Caption) > maxCaptionRunes:
		e := errParam("(#100) Param "+typ+"['caption'] must be at most 1024 characters long.", "Caption is too long.")
		return &e
	}
	return nil
}

// checkMedia checks a media object against what this server knows: a media
// id must be one it issued.
func (s *Server) checkMedia(typ string, m *mediaObject) *apiError { return nil }

// handleMedia serves POST /{version}/{phone-number-id}/media: a multipart
// form with file, messaging_product=whatsapp and type.
func (s *Server) handleMedia(ctx *fasthttp.RequestCtx, phoneID []byte) {
	if s.inOutage(time.Now().UnixNano()) {
		s.stats.outage.Add(1)
		if s.cfg.OutageMode == OutageRefuse {
			refuse(ctx)
			return
		}
		s.answerError(ctx, &errOutage)
		return
	}
	if !s.authorized(ctx) {
		s.answerError(ctx, &errBadToken)
		return
	}
	if s.numbers[string(phoneID)] == nil {
		e := errUnknownObject(phoneID)
		s.answerError(ctx, &e)
		return
	}
	form, err := ctx.MultipartForm()
	if err != nil {
		e := errParam("(#100) Invalid parameter", "The upload must be a multipart/form-data body.")
		s.answerError(ctx, &e)
		return
	}
	var e apiError
	switch mp := form.Value["messaging_product"]; {
	case len(mp) == 0 || mp[0] == "":
		e = errRequired("messaging_product")
	case mp[0] != "whatsapp":
		e = errParam("(#100) Param messaging_product must be one of {WHATSAPP} - got \""+mp[0]+"\".", "Unsupported messaging product.")
	case len(form.File["file"]) == 0:
		e = errRequired("file")
	case len(form.Value["type"]) == 0 || form.Value["type"][0] == "":
		e = errRequired("type")
	}
	if e.code != 0 {
		s.answerError(ctx, &e)
		return
	}
	s.stats.media.Add(1)
	id := 1000000000000000 + s.idSeq.Add(1)
	b := append(make([]byte, 0, 32), `{"id":"`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `"}`...)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
