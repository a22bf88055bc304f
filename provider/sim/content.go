package sim

import "github.com/wagate/wagate/message"

// checkContent checks a send body, whose shape validate accepted, against
// what this server knows: its templates and the media uploaded to it.
func (s *Server) checkContent(b *sendBody) *apiError {
	switch b.Type {
	case "template":
		cat, e := s.checkTemplate(b.Template)
		b.pricing = pricingOf(cat)
		if e == nil && b.To == "" && cat == message.CategoryAuthentication {
			// One-tap, zero-tap and copy-code templates need the number.
			return &apiError{status: 400, typ: "OAuthException", code: 131062,
				message: "(#131062) Business-scoped User ID recipients are not supported for this message",
				details: "Authentication templates cannot be sent to a business-scoped user id."}
		}
		return e
	case "image", "audio", "video", "document", "sticker":
		return s.checkMedia(b.Type, b.media())
	}
	return nil
}
