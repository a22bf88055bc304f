package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/redis"
)

// TestPortfolioLimitHoldsBusinessInitiatedSends: with its business
// portfolio at its messaging limit (2 new guests a day, configured),
// a template to a third new guest is held, not sent and not failed, with a
// metric and an event; a guest whose window is open is answered all the
// same; Meta raising the limit (a signed business_capability_update
// webhook) lets the held one go.
func TestPortfolioLimitHoldsBusinessInitiatedSends(t *testing.T) {
	tg := startTestGatewayWith(t, sim.Delays{Sent: 50 * time.Millisecond, Delivered: 100 * time.Millisecond, Read: 150 * time.Millisecond},
		func(fc *fileConfig) {
			fc.Meta.Accounts[0].MessagingLimit = 2
			fc.Dispatch.PortfolioRecheck = "200ms"
		})
	invite := func(guest string) string {
		t.Helper()
		code, v := tg.call("POST", "/api/v1/whatsapp/templates/send", `{"guest_phone":"`+guest+
			`","template_name":"event_invitation","language":"en","parameters":{"guest_name":"Ana","event_name":"Jazz Night","event_date":"Friday","venue":"the Terrace"}}`)
		if code != 202 {
			t.Fatalf("invite %s: %d %v", guest, code, v)
		}
		return v["message_id"].(string)
	}
	status := func(id string) (message.Status, string) {
		t.Helper()
		st, err := tg.gw.store.State(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return st.Status, st.ErrorTitle
	}
	waitSent := func(id string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if s, _ := status(id); message.Rank(s) >= message.Rank(message.StatusSent) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		s, why := status(id)
		t.Fatalf("%s is %s (%s), want sent", id, s, why)
	}

	first, second := invite("+14155550301"), invite("+14155550302")
	waitSent(first)
	waitSent(second)
	held := invite("+14155550303")
	// Held: queued with why, for more than a few rechecks, and never sent.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s, why := status(held); s == message.StatusQueued && strings.Contains(why, "messaging limit") {
			break
		}
		if time.Now().After(deadline) {
			s, why := status(held)
			t.Fatalf("the third new guest's invitation is %s (%q), want queued and held by the portfolio's limit", s, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if s, _ := status(held); s != message.StatusQueued {
		t.Fatalf("held invitation became %s", s)
	}
	if n := len(tg.sim.Requests(devPhoneID)); n != 2 {
		t.Fatalf("the simulator got %d sends, want the 2 under the limit", n)
	}
	if n := metricSum(t, tg, "wagate_portfolio_held_total"); n != 1 {
		t.Fatalf("wagate_portfolio_held_total %v, want 1 (once per hold, not per recheck)", n)
	}

	// A guest who wrote is answered: not a conversation the business
	// starts.
	tg.guestWrites("+14155550304", "Is the terrace heated?")
	waitSent(invite("+14155550304"))

	// Meta raises the portfolio's limit: the held invitation goes.
	body := fmt.Sprintf(`{"object":"whatsapp_business_account","entry":[{"id":%q,"time":%d,"changes":[{"field":"business_capability_update","value":{"max_daily_conversations_per_business":2000,"max_phone_numbers_per_business":20}}]}]}`,
		devWABA, time.Now().Unix())
	mac := hmac.New(sha256.New, []byte(devAppSecret))
	mac.Write([]byte(body))
	req, _ := http.NewRequest("POST", tg.api+"/webhooks/meta", bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
	waitSent(held)
	if lim := metricSum(t, tg, "wagate_portfolio_messaging_limit"); lim != 2000 {
		t.Fatalf("wagate_portfolio_messaging_limit %v, want 2000", lim)
	}
}

// metricSum is the sum of every series of metric name in the gateway's
// registry.
func metricSum(t *testing.T, tg *testGateway, name string) float64 {
	t.Helper()
	mfs, err := tg.gw.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// TestPortfolioHoldReleasesAsTheDayRolls: a portfolio whose limit (2) was
// reached by guests started almost 24 hours ago holds a new guest's
// template until those guests leave the moving window, then sends it,
// with no webhook and nothing else changing.
func TestPortfolioHoldReleasesAsTheDayRolls(t *testing.T) {
	tg := startTestGatewayWith(t, sim.Delays{Sent: 50 * time.Millisecond, Delivered: 100 * time.Millisecond, Read: 150 * time.Millisecond},
		func(fc *fileConfig) {
			fc.Meta.Accounts[0].MessagingLimit = 2
			fc.Dispatch.PortfolioRecheck = "200ms"
		})
	// Yesterday's two guests, counted 24 hours less 3 seconds ago.
	users := redis.NewKeys(tg.g.prefix, tg.g.shards, 1).PortfolioUsers(devWABA)
	yesterday := float64(time.Now().Add(-redis.PortfolioWindow + 3*time.Second).UnixMilli())
	if err := tg.gw.rdb.ZAdd(context.Background(), users, goredis.Z{Score: yesterday, Member: "+14155550401"},
		goredis.Z{Score: yesterday, Member: "+14155550402"}).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, v := tg.call("POST", "/api/v1/whatsapp/templates/send", `{"guest_phone":"+14155550403","template_name":"event_invitation","language":"en","parameters":{"guest_name":"Ana","event_name":"Jazz Night","event_date":"Friday","venue":"the Terrace"}}`)
	if code != 202 {
		t.Fatalf("invite: %d %v", code, v)
	}
	id := v["message_id"].(string)
	var sentAfter time.Duration
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		st, err := tg.gw.store.State(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if message.Rank(st.Status) >= message.Rank(message.StatusSent) {
			sentAfter = time.Since(start)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	switch {
	case sentAfter == 0:
		t.Fatal("the invitation was not sent once yesterday's guests left the window")
	case sentAfter < 2*time.Second:
		t.Fatalf("sent after %v: not held while the portfolio was at its limit", sentAfter)
	}
	if n := metricSum(t, tg, "wagate_portfolio_held_total"); n != 1 {
		t.Fatalf("wagate_portfolio_held_total %v, want 1", n)
	}
}
