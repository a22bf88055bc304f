package sim

// checkContent checks a send body, whose shape validate accepted, against
// what this server knows: its templates and the media uploaded to it.
func (s *Server) checkContent(b *sendBody) *apiError {
	switch b.Type {
	case "template":
		cat, e := s.checkTemplate(b.Template)
		b.pricing = pricingOf(cat)
		return e
	case "image", "audio", "video", "document", "sticker":
		return s.checkMedia(b.Type, b.media())
	}
	return nil
}
