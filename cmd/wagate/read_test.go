package main

import (
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/provider/sim"
)

// TestReadReceiptsAndTypingReachMeta: a guest's message is marked read at
// Meta (the simulator checks the receipt as the Cloud API does) by
// POST messages/{id}/read, with a typing indicator when asked, by the
// conversation's typing action, and by staff reading the conversation.
func TestReadReceiptsAndTypingReachMeta(t *testing.T) {
	tg := startTestGateway(t, sim.Delays{Sent: 50 * time.Millisecond, Delivered: 100 * time.Millisecond, Read: 150 * time.Millisecond})
	guest := "+14155550188"
	wamid, err := tg.sim.Inbound(devPhoneID, guest, "Ana", "Could I have a late checkout?")
	if err != nil {
		t.Fatal(err)
	}
	var conv string
	deadline := time.Now().Add(10 * time.Second)
	for conv == "" && time.Now().Before(deadline) {
		_, v := tg.call("GET", "/api/v1/whatsapp/conversations?guest_phone=%2B"+guest[1:], "")
		if cs, _ := v["conversations"].([]any); len(cs) > 0 {
			conv, _ = cs[0].(map[string]any)["conversation_id"].(string)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if conv == "" {
		t.Fatal("the guest's message made no conversation")
	}

	cases := []struct {
		name, path, body string
		code             int
		errCode          string
		typing           bool
	}{
		// Meta's ids are base64 and may hold a "/": the body form takes any.
		{"read", "/api/v1/whatsapp/messages/read", `{"message_id":"` + wamid + `"}`, 200, "", false},
		{"read with a typing indicator", "/api/v1/whatsapp/messages/read", `{"message_id":"` + wamid + `","typing_indicator":true}`, 200, "", true},
		{"the conversation's typing action", "/api/v1/whatsapp/conversations/" + conv + "/typing", "", 200, "", true},
		{"an id no guest sent", "/api/v1/whatsapp/messages/wamid.nobody/read", "", 404, "MESSAGE_NOT_FOUND", false},
		{"a body that is not the call's", "/api/v1/whatsapp/messages/read", `{"message_id":"` + wamid + `","typing_indicator":"yes"}`, 400, "INVALID_REQUEST", false},
		{"a conversation that is not there", "/api/v1/whatsapp/conversations/conv_nothere/typing", "", 404, "CONVERSATION_NOT_FOUND", false},
	}
	if !strings.Contains(wamid, "/") {
		// The path form, for an id that fits a path segment.
		cases = append(cases, struct {
			name, path, body string
			code             int
			errCode          string
			typing           bool
		}{"read by the path", "/api/v1/whatsapp/messages/" + wamid + "/read", "", 200, "", false})
	}
	want := 0
	for _, c := range cases {
		code, v := tg.call("POST", c.path, c.body)
		if code != c.code {
			t.Fatalf("%s: %d %v, want %d", c.name, code, v, c.code)
		}
		if c.errCode != "" {
			if e, _ := v["error"].(map[string]any); e["code"] != c.errCode {
				t.Fatalf("%s: %v, want error %s", c.name, v, c.errCode)
			}
			continue
		}
		if v["success"] != true || v["message_id"] != wamid || v["from"] != devSender || v["guest_phone"] != guest || v["typing_indicator"] != c.typing {
			t.Fatalf("%s: answer %v", c.name, v)
		}
		want++
		rs := tg.sim.ReadReceipts(devPhoneID)
		if len(rs) != want || rs[want-1].MessageID != wamid || rs[want-1].Typing != c.typing {
			t.Fatalf("%s: the simulator took %+v, want receipt %d for %s with typing %v", c.name, rs, want, wamid, c.typing)
		}
	}

	// Staff reading the conversation mark the guest's message read too,
	// in the background.
	code, v := tg.call("POST", "/api/v1/whatsapp/conversations/"+conv+"/read", "")
	if code != 200 {
		t.Fatalf("read action: %d %v", code, v)
	}
	deadline = time.Now().Add(10 * time.Second)
	for len(tg.sim.ReadReceipts(devPhoneID)) == want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	rs := tg.sim.ReadReceipts(devPhoneID)
	if len(rs) != want+1 || rs[want].MessageID != wamid || rs[want].Typing {
		t.Fatalf("after the read action the simulator took %+v, want a receipt without typing for %s", rs, wamid)
	}
}
