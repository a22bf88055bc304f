// Package ingest is wagate's HTTP front: the fasthttp server, its routes,
// authentication, request decoding and validation, and the provider webhook
// receivers with the processor that applies what they report.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/wagate/wagate/inbox"
	"github.com/wagate/wagate/internal/mediakit"
	"github.com/wagate/wagate/internal/netguard"
	"github.com/wagate/wagate/internal/password"
	"github.com/wagate/wagate/internal/settings"
	"github.com/wagate/wagate/internal/tenantcache"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/store/redis"
)

// Config is the API server's configuration.
type Config struct {
	// Addr is where the API listens (127.0.0.1:8080).
	Addr string
	// ReadMarkers pass read receipts and typing indicators to the
	// provider of each business number (E.164): Meta's numbers have one;
	// a number without one answers those calls with 400.
	ReadMarkers map[string]ReadMarker
	// MaxBodyBytes caps an API request body (256 KiB); larger ones get 413.
	MaxBodyBytes int
	// MaxWebhookBytes caps a provider webhook body (3 MiB: Meta's are at
	// most 3 MB). The signature can be checked only once the whole body
	// is in, so this is what an unsigned post costs before its refusal.
	MaxWebhookBytes int
	// ReadTimeout and WriteTimeout bound one request (10 s each);
	// IdleTimeout closes idle keep-alive connections (60 s).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// EnqueueTimeout bounds the wait for Redis in a request (5 s); past it
	// the caller gets 503 and nothing was accepted.
	EnqueueTimeout time.Duration
	// MetaAppSecret verifies X-Hub-Signature-256 of Meta's webhooks. Without
	// it every delivery is refused.
	MetaAppSecret string
	// MetaVerifyToken answers Meta's subscription handshake.
	MetaVerifyToken string
	// ProviderWebhooks are the Gallabox and ChatApp accounts whose status
	// callbacks /webhooks/gallabox and /webhooks/chatapp take
	// (providerhooks.go); without one of a kind, that kind's are refused.
	ProviderWebhooks []ProviderWebhook
	// MetricsOnly serves /metrics and /healthz alone: for processes that
	// run other roles than the API.
	MetricsOnly bool
	// DefaultMaxQueued caps a tenant's messages not yet sent when the
	// tenant sets no cap (1 000 000).
	DefaultMaxQueued int64
	// MaxBatchBytes caps a batch-send body (16 MiB: 10 000 messages).
	MaxBatchBytes int
	// MaxUploadBytes caps a media upload (101 MiB: a 100 MB document and
	// the multipart around it).
	MaxUploadBytes int
	// SenderRate tells a sender number's messages per second, for a
	// batch's estimated completion (80 when nil).
	SenderRate func(sender string) float64
	// Media configures uploads: where files are kept and how their URLs
	// are signed.
	Media mediakit.Config
	// WebhookAllow lists the internal networks (CIDR, or addresses) a
	// tenant's webhook_url may reach: none by default, so that no tenant
	// can make the gateway post to loopback, private, link-local or
	// metadata addresses (internal/netguard). `wagate dev` allows loopback.
	WebhookAllow []string
	// SessionTTL is how long a staff session lives past its last use
	// (12 h; also the cookie's Max-Age).
	SessionTTL time.Duration
	// LoginWindow and LoginAttempts bound password guessing: at most
	// LoginAttempts failed logins per tenant and user name per window
	// (15 min, 10), then 429 until the window ends.
	LoginWindow   time.Duration
	LoginAttempts int64
	// PasswordParams are the argon2id costs of new password hashes
	// (zero: password.Default()); stored hashes keep their own.
	PasswordParams password.Params
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 256 << 10
	}
	if c.MaxWebhookBytes == 0 {
		c.MaxWebhookBytes = 3 << 20
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.EnqueueTimeout == 0 {
		c.EnqueueTimeout = 5 * time.Second
	}
	if c.DefaultMaxQueued == 0 {
		c.DefaultMaxQueued = 1_000_000
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 16 << 20
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = 101 << 20
	}
	if c.SenderRate == nil {
		c.SenderRate = func(string) float64 { return 80 }
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.LoginWindow == 0 {
		c.LoginWindow = 15 * time.Minute
	}
	if c.LoginAttempts == 0 {
		c.LoginAttempts = 10
	}
	if c.PasswordParams == (password.Params{}) {
		c.PasswordParams = password.Default()
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.MaxBodyBytes < 1024 || c.MaxWebhookBytes < 1024 {
		return errors.New("ingest: body limits below 1 KiB")
	}
	if c.EnqueueTimeout <= 0 {
		return errors.New("ingest: enqueue timeout must be positive")
	}
	if c.SessionTTL < time.Minute || c.LoginWindow < time.Second || c.LoginAttempts < 1 {
		return errors.New("ingest: session TTL, login window or login attempts too small")
	}
	return nil
}

// Server is the fasthttp API server.
type Server struct {
	cfg       Config
	store     *redis.Store
	depth     *depthCache
	tokens    *Tokens
	log       *slog.Logger
	metrics   *metrics
	appSecret []byte
	// verifier checks Meta's webhook signatures with appSecret.
	verifier *meta.Verifier
	// hooks verify the Gallabox and ChatApp accounts' callbacks.
	hooks     providerHooks
	promH     fasthttp.RequestHandler
	endpoints []endpoint
	// settings caches the tenants' settings for the sends' checks.
	settings *tenantcache.Cache[settings.Settings]
	// release gives back the memory of large bodies once answered.
	release *memReleaser
	// live feeds the inbox pages' event streams.
	live *liveHub
	// receipts sends the read receipts the inbox's reading implies.
	receipts *receipts
	// hookClient posts POST /webhooks/test's deliveries, through guard:
	// only to addresses a tenant may reach.
	hookClient *fasthttp.Client
	guard      *netguard.Guard
	media      mediakit.Media
	// staff caches each tenant's staff ids for the checks of sends and
	// assignments.
	staff *staffCache
	// dummyHash is verified against when a login names no known member,
	// so that an unknown user name costs what a wrong password does.
	dummyHash func() string
	srv       *fasthttp.Server
	ln        net.Listener
}

// NewServer returns a server answering with store and tokens; its metrics
// are registered on reg and /metrics serves gather (nil: no /metrics, for
// a gateway that serves it on another listener).
func NewServer(cfg Config, store *redis.Store, tokens *Tokens, reg prometheus.Registerer, gather prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	guard, err := netguard.New(cfg.WebhookAllow, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("ingest: webhook allow-list: %w", err)
	}
	s := &Server{guard: guard, release: newMemReleaser(1<<20, 2*time.Second), cfg: cfg, store: store, tokens: tokens, log: log, metrics: newMetrics(reg), appSecret: []byte(cfg.MetaAppSecret), verifier: meta.NewVerifier([]byte(cfg.MetaAppSecret)),
		depth: newDepthCache(store.TenantOpen, time.Second), endpoints: apiEndpoints(),
		settings: settings.NewCache(store, 2*time.Second),
		hookClient: &fasthttp.Client{Name: "wagate-webhooks", ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
			MaxResponseBodySize: 64 << 10, Dial: guard.Dial}}
	s.staff = newStaffCache(store, 2*time.Second)
	if s.hooks, err = newProviderHooks(cfg.ProviderWebhooks); err != nil {
		return nil, err
	}
	s.dummyHash = sync.OnceValue(func() string {
		h, _ := password.Hash(randomSecret(), cfg.PasswordParams)
		return h
	})
	if err := s.initMedia(); err != nil {
		return nil, err
	}
	s.live = newLiveHub(store, log)
	s.receipts = newReceipts(s, cfg.ReadMarkers, log, s.metrics.receiptsDropped.Inc)
	if gather != nil {
		s.promH = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(gather, promhttp.HandlerOpts{}))
	}
	s.srv = &fasthttp.Server{
		Handler:            s.handle,
		Name:               "wagate",
		ReadTimeout:        cfg.ReadTimeout,
		WriteTimeout:       cfg.WriteTimeout,
		IdleTimeout:        cfg.IdleTimeout,
		MaxRequestBodySize: max(cfg.MaxBodyBytes, cfg.MaxWebhookBytes, cfg.MaxBatchBytes, cfg.MaxUploadBytes),
		// Each route's own body limit applies as soon as the header is in:
		// a body over it is refused before it is read. (Multipart uploads
		// of known length spill large files to temporary files.)
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{MaxRequestBodySize: cfg.bodyLimit(h.RequestURI())}
		},
		NoDefaultServerHeader: true,
		Logger:                fasthttpLogger{log},
		// Requests fasthttp cannot read (a body over the limit, broken
		// HTTP) are answered in the API's error format too.
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				drainRefused(ctx)
				writeError(ctx, tooLarge(cfg.bodyLimit(ctx.RequestURI())))
			} else {
				writeError(ctx, invalidRequest("The HTTP request could not be read", map[string]any{"reason": unreadable(err)}))
			}
			ctx.SetConnectionClose()
		},
	}
	return s, nil
}

