package inbound

import (
	"errors"
	"strings"

	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/chatapp"
	"github.com/wagate/wagate/provider/gallabox"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/store/redis"
)

// A stored body is tagged with the provider that posted it (ingest's
// provider webhooks): Gallabox's and ChatApp's carry statuses only, read
// by their own parsers; Meta's carry statuses, guests' messages, template
// status updates and messaging limits, handed to the batch one by one.

// parse hands the statuses and messages of a stored body to b, read with
// the parser of the provider that posted it (the entry's tag: "gallabox",
// "chatapp", "kind/name", or Meta's).
func (b *batch) parse(e *redis.InboundEntry) error {
	kind, name, _ := strings.Cut(e.Provider, "/")
	if name == "" {
		name = kind
	}
	var sts []provider.StatusUpdate
	var err error
	switch kind {
	case gallabox.DefaultName:
		sts, err = gallabox.ParseWebhook(e.Body, name)
	case chatapp.DefaultName:
		sts, err = chatapp.ParseWebhook(e.Body, name)
	default:
		return meta.ParseWebhook(e.Body, b)
	}
	if err != nil {
		return err
	}
	for i := range sts {
		if sts[i].AtMS <= 0 {
			// No time of the provider's: when it reached the gateway.
			sts[i].AtMS = e.ReceivedMS
		}
		if err := b.HandleStatus(&sts[i]); err != nil {
			return err
		}
	}
	return nil
}

// unparsable reports whether a parse error says the body is not its
// provider's (it is dropped) rather than that recording failed.
func unparsable(err error) bool {
	return errors.Is(err, meta.ErrMalformed) || errors.Is(err, meta.ErrNotWhatsApp) ||
		errors.Is(err, gallabox.ErrMalformed) || errors.Is(err, chatapp.ErrMalformed)
}
