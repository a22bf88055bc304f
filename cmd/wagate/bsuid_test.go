package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/provider/sim"
)

// TestGuestsKnownByUserID: Meta's business-scoped user ids (2026). A guest
// whose number Meta withholds is a guest of its own, keyed by the BSUID:
// their message opens a conversation and the window, wagate answers them
// with "recipient" in place of "to", to read, and their STOP opts them
// out. A guest whose number came once with the id stays that number's
// guest when Meta later gives the id alone, and a send to the id reaches
// the number.
func TestGuestsKnownByUserID(t *testing.T) {
	tg := startTestGateway(t, sim.Delays{Sent: 50 * time.Millisecond, Delivered: 100 * time.Millisecond, Read: 150 * time.Millisecond})
	const ana, rui, ruiID = "BR.1502576394655843", "+5511999990000", "BR.77001"
	guestConvs := func(guest string) []any {
		t.Helper()
		_, v := tg.call("GET", "/api/v1/whatsapp/conversations?guest_phone="+strings.ReplaceAll(guest, "+", "%2B"), "")
		cs, _ := v["conversations"].([]any)
		return cs
	}
	waitConv := func(guest string, messages float64) map[string]any {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if cs := guestConvs(guest); len(cs) == 1 && cs[0].(map[string]any)["message_count"] == messages {
				return cs[0].(map[string]any)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: conversations %v, want one of %v messages", guest, guestConvs(guest), messages)
		return nil
	}
	read := func(id string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, st := tg.call("GET", "/api/v1/whatsapp/messages/"+id+"/status", ""); st["status"] == "read" {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s did not reach read", id)
	}
	lastRequest := func() map[string]any {
		t.Helper()
		reqs := tg.sim.Requests(devPhoneID)
		var v map[string]any
		if err := json.Unmarshal(reqs[len(reqs)-1].Body, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	// Ana: no number, only her id.
	if _, _, err := tg.sim.InboundMessage(devPhoneID, ana, "Ana", sim.InboundMessage{Text: "Do you have parking?"}); err != nil {
		t.Fatal(err)
	}
	c := waitConv(ana, 1)
	if c["guest_phone"] != ana || c["guest_user_id"] != ana || c["status"] != "active" {
		t.Fatalf("Ana's conversation: %v", c)
	}
	code, v := tg.call("POST", "/api/v1/whatsapp/messages/send", `{"guest_phone":"`+ana+`","message_type":"text","content":{"text":"Yes, free for guests."}}`)
	if code != 202 || v["conversation_id"] != c["conversation_id"] {
		t.Fatalf("answer to Ana: %d %v, want 202 in %v", code, v, c["conversation_id"])
	}
	read(v["message_id"].(string))
	if req := lastRequest(); req["recipient"] != ana || req["to"] != nil {
		t.Fatalf("Meta got %v, want recipient %s and no to", req, ana)
	}

	// Rui: his number and id together once, then the id alone.
	if _, _, err := tg.sim.InboundMessage(devPhoneID, rui, "Rui", sim.InboundMessage{Text: "Oi", UserID: ruiID}); err != nil {
		t.Fatal(err)
	}
	waitConv(rui, 1)
	if _, _, err := tg.sim.InboundMessage(devPhoneID, ruiID, "Rui", sim.InboundMessage{Text: "Can I check in at noon?"}); err != nil {
		t.Fatal(err)
	}
	if c := waitConv(rui, 2); c["guest_phone"] != rui || c["guest_user_id"] != ruiID {
		t.Fatalf("Rui's conversation: %v, want his number and his id", c)
	}
	if _, g := tg.call("GET", "/api/v1/whatsapp/guests/%2B"+rui[1:], ""); g["guest_user_id"] != ruiID {
		t.Fatalf("GET guests/%s: %v, want guest_user_id %s", rui, g, ruiID)
	}
	if cs := guestConvs(ruiID); len(cs) != 0 {
		t.Fatalf("Rui's id made a guest of its own: %v", cs)
	}
	code, v = tg.call("POST", "/api/v1/whatsapp/messages/send", `{"guest_phone":"`+ruiID+`","message_type":"text","content":{"text":"Noon is fine."}}`)
	if code != 202 {
		t.Fatalf("answer to Rui's id: %d %v", code, v)
	}
	read(v["message_id"].(string))
	if req := lastRequest(); req["to"] != rui[1:] {
		t.Fatalf("Meta got %v, want to %s (Rui's number)", req, rui[1:])
	}

	// Ana's STOP opts her id out.
	if _, _, err := tg.sim.InboundMessage(devPhoneID, ana, "Ana", sim.InboundMessage{Text: "STOP"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, v = tg.call("POST", "/api/v1/whatsapp/messages/send", `{"guest_phone":"`+ana+`","message_type":"text","content":{"text":"One more thing"}}`)
		if code == 403 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a send to Ana after her STOP: %d %v", code, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if e, _ := v["error"].(map[string]any); e["code"] != "GUEST_OPTED_OUT" {
		t.Fatalf("after STOP: %v", v)
	}
}