// drainMax and drainTime bound what drainRefused reads of a refused body.
const (
	drainMax  = 16 << 20
	drainTime = 2 * time.Second
)

// drainRefused reads and discards the body of a request refused for its
// size (up to drainMax, for at most drainTime, while the client keeps
// sending), so that the connection is closed with nothing unread: closed
// with unread data, TCP resets it, and a client still sending loses the
// 413 answer to "connection reset by peer". Nothing is kept.
func drainRefused(ctx *fasthttp.RequestCtx) {
	cl := ctx.Request.Header.ContentLength()
	c := ctx.Conn()
	if cl <= 0 || cl > drainMax || c == nil {
		return
	}
	buf := make([]byte, 32<<10)
	end := time.Now().Add(drainTime)
	for read := 0; read < cl && time.Now().Before(end); {
		// A pause of the client means it sent all it will.
		dl := time.Now().Add(100 * time.Millisecond)
		if dl.After(end) {
			dl = end
		}
		_ = c.SetReadDeadline(dl)
		n, err := c.Read(buf)
		read += n
		if err != nil {
			return
		}
	}
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("api listen: %w", err)
	}
	s.ln = ln
	go s.srv.Serve(ln) //nolint:errcheck // Serve returns when Shutdown closes ln
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting and waits for requests in flight (bounded by ctx).
func (s *Server) Shutdown(ctx context.Context) error {
	s.live.close()
	err := s.srv.ShutdownWithContext(ctx)
	s.receipts.wait()
	return err
}

