// Package inbox is the staff inbox: the web page the front desk answers
// guests in, served by the gateway itself under /inbox. Its files are
// embedded in the binary (no separate server, no CDN, no build step): a
// page of plain HTML, CSS and JavaScript that calls the gateway's own API
// with the staff member's session and follows the tenant's conversations
// live through the API's event stream (ingest's /inbox/stream).
package inbox

import (
	"embed"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

//go:embed assets
var assets embed.FS

// Prefix is where the inbox is served.
const Prefix = "/inbox"

// Serve answers a request under Prefix: the page for /inbox and
// /inbox/, its assets for /inbox/assets/…; 404 for anything else. The
// page carries a content security policy that allows only its own files
// and the API, so that a guest's text can never run as script.
func Serve(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		return
	}
	p := string(ctx.Path())
	name := ""
	switch {
	case p == Prefix || p == Prefix+"/":
		name = "assets/index.html"
	case strings.HasPrefix(p, Prefix+"/assets/"):
		name = path.Clean(strings.TrimPrefix(p, Prefix+"/"))
		if !strings.HasPrefix(name, "assets/") {
			name = ""
		}
	}
	b, err := fs.ReadFile(assets, name)
	if name == "" || err != nil {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	ctx.SetContentType(ct)
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data: https:; media-src 'self' https:; "+
		"connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	ctx.SetBody(b)
}
