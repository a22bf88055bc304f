package sim

// checkContent checks a send body, whose shape validate accepted, against
// what this server knows: its templates and the media uploaded to it.
func (s *Server) checkContent(b *sendBody) *apiError {
	switch b.Type {
	case "template":
		return s.checkTemplate(b.Template)
	case "image", "audio", "video", "document", "sticker":
		return s.checkMedia(b.Type, b.media())
	}
	return nil
}