// Handler returns the request handler, for tests and benchmarks that serve
// it without a socket.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

var (
	pathMeta    = []byte("/webhooks/meta")
	pathMetrics = []byte("/metrics")
	pathHealth  = []byte("/healthz")
	pathOpenAPI = []byte("/openapi.yaml")
	// pathInbox and pathInboxDir are the staff inbox's page and files.
	pathInbox    = []byte(inbox.Prefix)
	pathInboxDir = []byte(inbox.Prefix + "/")
)

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	r := routeOther
	defer func() {
		// fasthttp does not recover: a panic would take the dispatcher and
		// everything else in the process down with one request.
		if p := recover(); p != nil {
			s.log.Error("panic serving a request", "path", string(ctx.Path()), "panic", p, "stack", string(debug.Stack()))
			writeError(ctx, &apiError{Code: message.CodeInternal, Message: "Internal error; nothing was changed by this request"})
		}
		s.metrics.observe(r, ctx.Response.StatusCode(), time.Since(start).Seconds())
		s.release.done(ctx)
	}()
	r = s.route(ctx)
}

// route dispatches one request and says which route it was.
func (s *Server) route(ctx *fasthttp.RequestCtx) route {
	path := ctx.Path()
	if s.cfg.MetricsOnly && !bytes.Equal(path, pathMetrics) && !bytes.Equal(path, pathHealth) {
		writeError(ctx, errNotFound)
		return routeOther
	}
	switch {
	case bytes.HasPrefix(path, []byte(apiPrefix)):
		return s.serveAPI(ctx, path[len(apiPrefix):])
	case bytes.HasPrefix(path, []byte(apiPrefixUnversioned)):
		return s.serveAPI(ctx, path[len(apiPrefixUnversioned):])
	case bytes.Equal(path, pathInbox) || bytes.HasPrefix(path, pathInboxDir):
		inbox.Serve(ctx)
		return routeOther
	case bytes.Equal(path, pathChatAppSend):
		s.handleChatAppSend(ctx)
		return routeSend
	case bytes.Equal(path, pathOpenAPI):
		s.handleOpenAPI(ctx)
		return routeOther
	case bytes.Equal(path, pathMeta):
		switch {
		case ctx.IsGet():
			s.handleMetaVerify(ctx)
		case ctx.IsPost():
			s.handleMetaWebhook(ctx)
		default:
			writeError(ctx, methodNotAllowed("GET, POST"))
		}
		return routeWebhookMeta
	case bytes.Equal(path, pathGallaboxHook):
		s.handleGallaboxWebhook(ctx)
		return routeWebhookGallabox
	case bytes.Equal(path, pathChatAppHook):
		s.handleChatAppWebhook(ctx)
		return routeWebhookChatApp
	case bytes.Equal(path, pathMetrics) && s.promH != nil:
		if !ctx.IsGet() && !ctx.IsHead() {
			writeError(ctx, methodNotAllowed("GET, HEAD"))
		} else {
			s.promH(ctx)
		}
		return routeMetrics
	case bytes.Equal(path, pathHealth):
		if !ctx.IsGet() && !ctx.IsHead() {
			writeError(ctx, methodNotAllowed("GET, HEAD"))
			return routeHealth
		}
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok")
		return routeHealth
	}
	writeError(ctx, errNotFound)
	return routeOther
}

