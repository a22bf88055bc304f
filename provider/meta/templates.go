package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/internal/httpc"
)

// subcodeTemplateExists is Meta's error_subcode for a name and language
// that the account holds already.
const subcodeTemplateExists = 2388024

// maxTemplatePages bounds a listing, so that a server whose cursors never
// end cannot keep ListTemplates going.
const maxTemplatePages = 200

// Templates manages the message templates of one WhatsApp Business
// Account: it submits them for review and lists them with their status.
// It is safe for concurrent use; template calls are rare, so it keeps its
// own small connection pool apart from the sends'.
type Templates struct {
	name    string
	hc      *fasthttp.HostClient
	auth    []byte
	uri     string
	timeout time.Duration
}

// NewTemplates checks cfg, which must name the account (WABAID), and
// returns its template client.
func NewTemplates(cfg Config) (*Templates, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.WABAID == "" {
		return nil, errors.New("meta config: templates need the WhatsApp Business Account id (waba_id)")
	}
	// A listing of many templates with their components is larger than a
	// send's answer.
	hc, err := httpc.NewHostClient(cfg.BaseURL, 4, cfg.Timeout, 16<<20)
	if err != nil {
		return nil, err
	}
	return &Templates{
		name:    cfg.Name,
		hc:      hc,
		auth:    []byte("Bearer " + cfg.AccessToken),
		uri:     strings.TrimSuffix(cfg.BaseURL, "/") + "/" + cfg.Version + "/" + cfg.WABAID + "/message_templates",
		timeout: cfg.Timeout,
	}, nil
}

// Name returns the configured provider name.
func (c *Templates) Name() string { return c.name }

// createBody is Meta's body of a template submission.
type createBody struct {
	Name            string                      `json:"name"`
	Language        string                      `json:"language"`
	Category        message.TemplateCategory    `json:"category"`
	ParameterFormat message.ParameterFormat     `json:"parameter_format"`
	Components      []message.TemplateComponent `json:"components"`
}

