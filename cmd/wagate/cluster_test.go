package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/redis/redistest"
)

// TestGatewayOnARedisCluster runs what a hotel does through a gateway on
// a Redis Cluster (three masters, three replicas): a batch to many guests
// sent to the last message, a guest's message filed into a conversation
// that the inbox lists and reads, an answer in it, a template outside the
// window, an opt-out by keyword and the sends it refuses after.
func TestGatewayOnARedisCluster(t *testing.T) {
	cc := redistest.ClusterClient(t)
	prefix := redistest.ClusterPrefix(t, cc)
	tg := startTestGateway(t, sim.Delays{Sent: 50 * time.Millisecond, Delivered: 100 * time.Millisecond, Read: 150 * time.Millisecond},
		func(g *gatewayFlags) { g.redisURL, g.prefix, g.shards = redistest.ClusterURL(), prefix, 8 })

	// A batch of an invitation to 150 guests (80 mps: under 3 s).
	var items []string
	for i := range 150 {
		items = append(items, fmt.Sprintf(`{"phone":"+1415600%04d","parameters":{"guest_name":"Guest %d","event_name":"Jazz Night","event_date":"Friday","venue":"the Terrace"}}`, i, i))
	}
	code, v := tg.call("POST", "/api/v1/whatsapp/messages/batch-send", `{"template_name":"event_invitation","language":"en","messages":[`+strings.Join(items, ",")+`]}`)
	if code != 202 {
		t.Fatalf("batch: %d %v", code, v)
	}
	batch := v["batch_id"].(string)
	testwait.For(t, 30*time.Second, "every batch message sent", func() bool {
		_, b := tg.call("GET", "/api/v1/whatsapp/batches/"+batch, "")
		c, _ := b["counts"].(map[string]any)
		return c != nil && c["read"] == 150.0
	})
	if n := len(tg.sim.Requests(devPhoneID)); n != 150 {
		t.Fatalf("the simulator got %d sends for a batch of 150", n)
	}

	// A guest writes; the inbox lists the conversation; staff answer and read.
	tg.guestWrites("+14155550901", "Is late checkout possible?")
	var conv string
	testwait.For(t, 10*time.Second, "the conversation listed", func() bool {
		_, l := tg.call("GET", "/api/v1/whatsapp/conversations?status=active", "")
		for _, c := range l["conversations"].([]any) {
			if c.(map[string]any)["guest_phone"] == "+14155550901" {
				conv = c.(map[string]any)["conversation_id"].(string)
				return true
			}
		}
		return false
	})
	code, v = tg.call("POST", "/api/v1/whatsapp/messages/send", `{"guest_phone":"+14155550901","message_type":"text","content":{"text":"Until 1 pm, yes."},"conversation_id":"`+conv+`"}`)
	if code != 202 {
		t.Fatalf("answer: %d %v", code, v)
	}
	tg.walkToRead(v["message_id"].(string))
	code, v = tg.call("POST", "/api/v1/whatsapp/conversations/"+conv+"/read", "")
	if code != 200 || v["unread_count"] != 0.0 {
		t.Fatalf("read: %d %v", code, v)
	}
	_, c := tg.call("GET", "/api/v1/whatsapp/conversations/"+conv, "")
	if ms, _ := c["messages"].([]any); len(ms) != 2 {
		t.Fatalf("conversation history %v, want the guest's message and the answer", c["messages"])
	}

	// A template to a guest who never wrote, then the guest's STOP.
	code, v = tg.call("POST", "/api/v1/whatsapp/templates/send", `{"guest_phone":"+14155550902","template_name":"event_invitation","language":"en","parameters":{"guest_name":"Ana","event_name":"Jazz Night","event_date":"Friday","venue":"the Terrace"}}`)
	if code != 202 {
		t.Fatalf("template: %d %v", code, v)
	}
	tg.walkToRead(v["message_id"].(string))
	tg.guestWrites("+14155550902", "STOP")
	testwait.For(t, 10*time.Second, "the opt-out refusing sends", func() bool {
		code, v = tg.call("POST", "/api/v1/whatsapp/messages/send", `{"guest_phone":"+14155550902","message_type":"text","content":{"text":"One more"}}`)
		return code == 403
	})
	if e, _ := v["error"].(map[string]any); e["code"] != "GUEST_OPTED_OUT" {
		t.Fatalf("after STOP: %v", v)
	}
}