// auth finds who an API call acts as, answering the request itself when
// it fails: the bearer token when the call has an Authorization header
// (machines, as before sessions), else the session cookie (staff; see
// sessionAuth).
func (s *Server) auth(ctx *fasthttp.RequestCtx) (Principal, bool) {
	hdr := ctx.Request.Header.Peek("Authorization")
	if cookie := ctx.Request.Header.Cookie(sessionCookie); len(hdr) == 0 && len(cookie) > 0 {
		return s.sessionAuth(ctx, string(cookie))
	}
	p, ok := s.tokens.lookup(hdr)
	if !ok {
		writeError(ctx, errUnauthorized)
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="wagate"`)
		return Principal{}, false
	}
	return p, true
}

// jsonBody refuses a body sent with a Content-Type other than JSON (a form,
// plain text): it was not meant for this API. A missing Content-Type is
// taken as JSON, as curl users often leave it out.
func jsonBody(ctx *fasthttp.RequestCtx) bool {
	ct := ctx.Request.Header.ContentType()
	if len(ct) == 0 {
		return true
	}
	mt, _, _ := bytes.Cut(ct, []byte(";"))
	mt = bytes.ToLower(bytes.TrimSpace(mt))
	if bytes.Equal(mt, []byte("application/json")) || bytes.HasSuffix(mt, []byte("+json")) {
		return true
	}
	writeError(ctx, &apiError{Code: message.CodeUnsupportedMedia, Message: "The request body must be JSON (Content-Type: application/json)",
		Details: map[string]any{"content_type": string(ct)}})
	return false
}

// admin refuses a staff token on an admin-only call.
func (s *Server) admin(ctx *fasthttp.RequestCtx, p Principal) bool {
	if p.Role == RoleAdmin {
		return true
	}
	writeError(ctx, &apiError{Code: message.CodeForbidden, Message: "This call needs an admin token",
		Details: map[string]any{"role": string(p.Role)}, RecoveryOptions: []string{"Use a token with the admin role"}})
	return false
}

func tooLarge(limit int) *apiError {
	return &apiError{Code: message.CodePayloadTooLarge, Message: "Request body is too large",
		Details: map[string]any{"max_bytes": limit}}
}

// fasthttpLogger sends fasthttp's own messages (a client that went away, a
// request it could not read) to the debug log: they are answered already.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(redactRaw(fmt.Sprintf(format, args...)))
}

// redactRaw cuts what fasthttp quotes of a request it could not read (its
// raw bytes, "contents: …", and quoted pieces of it, which may hold the
// Authorization header) out of one of its messages.
func redactRaw(msg string) string {
	if i := strings.Index(msg, ": buffer size="); i >= 0 {
		msg = msg[:i]
	}
	if i := strings.Index(msg, "contents:"); i >= 0 {
		msg = msg[:i]
	}
	var b strings.Builder
	quoted := false
	for i := 0; i < len(msg); i++ {
		switch c := msg[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			if !quoted {
				b.WriteString(`"…"`)
			}
			quoted = !quoted
		case !quoted:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unreadable says in a few words why fasthttp could not read a request,
// without fasthttp's own message: it quotes the request's bytes, secrets
// included.
func unreadable(err error) string {
	var ne net.Error
	msg := err.Error()
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, fasthttp.ErrTimeout):
		return "the request did not arrive in time"
	case strings.Contains(msg, "small read buffer") || strings.Contains(msg, "too big"):
		return "the request's header is too large"
	case strings.Contains(msg, "reading request headers") || strings.Contains(msg, "header"):
		return "the request's header is not valid HTTP/1.1"
	default:
		return "the request is not valid HTTP/1.1"
	}
}
