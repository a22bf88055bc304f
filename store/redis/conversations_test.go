package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
)

const guestPhone = "+14155550100"

// inbound files a text from guest at at.
func inbound(t *testing.T, s *Store, guest, wamid, text string, at time.Time, opt string) InboundResult {
	t.Helper()
	res, err := s.RecordInbound(context.Background(), &InboundArgs{
		TenantID: "hotel", Sender: testSender, Guest: guest, Name: "Ana", ProviderMessageID: wamid, AtMS: at.UnixMilli(),
		Entry: HistoryEntry{ID: wamid, AtMS: at.UnixMilli(), Type: "text", Preview: text},
		Opt:   opt, Keyword: text, NotifyKind: "inbound_message", NotifyData: []byte(`{"text":"` + text + `"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestWindowOpensWithTheGuestsMessageAndClosesAfter24Hours(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	now := time.Now()
	s.now = func() time.Time { return now }
	a := textArgs(guestPhone, "hi")
	a.WindowCheck = true

	res, err := s.Enqueue(ctx, a)
	if err != nil || res.Outcome != WindowClosed || res.LastInboundMS != 0 {
		t.Fatalf("a guest who never wrote: %+v %v", res, err)
	}
	if n, _ := s.rdb.Exists(ctx, s.keys.Guest(message.ShardFor(testSender, 4), testSender, guestPhone)).Result(); n != 0 {
		t.Fatal("a refused send left the guest's state behind")
	}
	wrote := now.Add(-23 * time.Hour)
	inbound(t, s, guestPhone, "wamid.1", "hello", wrote, "")
	res, err = s.Enqueue(ctx, a)
	if err != nil || res.Outcome != Queued || res.Conversation == "" {
		t.Fatalf("within the window: %+v %v", res, err)
	}
	now = wrote.Add(24 * time.Hour)
	res, err = s.Enqueue(ctx, textArgs(guestPhone, "late"))
	if err != nil || res.Outcome != Queued {
		t.Fatalf("without WindowCheck (templates) the window does not matter: %+v %v", res, err)
	}
	a2 := textArgs(guestPhone, "late2")
	a2.WindowCheck = true
	res, err = s.Enqueue(ctx, a2)
	if err != nil || res.Outcome != WindowClosed || res.LastInboundMS != wrote.UnixMilli() {
		t.Fatalf("24 h after the guest's message: %+v %v", res, err)
	}
}

func TestOptOutRefusesEverySendUntilOptIn(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	inbound(t, s, guestPhone, "wamid.stop", "STOP", time.Now(), "out")
	g, err := s.Guest(ctx, testSender, guestPhone)
	if err != nil || !g.OptedOut || g.OptSource != "keyword" {
		t.Fatalf("guest %+v %v", g, err)
	}
	// Opt-outs are kept for good.
	if ttl := s.rdb.TTL(ctx, s.keys.Guest(message.ShardFor(testSender, 4), testSender, guestPhone)).Val(); ttl != -1 {
		t.Fatalf("opted-out guest's state expires in %v", ttl)
	}
	res, err := s.Enqueue(ctx, textArgs(guestPhone, "offer"))
	if err != nil || res.Outcome != OptedOut || res.How != "keyword" || res.SinceMS == 0 {
		t.Fatalf("send to an opted-out guest: %+v %v", res, err)
	}
	force := textArgs(guestPhone, "You are unsubscribed")
	force.Force = true
	if res, err := s.Enqueue(ctx, force); err != nil || res.Outcome != Queued {
		t.Fatalf("the opt-out confirmation: %+v %v", res, err)
	}
	changed, err := s.SetOptOut(ctx, "hotel", testSender, guestPhone, false, "api", "asked at the desk")
	if err != nil || !changed {
		t.Fatalf("opt-in: %v %v", changed, err)
	}
	if changed, _ := s.SetOptOut(ctx, "hotel", testSender, guestPhone, false, "api", ""); changed {
		t.Fatal("a second opt-in changed something")
	}
	if res, err := s.Enqueue(ctx, textArgs(guestPhone, "welcome back")); err != nil || res.Outcome != Queued {
		t.Fatalf("after opt-in: %+v %v", res, err)
	}
	ns, err := s.ReadNotices(ctx, message.ShardFor(testSender, 4), "c1", 100, false)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, n := range ns {
		kinds = append(kinds, n.Kind)
	}
	want := fmt.Sprint([]string{"conversation_updated", "inbound_message", "guest_opted_out", "guest_opted_in"})
	if fmt.Sprint(kinds) != want {
		t.Fatalf("notices %v, want %v", kinds, want)
	}
}

func TestConversationLife(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	senders := []string{testSender}
	// A template opens a conversation the business initiated.
	tpl := textArgs(guestPhone, "x")
	tpl.Type, tpl.Content, tpl.Preview = message.TypeTemplate, []byte(`{"name":"welcome","language":{"code":"en"}}`), "Welcome!"
	tpl.ConversationMeta = map[string]string{"booking_reference": "RB123456"}
	res, err := s.Enqueue(ctx, tpl)
	if err != nil || res.Outcome != Queued {
		t.Fatal(res, err)
	}
	conv := res.Conversation
	c, err := s.FindConversation(ctx, "hotel", senders, conv)
	if err != nil || c.State != ConvOpen || c.LastInboundMS != 0 || c.Messages != 1 || c.LastPreview != "Welcome!" ||
		c.Metadata["booking_reference"] != "RB123456" || c.Guest != guestPhone {
		t.Fatalf("new conversation %+v %v", c, err)
	}
	if _, err := s.FindConversation(ctx, "other-tenant", senders, conv); !errors.Is(err, ErrConversationNotFound) {
		t.Fatalf("another tenant found it: %v", err)
	}
	// The guest answers: same conversation, unread, window open.
	r := inbound(t, s, guestPhone, "wamid.a", "Thanks!", time.Now(), "")
	if r.Conversation != conv || r.Change != "" {
		t.Fatalf("answer went to %+v", r)
	}
	if dup := inbound(t, s, guestPhone, "wamid.a", "Thanks!", time.Now(), ""); !dup.Duplicate {
		t.Fatal("the same provider message filed twice")
	}
	c, _ = s.FindConversation(ctx, "hotel", senders, conv)
	if c.Unread != 1 || c.Messages != 2 || c.LastDirection != "in" || c.WindowFromMS == 0 || c.GuestName != "Ana" {
		t.Fatalf("after the answer %+v", c)
	}
	hist, next, err := s.ConversationHistory(ctx, c, 50, -1)
	if err != nil || len(hist) != 2 || next != -1 || hist[0].Direction != "out" || hist[0].State == nil ||
		hist[0].State.Status != message.StatusQueued || hist[1].Direction != "in" || hist[1].Preview != "Thanks!" {
		t.Fatalf("history %+v next %d %v", hist, next, err)
	}
	// Read, assign, link, resolve (archives it).
	for _, a := range []struct {
		action string
		f      map[string]any
	}{
		{ActionRead, nil}, {ActionAssign, map[string]any{"assigned_to": "agent_7"}},
		{ActionLink, map[string]any{"service_request_id": "SR-1"}},
		{ActionResolve, map[string]any{"resolution_notes": "done", "satisfaction_rating": 5, "follow_up_required": false}},
	} {
		if _, _, err := s.ConversationAction(ctx, c, a.action, a.f); err != nil {
			t.Fatalf("%s: %v", a.action, err)
		}
	}
	c, _ = s.FindConversation(ctx, "hotel", senders, conv)
	var rs map[string]any
	json.Unmarshal([]byte(c.Resolution), &rs)
	if c.State != ConvArchived || c.Unread != 0 || c.AssignedTo != "agent_7" || c.ServiceRequest != "SR-1" || rs["satisfaction_rating"] != 5.0 {
		t.Fatalf("after actions %+v %v", c, rs)
	}
	// The guest writes again: the archived conversation reopens.
	if r := inbound(t, s, guestPhone, "wamid.b", "One more thing", time.Now(), ""); r.Conversation != conv || r.Change != "reopened" {
		t.Fatalf("archived conversation: %+v", r)
	}
	// Closed conversations are not reopened: the next message begins a new one.
	c, _ = s.FindConversation(ctx, "hotel", senders, conv)
	if _, _, err := s.ConversationAction(ctx, c, ActionClose, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ConversationAction(ctx, c, ActionAssign, map[string]any{"assigned_to": "x"}); !errors.Is(err, ErrConversationClosed) {
		t.Fatalf("assign on a closed conversation: %v", err)
	}
	r = inbound(t, s, guestPhone, "wamid.c", "Hello again", time.Now(), "")
	if r.Conversation == conv || r.Change != "created" {
		t.Fatalf("after close: %+v", r)
	}
	// Sending into the closed one by id is refused; into another guest's too.
	a := textArgs(guestPhone, "x")
	a.ConversationID = conv
	if res, _ := s.Enqueue(ctx, a); res.Outcome != ConversationClosed {
		t.Fatalf("send into a closed conversation: %+v", res)
	}
	b := textArgs("+14155550199", "x")
	b.ConversationID = r.Conversation
	if res, _ := s.Enqueue(ctx, b); res.Outcome != ConversationOther {
		t.Fatalf("send into another guest's conversation: %+v", res)
	}
	// The guest's conversations, newest first.
	list, cur, err := s.ListConversations(ctx, "hotel", senders, ConversationFilter{Guest: guestPhone}, 10, nil)
	if err != nil || len(list) != 2 || list[0].ID != r.Conversation || list[1].ID != conv || cur != nil {
		t.Fatalf("guest's conversations %v %v %v", ids(list), cur, err)
	}
	// Reopening the closed one makes it the guest's current conversation
	// again: the guest's next message and sends that name none go to it.
	c, _ = s.FindConversation(ctx, "hotel", senders, conv)
	if _, _, err := s.ConversationAction(ctx, c, ActionReopen, nil); err != nil {
		t.Fatal(err)
	}
	if r := inbound(t, s, guestPhone, "wamid.d", "Still there?", time.Now(), ""); r.Conversation != conv || r.Change != "" {
		t.Fatalf("after reopen the guest's message went to %+v", r)
	}
	if res, _ := s.Enqueue(ctx, textArgs(guestPhone, "Yes!")); res.Conversation != conv {
		t.Fatalf("after reopen a send went to %+v", res)
	}
}

func TestCallerNamedConversation(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	a := textArgs(guestPhone, "Welcome")
	a.ConversationID = "conv_abc123"
	res, err := s.Enqueue(ctx, a)
	if err != nil || res.Outcome != Queued || res.Conversation != "conv_abc123" {
		t.Fatalf("%+v %v", res, err)
	}
	st, _ := s.State(ctx, res.ID)
	if st.ConversationID != "conv_abc123" {
		t.Fatalf("message in %q", st.ConversationID)
	}
	// Later messages without an id join it: it is the guest's current one.
	res2, _ := s.Enqueue(ctx, textArgs(guestPhone, "More"))
	if res2.Conversation != "conv_abc123" {
		t.Fatalf("next message in %q", res2.Conversation)
	}
	c, err := s.FindConversation(ctx, "hotel", []string{"+15550009999", testSender}, "conv_abc123")
	if err != nil || c.Messages != 2 {
		t.Fatalf("%+v %v", c, err)
	}
	a.ConversationID = "bad id!"
	if _, err := s.Enqueue(ctx, a); !errors.Is(err, ErrBadConversationID) {
		t.Fatalf("bad id: %v", err)
	}
}

func TestListConversationsPagesInActivityOrder(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	now := time.Now()
	senders := []string{testSender, "+15550001001", "+15550001002"}
	want := []string{}
	for i := 0; i < 25; i++ {
		s.now = func() time.Time { return now.Add(time.Duration(i) * time.Second) }
		a := textArgs(fmt.Sprintf("+1415555%04d", i), "x")
		a.Sender = senders[i%3]
		res, err := s.Enqueue(ctx, a)
		if err != nil || res.Outcome != Queued {
			t.Fatal(res, err)
		}
		want = append([]string{res.Conversation}, want...)
	}
	var got []string
	var cur *ConversationCursor
	for pages := 0; ; pages++ {
		list, next, err := s.ListConversations(ctx, "hotel", senders, ConversationFilter{}, 10, cur)
		if err != nil || pages > 5 {
			t.Fatal(err, pages)
		}
		got = append(got, ids(list)...)
		if next == nil {
			break
		}
		back, err := ParseConversationCursor(next.String())
		if err != nil || back != *next {
			t.Fatalf("cursor %v round trip %v %v", next, back, err)
		}
		cur = next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pages\n%v\nwant\n%v", got, want)
	}
	// Filters: assignee.
	c, _ := s.FindConversation(ctx, "hotel", senders, want[3])
	s.ConversationAction(ctx, c, ActionAssign, map[string]any{"assigned_to": "agent_1"})
	list, _, _ := s.ListConversations(ctx, "hotel", senders, ConversationFilter{AssignedTo: "agent_1"}, 10, nil)
	if len(list) != 1 || list[0].ID != want[3] {
		t.Fatalf("assigned %v", ids(list))
	}
	if list, _, _ := s.ListConversations(ctx, "other", senders, ConversationFilter{}, 10, nil); len(list) != 0 {
		t.Fatalf("another tenant lists %v", ids(list))
	}
}

func TestBatchRefusesOptedOutAndClosedWindowPerMessage(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	inbound(t, s, "+14155550001", "wamid.1", "hi", time.Now(), "")
	inbound(t, s, "+14155550002", "wamid.2", "STOP", time.Now(), "out")
	a := &BatchArgs{TenantID: "hotel", Sender: testSender, ID: s.NewBatchID(testSender), WindowCheck: true,
		Items: []BatchItem{
			{Recipient: "+14155550001", Type: message.TypeText, Content: []byte(`{"body":"a"}`), Preview: "a"},
			{Recipient: "+14155550002", Type: message.TypeText, Content: []byte(`{"body":"b"}`), Preview: "b"},
			{Recipient: "+14155550003", Type: message.TypeText, Content: []byte(`{"body":"c"}`), Preview: "c"},
			{Recipient: "+14155550003", Type: message.TypeTemplate, Content: []byte(`{"name":"t","language":{"code":"en"}}`), Preview: "t"},
		}}
	_, queued, err := s.EnqueueBatch(ctx, a)
	if err != nil || queued != 4 {
		t.Fatalf("queued %d %v", queued, err)
	}
	// The guest's opt-out and window are checked when the dispatcher takes
	// each message: a guest who opts out after the batch was accepted is
	// not messaged either.
	inbound(t, s, "+14155550001", "wamid.3", "STOP", time.Now(), "out")
	shard := message.ShardFor(testSender, 4)
	l := testLease(t, s, shard, "w1")
	es, _ := s.ReadEntries(ctx, "w1", []string{s.keys.SenderQueue(shard, testSender, message.LaneBulk, a.ID)}, 10, nil)
	var begun []Begun
	for _, j := range chunkJobs(t, s, l, shard, &es[0]) {
		b, err := s.Begin(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		begun = append(begun, b)
	}
	if fmt.Sprint(begun) != fmt.Sprint([]Begun{BeginDone, BeginDone, BeginDone, BeginGo}) {
		t.Fatalf("begun %v: only the template to the guest who never wrote goes", begun)
	}
	b, err := s.Batch(ctx, a.ID)
	if err != nil || b.Counts[message.StatusSending] != 1 || b.Counts[message.StatusFailed] != 3 {
		t.Fatalf("counts %v %v", b.Counts, err)
	}
	for _, i := range []int{0, 1} {
		st, _ := s.State(ctx, message.BatchMessageID(a.ID, i))
		if st.Status != message.StatusFailed || !strings.HasPrefix(st.ErrorTitle, "GUEST_OPTED_OUT") {
			t.Fatalf("opted-out guest's message %+v", st)
		}
	}
	st, _ := s.State(ctx, message.BatchMessageID(a.ID, 2))
	if st.Status != message.StatusFailed || st.ErrorCode != 131047 {
		t.Fatalf("closed window's message %+v", st)
	}
	if open, _ := s.TenantOpen(ctx, "hotel"); open != 1 {
		t.Fatalf("tenant counts %d open", open)
	}
}

func ids(cs []*Conversation) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func TestConversationKeysLiveFromTheLastActivity(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	now := time.Now()
	s.now = func() time.Time { return now }
	res, err := s.Enqueue(ctx, textArgs(guestPhone, "hi"))
	if err != nil || res.Outcome != Queued {
		t.Fatalf("%+v %v", res, err)
	}
	sh := message.ShardFor(testSender, 4)
	keys := []string{s.keys.Conversation(sh, "hotel", res.Conversation), s.keys.ConversationHistory(sh, "hotel", res.Conversation),
		s.keys.Guest(sh, testSender, guestPhone)}
	ttls := func() []time.Duration {
		// The TTLs are the filer's to renew: file what waits first.
		if err := s.FileNow(ctx, []int{sh}); err != nil {
			t.Fatal(err)
		}
		out := make([]time.Duration, len(keys))
		for i, k := range keys {
			out[i] = s.rdb.TTL(ctx, k).Val()
		}
		return out
	}
	full := s.cfg.ConversationTTL
	for i, ttl := range ttls() {
		if ttl < full-time.Minute || ttl > full {
			t.Fatalf("a new conversation's %s lives %v, want %v", keys[i], ttl, full)
		}
	}
	// Stand in for time passing: shorten every TTL to an hour.
	for _, k := range keys {
		s.rdb.Expire(ctx, k, time.Hour)
	}
	// A message soon after the last one leaves the TTLs be (they were
	// renewed by that one)…
	now = now.Add(10 * time.Minute)
	if res, err := s.Enqueue(ctx, textArgs(guestPhone, "again")); err != nil || res.Outcome != Queued {
		t.Fatalf("%+v %v", res, err)
	}
	for i, ttl := range ttls() {
		if ttl > time.Hour {
			t.Fatalf("%s renewed %v after 10 minutes", keys[i], ttl)
		}
	}
	// …one more than an hour after it renews them all.
	now = now.Add(61 * time.Minute)
	if res, err := s.Enqueue(ctx, textArgs(guestPhone, "later")); err != nil || res.Outcome != Queued {
		t.Fatalf("%+v %v", res, err)
	}
	for i, ttl := range ttls() {
		if ttl < full-time.Minute {
			t.Fatalf("%s lives %v after a message an hour later, want %v", keys[i], ttl, full)
		}
	}
	c, err := s.FindConversation(ctx, "hotel", []string{testSender}, res.Conversation)
	if err != nil || c.Messages != 3 || c.LastDirection != "out" || c.LastActivityMS != now.UnixMilli() {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestConversationEventsNameTheAPIStatuses(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	senders := []string{testSender}
	tpl := textArgs(guestPhone, "x")
	tpl.Type, tpl.Content = message.TypeTemplate, []byte(`{"name":"welcome","language":{"code":"en"}}`)
	res, err := s.Enqueue(ctx, tpl)
	if err != nil || res.Outcome != Queued {
		t.Fatal(res, err)
	}
	act := func(action string, f map[string]any) {
		t.Helper()
		c, err := s.FindConversation(ctx, "hotel", senders, res.Conversation)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ConversationAction(ctx, c, action, f); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
	}
	act(ActionAssign, map[string]any{"assigned_to": "agent_7"}) // the guest never wrote: initiated
	inbound(t, s, guestPhone, "wamid.1", "Thanks!", time.Now(), "")
	act(ActionArchive, nil)                                                // active → archived
	inbound(t, s, guestPhone, "wamid.2", "One more thing", time.Now(), "") // reopened: active
	act(ActionClose, nil)                                                  // active → closed
	inbound(t, s, guestPhone, "wamid.3", "Hello?", time.Now(), "")         // a new conversation, active
	ns, err := s.ReadNotices(ctx, message.ShardFor(testSender, 4), "c1", 100, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range ns {
		if n.Kind != "conversation_updated" {
			continue
		}
		var d map[string]any
		if err := json.Unmarshal(n.Data, &d); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%v:%v->%v", d["action"], d["previous_status"], d["status"]))
	}
	want := "[assign:initiated->initiated archive:active->archived reopened:archived->active close:active->closed created:<nil>->active]"
	if fmt.Sprint(got) != want {
		t.Fatalf("events %v\nwant   %s", got, want)
	}
}

// A conversation the accept path made has no hash until its first message
// is filed; meanwhile sends that name it are judged as if it had one.
func TestConversationNotFiledYetIsKnownByItsMessage(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	first, err := s.Enqueue(ctx, textArgs("+14155550301", "hi"))
	if err != nil || first.Outcome != Queued {
		t.Fatalf("%+v %v", first, err)
	}
	sh := message.ShardFor(testSender, 4)
	if rdb.Exists(ctx, s.keys.Conversation(sh, "hotel", first.Conversation)).Val() != 0 {
		t.Fatal("the accept path wrote the conversation's hash")
	}
	name := func(to, tenant string) EnqueueResult {
		t.Helper()
		a := textArgs(to, "again")
		a.TenantID, a.ConversationID = tenant, first.Conversation
		res, err := s.Enqueue(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := name("+14155550302", "hotel"); res.Outcome != ConversationOther {
		t.Fatalf("another guest naming it: %+v", res)
	}
	if res := name("+14155550301", "hotel"); res.Outcome != Queued || res.Conversation != first.Conversation {
		t.Fatalf("its guest naming it: %+v", res)
	}
	// Another tenant's name space is its own: the name is free there.
	if res := name("+14155550302", "resort"); res.Outcome != Queued || res.Conversation != first.Conversation {
		t.Fatalf("another tenant naming it: %+v", res)
	}
	c, err := s.FindConversation(ctx, "hotel", []string{testSender}, first.Conversation)
	if err != nil || c.Messages != 2 || c.Guest != "+14155550301" || c.State != ConvOpen || c.CreatedMS == 0 {
		t.Fatalf("filed: %+v %v", c, err)
	}
	other, err := s.FindConversation(ctx, "resort", []string{testSender}, first.Conversation)
	if err != nil || other.Messages != 1 || other.Guest != "+14155550302" {
		t.Fatalf("the other tenant's: %+v %v", other, err)
	}
}

// Sends that share one call of the enqueue function (group commit) are each
// judged on their own: a guest who just wrote STOP gets none of them, a
// guest in the window gets theirs, and an Idempotency-Key repeated within
// the call queues one message.
func TestSendsSharingACallAreEachJudged(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	inbound(t, s, "+14155550401", "wamid.s1", "hello", time.Now(), "")
	inbound(t, s, "+14155550401", "wamid.s2", "STOP", time.Now(), "out")
	inbound(t, s, "+14155550402", "wamid.s3", "hello", time.Now(), "")
	type sent struct {
		res EnqueueResult
		err error
	}
	const each = 16
	out := make(chan sent, 3*each)
	var start sync.WaitGroup
	start.Add(1)
	for i := range 3 * each {
		go func() {
			start.Wait()
			a := textArgs("+14155550401", "to the one who left")
			switch i % 3 {
			case 1:
				a = textArgs("+14155550402", "to the one who stays")
				a.WindowCheck = true
			case 2:
				a = textArgs("+14155550403", "once")
				a.IdempotencyKey = "same-request"
			}
			res, err := s.Enqueue(ctx, a)
			out <- sent{res, err}
		}()
	}
	start.Done()
	counts := map[Outcome]int{}
	ids := map[string]bool{}
	for range 3 * each {
		r := <-out
		if r.err != nil {
			t.Fatal(r.err)
		}
		counts[r.res.Outcome]++
		if r.res.Outcome == Queued || r.res.Outcome == Duplicate {
			ids[r.res.ID] = true
		}
	}
	if counts[OptedOut] != each || counts[Queued] != each+1 || counts[Duplicate] != each-1 {
		t.Fatalf("outcomes %v: want %d opted out, %d queued, %d duplicates", counts, each, each+1, each-1)
	}
	if len(ids) != each+1 {
		t.Fatalf("%d distinct messages, want %d", len(ids), each+1)
	}
	if n, _ := s.TenantOpen(ctx, "hotel"); n != each+1 {
		t.Fatalf("%d open", n)
	}
}
