package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
)

// acceptN sends n text messages to distinct recipients and returns their
// wamids and recipients' digits.
func acceptN(t *testing.T, s *Server, n int) (ids, tos []string) {
	t.Helper()
	for i := 0; i < n; i++ {
		to := fmt.Sprintf("4915112345%03d", i)
		a := send(t, s, `{"messaging_product":"whatsapp","to":"+`+to+`","type":"text","text":{"body":"hi"}}`)
		var ans struct {
			Messages []struct {
				ID string `json:"id"`
			} `json:"messages"`
		}
		if a.status != 200 || json.Unmarshal(a.body, &ans) != nil || len(ans.Messages) != 1 {
			t.Fatalf("send: %d %s", a.status, a.body)
		}
		ids, tos = append(ids, ans.Messages[0].ID), append(tos, to)
	}
	return ids, tos
}

// settled waits until the receiver has n statuses and the simulator has
// counted every status it scheduled as posted: a status that follows
// another is scheduled when that one comes due, before it is posted, so
// nothing more comes.
func settled(t *testing.T, s *Server, r *receiver, n int) {
	t.Helper()
	testwait.For(t, 5*time.Second, fmt.Sprintf("%d statuses posted and counted", n), func() bool {
		st := s.Stats()
		return len(r.statuses()) >= n && st.StatusesPosted == st.StatusesScheduled && st.StatusesPosted >= int64(n)
	})
}

// byRank orders one message's statuses as they happened: webhooks, Meta's
// and the simulator's (several posters), may arrive in any order.
func byRank(sts []provider.StatusUpdate) []provider.StatusUpdate {
	rank := map[message.Status]int{message.StatusSent: 0, message.StatusDelivered: 1, message.StatusRead: 2, message.StatusFailed: 2}
	out := slices.Clone(sts)
	slices.SortStableFunc(out, func(a, b provider.StatusUpdate) int { return rank[a.Status] - rank[b.Status] })
	return out
}

