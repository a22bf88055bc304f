package main

import (
	"cmp"
	"fmt"

	"github.com/wagate/wagate/ingest"
	"github.com/wagate/wagate/provider/chatapp"
	"github.com/wagate/wagate/provider/gallabox"
)

// providerWebhooks are the Gallabox and ChatApp accounts whose status
// callbacks the API takes: those with a webhook_secret (Gallabox) or
// webhook_token (ChatApp), under the names their adapters send with.
func (fc *fileConfig) providerWebhooks() []ingest.ProviderWebhook {
	var out []ingest.ProviderWebhook
	for _, a := range fc.Gallabox.Accounts {
		if a.WebhookSecret != "" {
			out = append(out, ingest.ProviderWebhook{Kind: ingest.KindGallabox, Name: cmp.Or(a.Name, gallabox.DefaultName), Secret: a.WebhookSecret})
		}
	}
	for _, a := range fc.ChatApp.Accounts {
		if a.WebhookToken != "" {
			out = append(out, ingest.ProviderWebhook{Kind: ingest.KindChatApp, Name: cmp.Or(a.Name, chatapp.DefaultName), Secret: a.WebhookToken})
		}
	}
	return out
}

// validateWebhookSecrets checks the ChatApp webhook tokens: the token is
// the only credential of ChatApp's callbacks and travels in a URL, so it
// must be long and need no escaping. Errors name the field, not the value.
func (fc *fileConfig) validateWebhookSecrets() error {
	for i, a := range fc.ChatApp.Accounts {
		if t := a.WebhookToken; t != "" && !urlToken(t) {
			return fmt.Errorf("config: chatapp.accounts[%d].webhook_token must be 16 to 128 letters, digits, '-', '_', '.' or '~'", i)
		}
	}
	return nil
}

// urlToken reports whether t is 16 to 128 URL-safe characters.
func urlToken(t string) bool {
	if len(t) < 16 || len(t) > 128 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}
