package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// API paths the scenarios use (README "API").
const (
	pathSend      = "/api/v1/whatsapp/messages/send"
	pathBatchSend = "/api/v1/whatsapp/messages/batch-send"
	pathMessages  = "/api/v1/whatsapp/messages/"
	pathBatches   = "/api/v1/whatsapp/batches/"
	pathWebhook   = "/webhooks/meta"
	pathMetrics   = "/metrics"
	pathSimStats  = "/_sim/stats"
	pathSimConfig = "/_sim/config"
)

// Client makes the scenarios' untimed calls: status checks, metrics,
// simulator controls. Safe for concurrent use.
type Client struct {
	hc    *fasthttp.HostClient
	token string
}

// NewClient returns a client of the service at target (http://host:port)
// that sends token as a Bearer token (none when empty), with up to conns
// connections.
func NewClient(target, token string, conns int) (*Client, error) {
	host, err := hostOf(target)
	if err != nil {
		return nil, err
	}
	return &Client{token: token, hc: &fasthttp.HostClient{Addr: host, MaxConns: conns,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, MaxConnWaitTimeout: 30 * time.Second}}, nil
}

// Do sends method path with body (none when nil) and returns the status
// and a copy of the answer's body.
func (c *Client) Do(method, path string, body []byte) (int, []byte, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.SetHost(c.hc.Addr) // after the URI, which resets it
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}
	if err := c.hc.DoTimeout(req, resp, 30*time.Second); err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}

// GetJSON decodes the answer to GET path into v; an answer other than 200
// is an error.
func (c *Client) GetJSON(path string, v any) error {
	status, body, err := c.Do("GET", path, nil)
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("GET %s: %w", path, statusError(status, body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// MessageStatus is the part of GET …/messages/{id}/status the checks read.
type MessageStatus struct {
	MessageID         string  `json:"message_id"`
	Status            string  `json:"status"`
	From              string  `json:"from"`
	GuestPhone        string  `json:"guest_phone"`
	SentAt            *string `json:"sent_at"`
	DeliveredAt       *string `json:"delivered_at"`
	ReadAt            *string `json:"read_at"`
	ProviderMessageID *string `json:"provider_message_id"`
}

// Status reads message id's status; found is false on 404.
func (c *Client) Status(id string) (st MessageStatus, found bool, err error) {
	status, body, err := c.Do("GET", pathMessages+id+"/status", nil)
	if err != nil {
		return st, false, err
	}
	switch status {
	case 200:
	case 404:
		return st, false, nil
	default:
		return st, false, fmt.Errorf("status of %s: %w", id, statusError(status, body))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, false, fmt.Errorf("status of %s: %w", id, err)
	}
	return st, true, nil
}

// parallel calls fn(i) for each i in [0, n) from up to workers goroutines,
// until ctx ends.
func parallel(ctx context.Context, n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}
