package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

func sendWith(extra string) string {
	return `{"guest_phone":"+1234567890","message_type":"text","content":{"text":"hi"}` + extra + `}`
}

func TestDeliveryOptionsAreCheckedAndKept(t *testing.T) {
	h := newHarness(t)
	bad := func(name, extra, field string) {
		t.Run(name, func(t *testing.T) {
			code, v, _ := h.do("POST", sendPath, staffToken, sendWith(extra))
			if code != 400 || errCode(t, v) != "INVALID_REQUEST" {
				t.Fatalf("%d %v", code, v)
			}
			if got := v["error"].(map[string]any)["details"].(map[string]any)["field"]; got != field {
				t.Fatalf("error names %v, want %s", got, field)
			}
		})
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	bad("priority", `,"priority":"urgent"`, "priority")
	bad("campaign on tx", `,"campaign_id":"spring"`, "campaign_id")
	bad("campaign chars", `,"priority":"bulk","campaign_id":"spring sale"`, "campaign_id")
	bad("send_at format", `,"send_at":"tomorrow"`, "send_at")
	bad("send_at too far", `,"send_at":"`+time.Now().Add(40*24*time.Hour).UTC().Format(time.RFC3339)+`"`, "send_at")
	bad("both validities", `,"expires_at":"`+future+`","ttl_seconds":60`, "ttl_seconds")
	bad("expires before send", `,"send_at":"`+future+`","expires_at":"`+time.Now().Add(time.Minute).UTC().Format(time.RFC3339)+`"`, "expires_at")
	bad("ttl zero", `,"ttl_seconds":0`, "ttl_seconds")
	bad("fallback after without text", `,"fallback_after_seconds":120`, "fallback_after_seconds")
	bad("fallback after too short", `,"fallback_text":"x","fallback_after_seconds":30`, "fallback_after_seconds")

	code, v, _ := h.do("POST", sendPath, staffToken, sendWith(`,"priority":"bulk","campaign_id":"spring-2026","send_at":"`+future+
		`","ttl_seconds":3600,"fallback_text":"Your room is ready","fallback_after_seconds":300`))
	if code != 202 || v["status"] != "scheduled" {
		t.Fatalf("%d %v", code, v)
	}
	_, st, _ := h.do("GET", "/api/v1/whatsapp/messages/"+v["message_id"].(string)+"/status", staffToken, "")
	sendAt, _ := time.Parse(time.RFC3339, future)
	expires, _ := time.Parse(time.RFC3339Nano, st["expires_at"].(string))
	if st["status"] != "scheduled" || st["priority"] != "bulk" || st["campaign_id"] != "spring-2026" ||
		st["send_at"] == nil || !expires.Equal(sendAt.Add(time.Hour)) || st["fallback"] != nil {
		t.Fatalf("status %v", st)
	}
}

func TestBackpressureRefusesPastTheTenantsCap(t *testing.T) {
	h := newHarness(t)
	h.srv.cfg.DefaultMaxQueued = 3
	for i := 0; i < 3; i++ {
		if code, v, _ := h.do("POST", sendPath, staffToken, seedSend(fmt.Sprint(i))); code != 202 {
			t.Fatalf("message %d under the cap: %d %v", i, code, v)
		}
	}
	code, v, hdr := h.do("POST", sendPath, staffToken, seedSend("one too many"))
	if code != 429 || errCode(t, v) != "RATE_LIMIT_EXCEEDED" || hdr.Get("Retry-After") == "" {
		t.Fatalf("past the cap: %d %v %v", code, v, hdr)
	}
	if q := h.queued(); q != 3 {
		t.Fatalf("%d queued, want the 3 under the cap", q)
	}
	// Another tenant has its own cap.
	if code, _, _ := h.do("POST", sendPath, otherToken, seedSend("hi")); code != 202 {
		t.Fatalf("another tenant refused: %d", code)
	}
}

func TestBackpressureUsesTheTenantsCapAndLetsRepeatsThrough(t *testing.T) {
	h := newHarness(t)
	p, _ := h.srv.tokens.lookup([]byte("Bearer " + staffToken))
	p.Tenant.MaxQueued = 1
	if code, v, _ := h.do("POST", sendPath, staffToken, seedSend("first"), "Idempotency-Key", "k1"); code != 202 {
		t.Fatalf("under the tenant's cap: %d %v", code, v)
	}
	if code, _, _ := h.do("POST", sendPath, staffToken, seedSend("second")); code != 429 {
		t.Fatalf("past the tenant's cap of 1: %d", code)
	}
	// The client did not get the first answer and repeats the request.
	code, v, hdr := h.do("POST", sendPath, staffToken, seedSend("first"), "Idempotency-Key", "k1")
	if code != 202 || hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a repeat at the cap: %d %v", code, v)
	}
}

func TestDeadLettersNeedAdminAndRequeue(t *testing.T) {
	h := newHarness(t)
	_, v, _ := h.do("POST", sendPath, staffToken, seedSend("hi"))
	id := v["message_id"].(string)
	j := h.begin(id)
	must(t, h.store.Finish(context.Background(), j, &redis.Result{Status: message.StatusFailed, AtMS: time.Now().UnixMilli(),
		ErrorCode: 131000, ErrorTitle: "Something went wrong"}, redis.FinishOptions{DeadLetter: true}))

	const list = "/api/v1/whatsapp/admin/dead-letters"
	if code, v, _ := h.do("GET", list, staffToken, ""); code != 403 || errCode(t, v) != "FORBIDDEN" {
		t.Fatalf("staff: %d %v", code, v)
	}
	code, v, _ := h.do("GET", list, adminToken, "")
	dls, _ := v["dead_letters"].([]any)
	if code != 200 || len(dls) != 1 {
		t.Fatalf("list: %d %v", code, v)
	}
	d := dls[0].(map[string]any)
	if d["message_id"] != id || d["error_code"] != float64(131000) || d["guest_phone"] != "+1234567890" || d["dead_lettered_at"] == nil {
		t.Fatalf("entry %v", d)
	}
	if _, v, _ := h.do("GET", list, otherToken, ""); v["error"] == nil {
		t.Fatalf("another tenant's staff token: %v", v) // staff anyway: refused
	}
	if code, v, _ := h.do("GET", list+"?limit=0", adminToken, ""); code != 400 {
		t.Fatalf("limit 0: %d %v", code, v)
	}
	requeue := list + "/" + id + "/requeue"
	if code, v, _ := h.do("POST", requeue, staffToken, ""); code != 403 {
		t.Fatalf("staff requeue: %d %v", code, v)
	}
	code, v, _ = h.do("POST", requeue, adminToken, "")
	if code != 202 || v["status"] != "queued" {
		t.Fatalf("requeue: %d %v", code, v)
	}
	if code, v, _ := h.do("POST", requeue, adminToken, ""); code != 409 || errCode(t, v) != "MESSAGE_NOT_DEAD_LETTERED" {
		t.Fatalf("second requeue: %d %v", code, v)
	}
	if code, v, _ := h.do("POST", list+"/"+message.NewID(1, 1)+"/requeue", adminToken, ""); code != 404 || errCode(t, v) != "MESSAGE_NOT_FOUND" {
		t.Fatalf("unknown: %d %v", code, v)
	}
	_, st, _ := h.do("GET", "/api/v1/whatsapp/messages/"+id+"/status", staffToken, "")
	if st["status"] != "queued" {
		b, _ := json.Marshal(st)
		t.Fatalf("after requeue: %s", b)
	}
}