func byMessage(sts []provider.StatusUpdate) map[string][]provider.StatusUpdate {
	m := map[string][]provider.StatusUpdate{}
	for _, s := range sts {
		m[s.ProviderMessageID] = append(m[s.ProviderMessageID], s)
	}
	return m
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestStatusWebhooks(t *testing.T) {
	r := newReceiver(t)
	s := startSim(t, Config{WebhookURL: r.srv.URL})
	start := time.Now().Unix()
	ids, tos := acceptN(t, s, 3)
	settled(t, s, r, 9)
	posts := r.snapshot()
	if len(posts) != 9 || r.badSigs != 0 {
		t.Fatalf("%d posts, %d refused; want 9 signed posts", len(posts), r.badSigs)
	}
	for _, p := range posts {
		if len(p.statuses) != 1 || len(p.inbound) != 0 {
			t.Fatalf("post with %d statuses: %s", len(p.statuses), p.body)
		}
		var env struct {
			Object string `json:"object"`
			Entry  []struct {
				ID      string `json:"id"`
				Changes []struct {
					Field string `json:"field"`
					Value struct {
						MessagingProduct string `json:"messaging_product"`
						Metadata         struct {
							DisplayPhoneNumber string `json:"display_phone_number"`
						} `json:"metadata"`
						Statuses []struct {
							Timestamp    string `json:"timestamp"`
							Conversation *struct {
								ExpirationTimestamp string `json:"expiration_timestamp"`
								Origin              struct {
									Type string `json:"type"`
								} `json:"origin"`
							} `json:"conversation"`
							Pricing *struct {
								PricingModel string `json:"pricing_model"`
							} `json:"pricing"`
						} `json:"statuses"`
					} `json:"value"`
				} `json:"changes"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(p.body, &env); err != nil {
			t.Fatal(err)
		}
		e := env.Entry[0]
		c := e.Changes[0]
		st := c.Value.Statuses[0]
		if env.Object != "whatsapp_business_account" || e.ID != "200000000000001" || c.Field != "messages" ||
			c.Value.MessagingProduct != "whatsapp" || c.Value.Metadata.DisplayPhoneNumber != "15550001000" ||
			!regexp.MustCompile(`^[0-9]{10}$`).MatchString(st.Timestamp) {
			t.Fatalf("envelope %s", p.body)
		}
		if p.statuses[0].Status != message.StatusRead &&
			(st.Conversation == nil || st.Conversation.Origin.Type != "service" || st.Conversation.ExpirationTimestamp == "" || st.Pricing == nil || st.Pricing.PricingModel != "PMP") {
			t.Fatalf("sent/delivered without conversation or pricing: %s", p.body)
		}
	}
	got := byMessage(r.statuses())
	for i, id := range ids {
		sts := byRank(got[id])
		if len(sts) != 3 {
			t.Fatalf("%s: %d statuses", id, len(sts))
		}
		for j, want := range []message.Status{message.StatusSent, message.StatusDelivered, message.StatusRead} {
			st := sts[j]
			if st.Status != want || st.RecipientID != tos[i] || st.PhoneNumberID != testPhoneID || st.AtMS/1000 < start || st.ErrorCode != 0 {
				t.Fatalf("%s status %d: %+v, want %s", id, j, st, want)
			}
			// Free-form messages: a service conversation, free under
			// per-message pricing.
			if want != message.StatusRead && (!hex32.MatchString(st.ConversationID) || st.Billable || st.PricingCategory != "service" ||
				st.PricingModel != "PMP" || st.PricingType != "free_customer_service") {
				t.Fatalf("%s %s: conversation/pricing %+v", id, want, st)
			}
		}
		if sts[0].ConversationID != sts[1].ConversationID {
			t.Fatalf("%s: conversation changed between sent and delivered", id)
		}
	}
	if st := s.Stats(); st.StatusesPosted != 9 || st.StatusesScheduled != 9 || st.WebhooksPosted != 9 || st.WebhooksFailed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStatusRatios(t *testing.T) {
	r := newReceiver(t)
	s := startSim(t, Config{WebhookURL: r.srv.URL, FailRatio: 1})
	ids, _ := acceptN(t, s, 2)
	settled(t, s, r, 4) // no read may follow a failure
	got := byMessage(r.statuses())
	for _, id := range ids {
		sts := byRank(got[id])
		if len(sts) != 2 || sts[0].Status != message.StatusSent || sts[1].Status != message.StatusFailed ||
			sts[1].ErrorCode != 131026 || sts[1].ErrorTitle != "Message undeliverable" {
			t.Fatalf("%s: %+v", id, sts)
		}
	}

	r = newReceiver(t)
	s = startSim(t, Config{WebhookURL: r.srv.URL, ReadRatio: -1})
	ids, _ = acceptN(t, s, 2)
	settled(t, s, r, 4)
	got = byMessage(r.statuses())
	for _, id := range ids {
		if sts := byRank(got[id]); len(sts) != 2 || sts[1].Status != message.StatusDelivered {
			t.Fatalf("%s: %+v", id, sts)
		}
	}
}

func TestStatusBatching(t *testing.T) {
	r := newReceiver(t)
	s := startSim(t, Config{WebhookURL: r.srv.URL, MaxStatusesPerWebhook: 4, WebhookFlush: 50 * time.Millisecond,
		StatusDelays: Delays{Sent: 100 * time.Millisecond, Delivered: 300 * time.Millisecond, Read: 500 * time.Millisecond}})
	ids, _ := acceptN(t, s, 6)
	settled(t, s, r, 18)
	posts := r.snapshot()
	most := 0
	for _, p := range posts {
		if len(p.statuses) > 4 {
			t.Fatalf("post with %d statuses, limit 4", len(p.statuses))
		}
		most = max(most, len(p.statuses))
	}
	// 6 statuses of each kind come due within a few milliseconds: 4 + 2.
	if most != 4 || len(posts) > 9 {
		t.Fatalf("%d posts, at most %d statuses each; want batches of 4", len(posts), most)
	}
	got := byMessage(r.statuses())
	for _, id := range ids {
		if len(got[id]) != 3 {
			t.Fatalf("%s: %d statuses", id, len(got[id]))
		}
	}
	if st := s.Stats(); st.StatusesPosted != 18 || st.WebhooksPosted != int64(len(posts)) {
		t.Fatalf("stats %+v, %d posts", st, len(posts))
	}
}

func TestWebhookRetry(t *testing.T) {
	r := newReceiver(t)
	r.failN = 3
	s := startSim(t, Config{WebhookURL: r.srv.URL, WebhookBackoffMin: 10 * time.Millisecond, WebhookBackoffMax: 40 * time.Millisecond})
	ids, _ := acceptN(t, s, 1)
	// The simulator counts a post once its answer is in, after the
	// receiver has it: wait for both.
	testwait.For(t, 5*time.Second, "3 statuses", func() bool { return len(r.statuses()) >= 3 && s.Stats().StatusesPosted >= 3 })
	got := byMessage(r.statuses())[ids[0]]
	if len(got) != 3 {
		t.Fatalf("statuses %+v", got)
	}
	seen := map[message.Status]bool{}
	for _, st := range got {
		seen[st.Status] = true
	}
	if !seen[message.StatusSent] || !seen[message.StatusDelivered] || !seen[message.StatusRead] {
		t.Fatalf("statuses %+v", got)
	}
	if st := s.Stats(); st.WebhooksFailed != 3 || st.WebhooksRetried != 3 || st.WebhooksDropped != 0 || st.StatusesPosted != 3 {
		t.Fatalf("stats %+v", st)
	}

	// Given up after WebhookMaxAttempts, and counted.
	r = newReceiver(t)
	r.failN = 1 << 30
	s = startSim(t, Config{WebhookURL: r.srv.URL, WebhookMaxAttempts: 2, WebhookBackoffMin: 5 * time.Millisecond, WebhookBackoffMax: 5 * time.Millisecond})
	acceptN(t, s, 1)
	testwait.For(t, 5*time.Second, "3 dropped webhooks", func() bool { return s.Stats().WebhooksDropped >= 3 })
	if st := s.Stats(); st.WebhooksFailed != 6 || st.StatusesDropped != 3 || st.StatusesPosted != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestInbound(t *testing.T) {
	r := newReceiver(t)
	s := startSim(t, Config{WebhookURL: r.srv.URL})
	a := do(t, "POST", s.URL()+"/_sim/inbound", "", "application/json",
		[]byte(`{"phone_number_id":"`+testPhoneID2+`","from":"+4915112345678","name":"Ana \"Room 12\"","text":"Can I check out at 2pm?\nThanks"}`))
	var ans struct {
		ID string `json:"id"`
	}
	if a.status != 200 || json.Unmarshal(a.body, &ans) != nil || !wamidRE.MatchString(ans.ID) {
		t.Fatalf("/_sim/inbound: %d %s", a.status, a.body)
	}
	id2, err := s.Inbound(testPhoneID, "15550009999", "", "STOP")
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "2 inbound webhooks", func() bool { return len(r.snapshot()) >= 2 })
	var got []provider.Inbound
	for _, p := range r.snapshot() {
		got = append(got, p.inbound...)
		if !strings.Contains(string(p.body), `"contacts":[{"profile":{"name":`) {
			t.Fatalf("no contacts: %s", p.body)
		}
	}
	if len(got) != 2 {
		t.Fatalf("inbound %+v", got)
	}
	if got[0].ProviderMessageID != ans.ID {
		got[0], got[1] = got[1], got[0]
	}
	now := time.Now().UnixMilli()
	want := provider.Inbound{ProviderMessageID: ans.ID, PhoneNumberID: testPhoneID2, From: "+4915112345678", Name: `Ana "Room 12"`,
		Type: "text", Text: "Can I check out at 2pm?\nThanks", AtMS: got[0].AtMS}
	if !reflect.DeepEqual(got[0], want) || now-got[0].AtMS > 10000 {
		t.Fatalf("got %+v\nwant %+v", got[0], want)
	}
	if got[1].ProviderMessageID != id2 || got[1].From != "+15550009999" || got[1].Text != "STOP" || got[1].PhoneNumberID != testPhoneID {
		t.Fatalf("got %+v", got[1])
	}
	if s.Stats().InboundPosted != 2 {
		t.Fatalf("stats %+v", s.Stats())
	}
	for _, c := range []struct{ id, from, text string }{{"nope", "+4915112345678", "x"}, {testPhoneID, "12", "x"}, {testPhoneID, "+4915112345678", ""}} {
		if _, err := s.Inbound(c.id, c.from, "", c.text); err == nil {
			t.Fatalf("Inbound(%q, %q, %q) accepted", c.id, c.from, c.text)
		}
	}
	if a := do(t, "POST", s.URL()+"/_sim/inbound", "", "application/json", []byte(`{"phone_number_id":"nope","from":"+4915112345678","text":"x"}`)); a.status != 400 {
		t.Fatalf("unknown number: %d %s", a.status, a.body)
	}
	quiet := startSim(t, Config{})
	if _, err := quiet.Inbound(testPhoneID, "+4915112345678", "", "x"); err != ErrNoWebhook {
		t.Fatalf("without webhook url: %v", err)
	}
}

func TestShutdownAbandons(t *testing.T) {
	r := newReceiver(t)
	s, err := New(Config{Addr: "127.0.0.1:0", Numbers: testNumbers, AccessToken: testToken, AppSecret: testSecret, WebhookURL: r.srv.URL,
		StatusDelays: Delays{Sent: time.Hour, Delivered: time.Hour, Read: time.Hour}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	acceptN(t, s, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	if st := s.Stats(); st.Abandoned != 2 || st.StatusesScheduled != 2 {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Shutdown(ctx); err == nil {
		t.Fatal("second shutdown accepted")
	}
}
