package meta

import (
	"context"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

// MarkRead tells Meta that the business has read the guest's message
// providerMessageID, received by sender: the guest's app shows it read
// (blue ticks). With typing the guest also sees a typing indicator, until
// the business's next message or for at most 25 seconds, as the Cloud API
// documents:
//
//	POST /{phone-number-id}/messages
//	{"messaging_product":"whatsapp","status":"read","message_id":"<wamid>","typing_indicator":{"type":"text"}}
//
// Meta answers {"success":true}; every other answer comes back as a
// *provider.Error.
func (c *Client) MarkRead(ctx context.Context, sender, providerMessageID string, typing bool) error {
	uri, ok := c.uris[sender]
	if !ok {
		return &provider.Error{Class: provider.ClassPermanent, Title: fmt.Sprintf("sender %s has no Meta phone number id", sender)}
	}
	if providerMessageID == "" {
		return &provider.Error{Class: provider.ClassPermanent, Title: "no message id to mark read"}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("meta mark read: %w", err)
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	body := AppendReadBody(make([]byte, 0, 160), providerMessageID, typing)
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURIBytes(uri)
	req.Header.SetBytesKV(headerAuthorization, c.auth)
	req.Header.SetContentTypeBytes(contentTypeJSON)
	req.SetBodyRaw(body)
	if err := c.hc.DoDeadline(req, resp, deadline); err != nil {
		return fmt.Errorf("meta mark read for %s: %w", sender, err)
	}
	if status := resp.StatusCode(); status < 200 || status >= 300 {
		return parseError(status, resp.Body(), resp.Header.Peek(fasthttp.HeaderRetryAfter), time.Now())
	}
	return nil
}

// AppendReadBody appends the body of a read receipt (with a typing
// indicator when typing) for message id to dst.
func AppendReadBody(dst []byte, id string, typing bool) []byte {
	dst = append(dst, `{"messaging_product":"whatsapp","status":"read","message_id":`...)
	dst = message.AppendJSONString(dst, id)
	if typing {
		dst = append(dst, `,"typing_indicator":{"type":"text"}`...)
	}
	return append(dst, '}')
}
