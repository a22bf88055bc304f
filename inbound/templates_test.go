package inbound

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/internal/webhooktest"
	"github.com/wagate/wagate/message"
)

// seedLateCheckout is seed 001's template, as the API stores it when
// submitted (PENDING).
const seedLateCheckout = `{"name":"late_checkout_confirmation","category":"UTILITY","language":"en","components":[
	{"type":"HEADER","format":"TEXT","text":"Late Checkout Confirmed"},
	{"type":"BODY","text":"Hi {{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Additional charges: {{4}}."},
	{"type":"FOOTER","text":"Thank you for staying with us!"}],"status":"PENDING"}`

// testWABA is the hotel's WhatsApp Business Account.
const testWABA = "200000000000001"

// TestTemplateStatusWebhooksReachTheTemplates: Meta's review outcomes
// reach the templates of the tenants the account maps to, and a late
// repeat of an older delivery does not undo a newer status.
func TestTemplateStatusWebhooksReachTheTemplates(t *testing.T) {
	h := newHarness(t)
	h.start(Config{WABATenants: map[string][]string{testWABA: {"grand-plaza"}}})
	ctx := context.Background()
	for _, name := range []string{"late_checkout_confirmation", "late_checkout_reminder"} {
		var tpl message.Template
		must(t, json.Unmarshal([]byte(seedLateCheckout), &tpl))
		tpl.Name = name
		must(t, h.store.CreateTemplate(ctx, "grand-plaza", &tpl))
	}
	now := time.Now().Unix()
	for _, b := range [][]byte{
		webhooktest.TemplateStatus(testWABA, "1689556908129832", "late_checkout_confirmation", "en", "APPROVED", "NONE", now),
		webhooktest.TemplateStatus(testWABA, "1689556908129833", "late_checkout_reminder", "en", "REJECTED", "INCORRECT_CATEGORY", now),
		// Another account's, and one of seaside's template names: nothing.
		webhooktest.TemplateStatus("999", "5", "late_checkout_confirmation", "en", "DISABLED", "NONE", now),
	} {
		h.post("meta", b)
	}
	wait := func(name string, want message.TemplateStatus) *message.Template {
		t.Helper()
		var tpl *message.Template
		testwait.For(t, 5*time.Second, name+" to be "+string(want), func() bool {
			var err error
			tpl, err = h.store.Template(ctx, "grand-plaza", name, "en")
			must(t, err)
			return tpl.Status == want
		})
		return tpl
	}
	if tpl := wait("late_checkout_confirmation", message.TemplateApproved); tpl.ProviderID != "1689556908129832" {
		t.Fatalf("%+v", tpl)
	}
	if tpl := wait("late_checkout_reminder", message.TemplateRejected); tpl.RejectedReason != "INCORRECT_CATEGORY" {
		t.Fatalf("%+v", tpl)
	}
	// A late repeat of an older delivery does not undo the newer status.
	h.post("meta", webhooktest.TemplateStatus(testWABA, "1689556908129832", "late_checkout_confirmation", "en", "PAUSED", "NONE", now+5))
	wait("late_checkout_confirmation", message.TemplatePaused)
	h.post("meta", webhooktest.TemplateStatus(testWABA, "1689556908129832", "late_checkout_confirmation", "en", "APPROVED", "NONE", now))
	time.Sleep(300 * time.Millisecond)
	wait("late_checkout_confirmation", message.TemplatePaused)
}
