package main

import (
	"context"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/clickhouse"
)

// TestPricingObjectFromTheWebhookToClickHouse: Meta's pricing object of a
// status (per-message pricing since July 2025: category, pricing_model,
// type, billable) is kept whole, in the message's status and in
// ClickHouse's rows, for a free-form reply in the service window (free)
// and a marketing template (charged), as the simulator prices them.
func TestPricingObjectFromTheWebhookToClickHouse(t *testing.T) {
	tg := startTestGateway(t, sim.Delays{Sent: 50 * time.Millisecond, Delivered: 100 * time.Millisecond, Read: 150 * time.Millisecond})
	tg.guestWrites("+14155550177", "Is the spa open tonight?")
	sends := []struct {
		name, path, body string
		want             map[string]any
	}{
		{"a reply in the window", "/api/v1/whatsapp/messages/send",
			`{"guest_phone":"+14155550177","message_type":"text","content":{"text":"Yes, until 22:00."}}`,
			map[string]any{"category": "service", "pricing_model": "PMP", "type": "free_customer_service", "billable": false}},
		{"a marketing template", "/api/v1/whatsapp/templates/send",
			`{"guest_phone":"+14155550177","template_name":"event_invitation","language":"en","parameters":{"guest_name":"Ana","event_name":"Jazz Night","event_date":"Friday","venue":"the Terrace"}}`,
			map[string]any{"category": "marketing", "pricing_model": "PMP", "type": "regular", "billable": true}},
	}
	ids := make([]string, len(sends))
	for i, s := range sends {
		code, v := tg.call("POST", s.path, s.body)
		if code != 202 {
			t.Fatalf("%s: %d %v", s.name, code, v)
		}
		ids[i] = v["message_id"].(string)
	}
	for i, s := range sends {
		var st map[string]any
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			_, st = tg.call("GET", "/api/v1/whatsapp/messages/"+ids[i]+"/status", "")
			if st["status"] == "read" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		p, _ := st["pricing"].(map[string]any)
		if st["status"] != "read" || len(p) != len(s.want) {
			t.Fatalf("%s: status %v, pricing %v, want read with %v", s.name, st["status"], st["pricing"], s.want)
		}
		for k, w := range s.want {
			if p[k] != w {
				t.Errorf("%s: pricing.%s = %v, want %v", s.name, k, p[k], w)
			}
		}
	}

	ctx := context.Background()
	cfg := tg.g.chConfig()
	conn, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, s := range sends {
		deadline := time.Now().Add(15 * time.Second)
		var got map[string][3]string
		for time.Now().Before(deadline) {
			evs, err := clickhouse.Events(ctx, conn, cfg.Database, ids[i])
			if err != nil {
				t.Fatal(err)
			}
			got = map[string][3]string{}
			for _, e := range evs {
				got[string(e.Status)] = [3]string{e.PricingCategory, e.PricingModel, e.PricingType}
			}
			if _, ok := got["delivered"]; ok {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The "sent" row is the dispatcher's (Meta accepted the send); the
		// first status Meta prices after it is "delivered".
		want := [3]string{s.want["category"].(string), "PMP", s.want["type"].(string)}
		if got["delivered"] != want {
			t.Errorf("%s: ClickHouse's delivered row has pricing %v, want %v", s.name, got["delivered"], want)
		}
		if got["queued"] != [3]string{} {
			t.Errorf("%s: the queued row has pricing %v before any provider priced it", s.name, got["queued"])
		}
	}
}

// TestCampaignAndTemplateInClickHouse: every event row of a template sent
// alone and of a campaign's batch carries its template's name and its
// campaign, for delivery analytics by campaign and template.
func TestCampaignAndTemplateInClickHouse(t *testing.T) {
	tg := startTestGateway(t, sim.Delays{Sent: 50 * time.Millisecond, Delivered: 100 * time.Millisecond, Read: 150 * time.Millisecond})
	params := `"parameters":{"guest_name":"Ana","event_name":"Jazz Night","event_date":"Friday","venue":"the Terrace"}`
	code, v := tg.call("POST", "/api/v1/whatsapp/templates/send", `{"guest_phone":"+14155550501","template_name":"event_invitation","language":"en",`+params+`}`)
	if code != 202 {
		t.Fatalf("template: %d %v", code, v)
	}
	single := v["message_id"].(string)
	code, v = tg.call("POST", "/api/v1/whatsapp/messages/batch-send", `{"template_name":"event_invitation","language":"en","campaign_id":"spring-jazz","messages":[{"phone":"+14155550502",`+params+`}]}`)
	if code != 202 {
		t.Fatalf("batch: %d %v", code, v)
	}
	var batched string
	deadline := time.Now().Add(10 * time.Second)
	for batched == "" && time.Now().Before(deadline) {
		_, l := tg.call("GET", "/api/v1/whatsapp/batches/"+v["batch_id"].(string)+"/messages", "")
		if ms, _ := l["messages"].([]any); len(ms) == 1 {
			batched, _ = ms[0].(map[string]any)["message_id"].(string)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx := context.Background()
	cfg := tg.g.chConfig()
	conn, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, c := range []struct{ id, campaign string }{{single, ""}, {batched, "spring-jazz"}} {
		var evs []message.Event
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if evs, err = clickhouse.Events(ctx, conn, cfg.Database, c.id); err == nil && len(evs) >= 5 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(evs) < 5 {
			t.Fatalf("%s: %d events in ClickHouse", c.id, len(evs))
		}
		for _, e := range evs {
			if e.TemplateName != "event_invitation" || e.Campaign != c.campaign {
				t.Fatalf("%s's %s row: template %q campaign %q, want event_invitation and %q", c.id, e.Status, e.TemplateName, e.Campaign, c.campaign)
			}
		}
	}
}