// AppendCreateBody appends Meta's body for submitting t:
//
//	{"name","language","category","parameter_format","components":[{"type","format","text","buttons","example"}]}
func AppendCreateBody(dst []byte, t *message.Template) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(createBody{Name: t.Name, Language: t.Language, Category: t.Category,
		ParameterFormat: t.Format(), Components: t.Components}); err != nil {
		return dst, fmt.Errorf("meta template %s: %w", t.Name, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// CreateTemplate submits t for review: POST /{version}/{waba-id}/
// message_templates, answered {id, status, category}. A refusal is a
// *provider.Error; one saying the name and language exist already also
// matches provider.ErrTemplateExists.
func (c *Templates) CreateTemplate(ctx context.Context, t *message.Template) (provider.TemplateResult, error) {
	body, err := AppendCreateBody(nil, t)
	if err != nil {
		return provider.TemplateResult{}, err
	}
	raw, err := c.do(ctx, fasthttp.MethodPost, c.uri, body)
	if err != nil {
		var pe *provider.Error
		if errors.As(err, &pe) && pe.Subcode == subcodeTemplateExists {
			return provider.TemplateResult{}, fmt.Errorf("meta create template %s (%s): %w: %w", t.Name, t.Language, provider.ErrTemplateExists, err)
		}
		return provider.TemplateResult{}, fmt.Errorf("meta create template %s (%s): %w", t.Name, t.Language, err)
	}
	var ans struct {
		ID       string `json:"id"`
		Status   string `json:"status"`
		Category string `json:"category"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil || ans.ID == "" {
		return provider.TemplateResult{}, fmt.Errorf("meta create template %s (%s): answer without an id: %.200s", t.Name, t.Language, raw)
	}
	res := provider.TemplateResult{ID: ans.ID, Status: message.TemplatePending, Category: message.TemplateCategory(strings.ToUpper(ans.Category))}
	if st, ok := message.TemplateStatusFromMeta(ans.Status); ok {
		res.Status = st
	}
	return res, nil
}

// listed is one template of Meta's listing.
type listed struct {
	ID              string                      `json:"id"`
	Name            string                      `json:"name"`
	Language        string                      `json:"language"`
	Status          string                      `json:"status"`
	Category        string                      `json:"category"`
	ParameterFormat string                      `json:"parameter_format"`
	RejectedReason  string                      `json:"rejected_reason"`
	Components      []message.TemplateComponent `json:"components"`
}

// templateFields are the fields ListTemplates asks for.
const templateFields = "id,name,language,status,category,parameter_format,rejected_reason,components"

// ListTemplates returns every template of the account with its status:
// GET /{version}/{waba-id}/message_templates, page after page following
// paging.cursors.after while Meta gives a next page.
func (c *Templates) ListTemplates(ctx context.Context) ([]message.Template, error) {
	var out []message.Template
	after := ""
	for page := 0; ; page++ {
		if page == maxTemplatePages {
			return out, fmt.Errorf("meta list templates: more than %d pages", maxTemplatePages)
		}
		q := url.Values{"fields": {templateFields}, "limit": {"100"}}
		if after != "" {
			q.Set("after", after)
		}
		raw, err := c.do(ctx, fasthttp.MethodGet, c.uri+"?"+q.Encode(), nil)
		if err != nil {
			return out, fmt.Errorf("meta list templates: %w", err)
		}
		var ans struct {
			Data   []listed `json:"data"`
			Paging struct {
				Cursors struct {
					After string `json:"after"`
				} `json:"cursors"`
				Next string `json:"next"`
			} `json:"paging"`
		}
		if err := json.Unmarshal(raw, &ans); err != nil {
			return out, fmt.Errorf("meta list templates: answer: %w", err)
		}
		for _, l := range ans.Data {
			t := message.Template{Name: l.Name, Language: l.Language, Category: message.TemplateCategory(strings.ToUpper(l.Category)),
				ParameterFormat: message.ParameterFormat(strings.ToUpper(l.ParameterFormat)), Components: l.Components,
				ProviderID: l.ID, Status: message.TemplatePending}
			if st, ok := message.TemplateStatusFromMeta(l.Status); ok {
				t.Status = st
			}
			if l.RejectedReason != "" && l.RejectedReason != "NONE" {
				t.RejectedReason = l.RejectedReason
			}
			t.Normalize()
			out = append(out, t)
		}
		next := ans.Paging.Cursors.After
		if len(ans.Data) == 0 || ans.Paging.Next == "" || next == "" || next == after {
			return out, nil
		}
		after = next
	}
}

// do makes one call and returns a success's body; any other answer is a
// *provider.Error with Meta's own explanation in Details.
func (c *Templates) do(ctx context.Context, method, uri string, body []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.Header.SetBytesKV(headerAuthorization, c.auth)
	if body != nil {
		req.Header.SetContentTypeBytes(contentTypeJSON)
		req.SetBody(body)
	}
	if err := c.hc.DoDeadline(req, resp, deadline); err != nil {
		return nil, err
	}
	status := resp.StatusCode()
	if status >= 200 && status < 300 {
		return append([]byte(nil), resp.Body()...), nil
	}
	e := parseError(status, resp.Body(), resp.Header.Peek(fasthttp.HeaderRetryAfter), time.Now())
	// Template errors explain themselves in error_user_title/_msg.
	var user struct {
		Error struct {
			Title string `json:"error_user_title"`
			Msg   string `json:"error_user_msg"`
		} `json:"error"`
	}
	if json.Unmarshal(resp.Body(), &user) == nil {
		switch {
		case user.Error.Msg != "" && user.Error.Title != "":
			e.Details = user.Error.Title + ": " + user.Error.Msg
		case user.Error.Msg != "":
			e.Details = user.Error.Msg
		case user.Error.Title != "" && e.Details == "":
			e.Details = user.Error.Title
		}
	}
	return nil, e
}
