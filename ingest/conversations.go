package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/wagate/wagate/internal/mediakit"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// Conversation statuses the API shows: the stored states plus what the
// guest's window says of an open conversation (seed 000's states).
const (
	convActive    = "active"    // the guest wrote within the last 24 hours
	convInitiated = "initiated" // the business wrote; the guest has not answered
	convExpired   = "expired"   // the guest answered, but the window closed: templates only
	convClosed    = "closed"
	convArchived  = "archived"
)

var convStatuses = []string{convInitiated, convActive, convExpired, convClosed, convArchived}

// convStatus is c's status for the API at now.
func (s *Server) convStatus(c *redis.Conversation, now time.Time) string {
	switch c.State {
	case redis.ConvClosed:
		return convClosed
	case redis.ConvArchived:
		return convArchived
	}
	switch {
	case s.windowOpen(c.WindowFromMS, now):
		return convActive
	case c.LastInboundMS == 0:
		return convInitiated
	}
	return convExpired
}

func (s *Server) windowOpen(fromMS int64, now time.Time) bool {
	return fromMS > 0 && now.UnixMilli() < fromMS+s.store.Config().Window.Milliseconds()
}

// windowJSON is a guest's 24-hour window (seed 001's window-status).
type windowJSON struct {
	WithinWindow     bool     `json:"within_window"`
	WindowExpiresAt  *string  `json:"window_expires_at"`
	HoursRemaining   float64  `json:"hours_remaining"`
	LastGuestMessage *string  `json:"last_guest_message_at"`
	SendableTypes    []string `json:"sendable_types"`
}

func (s *Server) window(fromMS int64, now time.Time) windowJSON {
	w := windowJSON{SendableTypes: []string{"template"}}
	if fromMS == 0 {
		return w
	}
	last := rfc3339(fromMS)
	w.LastGuestMessage = &last
	exp := fromMS + s.store.Config().Window.Milliseconds()
	e := rfc3339(exp)
	w.WindowExpiresAt = &e
	if left := exp - now.UnixMilli(); left > 0 {
		w.WithinWindow = true
		// Rounded down to a tenth, so that "0.0" never claims time left.
		w.HoursRemaining = math.Floor(float64(left)/float64(time.Hour/time.Millisecond)*10) / 10
		w.SendableTypes = []string{"any"}
	}
	return w
}

// conversationJSON is a conversation's summary, in lists and answers.
type conversationJSON struct {
	ID         string `json:"conversation_id"`
	Status     string `json:"status"`
	GuestPhone string `json:"guest_phone"`
	// GuestUserID is the guest's business-scoped user id (Meta's BSUID),
	// null when not known; guest_phone holds it too when Meta withheld
	// the number.
	GuestUserID  *string          `json:"guest_user_id"`
	GuestName    *string          `json:"guest_name"`
	From         string           `json:"from"`
	LastMessage  *lastMessageJSON `json:"last_message"`
	UnreadCount  int              `json:"unread_count"`
	MessageCount int              `json:"message_count"`
	AssignedTo   *string          `json:"assigned_to"`
	// AssignedDepartment is the department the conversation is assigned
	// to (assign's department), null when none.
	AssignedDepartment *string           `json:"assigned_department"`
	ServiceRequestID   *string           `json:"service_request_id"`
	Metadata           map[string]string `json:"metadata"`
	GuestOptedOut      bool              `json:"guest_opted_out"`
	Window             windowJSON        `json:"window"`
	CreatedAt          string            `json:"created_at"`
	UpdatedAt          string            `json:"updated_at"`
	ReadAt             *string           `json:"read_at"`
	Resolution         json.RawMessage   `json:"resolution"`
}

type lastMessageJSON struct {
	Preview   string `json:"preview"`
	Direction string `json:"direction"`
	At        string `json:"at"`
}

func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// direction names "in"/"out" as the API does.
func direction(d string) string {
	if d == "in" {
		return "inbound"
	}
	return "outbound"
}

func (s *Server) conversationSummary(c *redis.Conversation, now time.Time) conversationJSON {
	j := conversationJSON{
		ID: c.ID, Status: s.convStatus(c, now), GuestPhone: c.Guest, GuestUserID: orNull(c.GuestUserID), GuestName: orNull(c.GuestName), From: c.Sender,
		UnreadCount: c.Unread, MessageCount: c.Messages, AssignedTo: orNull(c.AssignedTo), AssignedDepartment: orNull(c.Department),
		ServiceRequestID: orNull(c.ServiceRequest), Metadata: c.Metadata, GuestOptedOut: c.OptedOut,
		Window: s.window(c.WindowFromMS, now), CreatedAt: rfc3339(c.CreatedMS), UpdatedAt: rfc3339(c.LastActivityMS),
		Resolution: json.RawMessage("null"),
	}
	if c.LastDirection != "" {
		j.LastMessage = &lastMessageJSON{Preview: c.LastPreview, Direction: direction(c.LastDirection), At: rfc3339(c.LastActivityMS)}
	}
	if c.ReadMS > 0 {
		j.ReadAt = orNull(rfc3339(c.ReadMS))
	}
	if c.Resolution != "" {
		j.Resolution = resolutionJSON(c.Resolution)
	}
	return j
}

// resolutionJSON shows a stored resolution with its time in the API's form.
func resolutionJSON(raw string) json.RawMessage {
	var r struct {
		Notes    string  `json:"resolution_notes"`
		Rating   *int    `json:"satisfaction_rating"`
		FollowUp *bool   `json:"follow_up_required"`
		By       string  `json:"resolved_by"`
		At       float64 `json:"resolved_at"`
	}
	if json.Unmarshal([]byte(raw), &r) != nil {
		return json.RawMessage("null")
	}
	b, _ := json.Marshal(map[string]any{"resolution_notes": r.Notes, "satisfaction_rating": r.Rating,
		"follow_up_required": r.FollowUp != nil && *r.FollowUp, "resolved_by": orNull(r.By), "resolved_at": rfc3339(int64(r.At))})
	return b
}

// apiCtx bounds the Redis work of one API call.
func (s *Server) apiCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.EnqueueTimeout)
}

// sees reports whether p may see and act on c. Tokens, supervisors and
// admins see all of the tenant's conversations; an agent sees those
// assigned to them, those of their departments, and those assigned to
// nobody (no person, no department).
func (p *Principal) sees(c *redis.Conversation) bool {
	if p.Staff == nil || p.Staff.StaffRole != redis.StaffAgent {
		return true
	}
	switch {
	case c.AssignedTo == p.Staff.StaffID:
		return true
	case c.Department != "" && slices.Contains(p.Staff.Departments, c.Department):
		return true
	}
	return c.AssignedTo == "" && c.Department == ""
}

// conversation finds p's conversation id, answering 404 (or 503) itself
// when it cannot; a conversation p may not see is not found either, so
// that an agent learns nothing of it.
func (s *Server) conversation(ctx *fasthttp.RequestCtx, rctx context.Context, p Principal, id string) *redis.Conversation {
	c := s.findConversation(ctx, rctx, p, id)
	if c != nil && !p.sees(c) {
		writeError(ctx, conversationNotFound(id))
		return nil
	}
	return c
}

func conversationNotFound(id string) *apiError {
	return &apiError{Code: message.CodeConversationNotFound, Message: "No conversation with this id",
		Details:         map[string]any{"conversation_id": id},
		RecoveryOptions: []string{"List the guest's conversations with GET /api/v1/whatsapp/conversations?guest_phone=…"}}
}

// findConversation is conversation without the visibility rule.
func (s *Server) findConversation(ctx *fasthttp.RequestCtx, rctx context.Context, p Principal, id string) *redis.Conversation {
	c, err := s.store.FindConversation(rctx, p.Tenant.ID, p.Tenant.Senders, id)
	switch {
	case errors.Is(err, redis.ErrConversationNotFound):
		writeError(ctx, conversationNotFound(id))
		return nil
	case err != nil:
		s.log.Warn("conversation", "err", err)
		writeError(ctx, unavailable("read"))
		return nil
	}
	return c
}

// handleConversationList serves GET /api/v1/whatsapp/conversations
// ?guest_phone=&status=&assigned_to=&department=&q=&limit=&cursor= (seeds
// 001, 002): assigned_to=none lists those assigned to no person, =me (a
// session) the member's own; q finds a guest by a piece of name or number;
// an agent's list holds only what they see.
func (s *Server) handleConversationList(ctx *fasthttp.RequestCtx, p Principal, _ params) {
	q := ctx.QueryArgs()
	var f redis.ConversationFilter
	if g := string(q.Peek("guest_phone")); g != "" {
		if !message.ValidGuest(g) {
			writeError(ctx, &apiError{Code: message.CodeInvalidPhoneNumber, Message: "guest_phone is neither a phone number in E.164 form nor a WhatsApp user id (BSUID)",
				Details:         map[string]any{"field": "guest_phone", "value": g},
				RecoveryOptions: []string{"Give the number in E.164 form, e.g. %2B14155550123 in a query string"}})
			return
		}
		f.Guest = g
	}
	now := time.Now()
	if st := string(q.Peek("status")); st != "" {
		want := map[string]bool{}
		for _, v := range strings.Split(st, ",") {
			if !slices.Contains(convStatuses, v) {
				writeError(ctx, invalidRequest("status must be one of initiated, active, expired, closed, archived (comma-separated)",
					map[string]any{"field": "status", "allowed": convStatuses}))
				return
			}
			want[v] = true
		}
		f.Match = func(c *redis.Conversation) bool { return want[s.convStatus(c, now)] }
	}
	var unassigned bool
	switch a := string(q.Peek("assigned_to")); {
	case a == "none":
		unassigned = true
	case a == "me" && p.Staff != nil:
		f.AssignedTo = p.Staff.StaffID
	default:
		f.AssignedTo = a
	}
	dept := ""
	if v := string(q.Peek("department")); v != "" {
		if dept = normalizeDepartment(v); dept == "" {
			writeError(ctx, invalidRequest("department must be a department name of 1 to 40 characters", map[string]any{"field": "department"}))
			return
		}
	}
	// q finds guests by a piece of their name (any case) or number.
	search := strings.ToLower(strings.TrimSpace(string(q.Peek("q"))))
	if utf8.RuneCountInString(search) > 100 {
		writeError(ctx, invalidRequest("q takes at most 100 characters", map[string]any{"field": "q"}))
		return
	}
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, search)
	if unassigned || dept != "" || search != "" || (p.Staff != nil && p.Staff.StaffRole == redis.StaffAgent) {
		status := f.Match
		f.Match = func(c *redis.Conversation) bool {
			return (!unassigned || c.AssignedTo == "") && (dept == "" || c.Department == dept) && p.sees(c) &&
				(search == "" || strings.Contains(strings.ToLower(c.GuestName), search) ||
					(len(digits) >= 3 && strings.Contains(c.Guest, digits))) &&
				(status == nil || status(c))
		}
	}
	limit, e := queryInt(q, "limit", 20, 1, 100)
	if e != nil {
		writeError(ctx, e)
		return
	}
	var cur *redis.ConversationCursor
	if c := string(q.Peek("cursor")); c != "" {
		cc, err := redis.ParseConversationCursor(c)
		if err != nil {
			writeError(ctx, invalidRequest("cursor must be the next_cursor of a previous page", map[string]any{"field": "cursor"}))
			return
		}
		cur = &cc
	}
	rctx, cancel := s.apiCtx()
	defer cancel()
	list, next, err := s.store.ListConversations(rctx, p.Tenant.ID, p.Tenant.Senders, f, limit, cur)
	if err != nil {
		s.log.Warn("list conversations", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	out := struct {
		Conversations []conversationJSON `json:"conversations"`
		NextCursor    *string            `json:"next_cursor"`
	}{Conversations: make([]conversationJSON, 0, len(list))}
	for _, c := range list {
		out.Conversations = append(out.Conversations, s.conversationSummary(c, now))
	}
	if next != nil {
		out.NextCursor = orNull(next.String())
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// queryInt reads an integer query parameter within [lo, hi].
func queryInt(q *fasthttp.Args, name string, def, lo, hi int) (int, *apiError) {
	v := q.Peek(name)
	if len(v) == 0 {
		return def, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < lo || n > hi {
		return 0, invalidRequest(name+" must be a whole number from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi),
			map[string]any{"field": name})
	}
	return n, nil
}

// messageJSON is one message of a conversation's history.
type messageJSON struct {
	ID            string          `json:"message_id"`
	Direction     string          `json:"direction"`
	Type          string          `json:"type"`
	Preview       string          `json:"preview"`
	Content       json.RawMessage `json:"content,omitempty"`
	Timestamp     string          `json:"timestamp"`
	Status        string          `json:"status,omitempty"`
	StaffMemberID *string         `json:"staff_member_id,omitempty"`
	SentAt        *string         `json:"sent_at,omitempty"`
	DeliveredAt   *string         `json:"delivered_at,omitempty"`
	ReadAt        *string         `json:"read_at,omitempty"`
	FailureReason *string         `json:"failure_reason,omitempty"`
	ReplyTo       *string         `json:"reply_to,omitempty"`
	ReplyID       *string         `json:"reply_id,omitempty"`
	// Media is a guest's attachment, with its status and URL
	// (inboundmedia.go, mediakit.Media.Link); Contacts the cards a guest
	// shared.
	Media *mediakit.Attachment `json:"media,omitempty"`
	mediakit.Access
	Contacts json.RawMessage `json:"contacts,omitempty"`
}

func timeOrNil(ms int64) *string {
	if ms == 0 {
		return nil
	}
	t := rfc3339(ms)
	return &t
}

func historyJSON(e *redis.HistoryEntry) messageJSON {
	m := messageJSON{ID: e.ID, Direction: direction(e.Direction), Type: e.Type, Preview: e.Preview, Timestamp: rfc3339(e.AtMS)}
	if e.Direction == "in" {
		m.ReplyTo, m.ReplyID = orNull(e.ReplyTo), orNull(e.ReplyID)
		m.Media = historyMedia(e)
		if json.Valid(e.Contacts) {
			m.Contacts = e.Contacts
		}
		return m
	}
	m.StaffMemberID = orNull(e.StaffMemberID)
	st := e.State
	if st == nil {
		// Its state outlived the state TTL; ClickHouse keeps its history.
		m.Status = "unknown"
		return m
	}
	m.Status = string(st.Status)
	if json.Valid(st.Content) {
		m.Content = st.Content
	}
	m.SentAt, m.DeliveredAt, m.ReadAt = timeOrNil(st.SentMS), timeOrNil(st.DeliveredMS), timeOrNil(st.ReadMS)
	if r := failureReason(st.Status, st.ErrorTitle); r != "" {
		m.FailureReason = &r
	}
	return m
}

// handleConversationGet serves GET /api/v1/whatsapp/conversations/{id}
// [?limit=&before=]: the summary, participants, metadata and messages
// (the newest limit, oldest first; before pages back).
func (s *Server) handleConversationGet(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	q := ctx.QueryArgs()
	limit, e := queryInt(q, "limit", 50, 1, 200)
	if e != nil {
		writeError(ctx, e)
		return
	}
	before := int64(-1)
	if v := q.Peek("before"); len(v) > 0 {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 1 {
			writeError(ctx, invalidRequest("before must be the next_before of a previous page", map[string]any{"field": "before"}))
			return
		}
		before = n
	}
	rctx, cancel := s.apiCtx()
	defer cancel()
	c := s.conversation(ctx, rctx, p, ps[0])
	if c == nil {
		return
	}
	hist, next, err := s.store.ConversationHistory(rctx, c, limit, before)
	if err != nil {
		s.log.Warn("conversation history", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	type participant struct {
		Role  string  `json:"role"`
		Phone *string `json:"phone,omitempty"`
		Name  *string `json:"name,omitempty"`
		ID    *string `json:"id,omitempty"`
	}
	out := struct {
		conversationJSON
		Participants []participant  `json:"participants"`
		Messages     []messageJSON  `json:"messages"`
		NextBefore   *int64         `json:"next_before"`
		Guest        map[string]any `json:"guest"`
	}{conversationJSON: s.conversationSummary(c, time.Now()), Messages: make([]messageJSON, 0, len(hist))}
	out.Participants = append(out.Participants,
		participant{Role: "guest", Phone: &c.Guest, Name: orNull(c.GuestName)},
		participant{Role: "business", Phone: &c.Sender})
	if c.AssignedTo != "" {
		out.Participants = append(out.Participants, participant{Role: "agent", ID: &c.AssignedTo})
	}
	var staff []string
	for i := range hist {
		out.Messages = append(out.Messages, historyJSON(&hist[i]))
		if sm := hist[i].StaffMemberID; sm != "" && sm != c.AssignedTo && !slices.Contains(staff, sm) {
			staff = append(staff, sm)
			out.Participants = append(out.Participants, participant{Role: "staff", ID: &staff[len(staff)-1]})
		}
	}
	if err := s.linkHistory(rctx, c.TenantID, hist, out.Messages); err != nil {
		s.log.Warn("conversation media", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	if next >= 0 {
		out.NextBefore = &next
	}
	out.Guest = map[string]any{"phone": c.Guest, "name": orNull(c.GuestName), "opted_out": c.OptedOut}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// handleWindowStatus serves GET
// /api/v1/whatsapp/conversations/{id}/window-status (seed 001).
func (s *Server) handleWindowStatus(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	rctx, cancel := s.apiCtx()
	defer cancel()
	c := s.conversation(ctx, rctx, p, ps[0])
	if c == nil {
		return
	}
	now := time.Now()
	out := struct {
		ID         string `json:"conversation_id"`
		GuestPhone string `json:"guest_phone"`
		From       string `json:"from"`
		Status     string `json:"status"`
		windowJSON
		GuestOptedOut bool `json:"guest_opted_out"`
	}{ID: c.ID, GuestPhone: c.Guest, From: c.Sender, Status: s.convStatus(c, now), windowJSON: s.window(c.WindowFromMS, now),
		GuestOptedOut: c.OptedOut}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// handleConversationAnalytics serves GET
// /api/v1/whatsapp/conversations/{id}/analytics: delivery and read rates,
// response times both ways and the satisfaction score, over the
// conversation's history.
func (s *Server) handleConversationAnalytics(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	rctx, cancel := s.apiCtx()
	defer cancel()
	c := s.conversation(ctx, rctx, p, ps[0])
	if c == nil {
		return
	}
	hist, _, err := s.store.ConversationHistory(rctx, c, 5000, -1)
	if err != nil {
		s.log.Warn("conversation history", "err", err)
		writeError(ctx, unavailable("read"))
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, analyze(c, hist))
}

// analytics is a conversation's delivery and response figures.
type analytics struct {
	ID       string `json:"conversation_id"`
	Messages struct {
		Total    int `json:"total"`
		Outbound int `json:"outbound"`
		Inbound  int `json:"inbound"`
	} `json:"messages"`
	Delivery struct {
		// Counts of outbound messages by where they are now.
		Pending   int `json:"pending"`
		Sent      int `json:"sent"`
		Delivered int `json:"delivered"`
		Read      int `json:"read"`
		Failed    int `json:"failed"`
		// DeliveryRate is delivered (or read) over what the provider
		// settled (sent, delivered, read, failed); ReadRate is read over
		// delivered. Null before there is anything to divide.
		DeliveryRate *float64 `json:"delivery_rate"`
		ReadRate     *float64 `json:"read_rate"`
	} `json:"delivery"`
	ResponseTimes struct {
		// Staff: from a guest's message to the next business message.
		StaffFirstResponseSeconds *float64 `json:"staff_first_response_seconds"`
		StaffAverageSeconds       *float64 `json:"staff_average_seconds"`
		StaffMedianSeconds        *float64 `json:"staff_median_seconds"`
		GuestAverageSeconds       *float64 `json:"guest_average_seconds"`
		// StaffResponses and GuestResponses count the answers measured.
		StaffResponses int `json:"staff_responses"`
		GuestResponses int `json:"guest_responses"`
	} `json:"response_times"`
	Satisfaction struct {
		Rating           *int  `json:"satisfaction_rating"`
		FollowUpRequired *bool `json:"follow_up_required"`
		Resolved         bool  `json:"resolved"`
	} `json:"satisfaction"`
}

func ratio(a, b int) *float64 {
	if b == 0 {
		return nil
	}
	r := math.Round(float64(a)/float64(b)*10000) / 10000
	return &r
}

func seconds(ms int64) float64 { return math.Round(float64(ms)/100) / 10 }

func analyze(c *redis.Conversation, hist []redis.HistoryEntry) analytics {
	var a analytics
	a.ID = c.ID
	var staff, guest []int64
	var waitingIn, waitingOut int64 // the first unanswered message of each side
	for i := range hist {
		e := &hist[i]
		a.Messages.Total++
		if e.Direction == "in" {
			a.Messages.Inbound++
			if waitingIn == 0 {
				waitingIn = e.AtMS
			}
			if waitingOut != 0 {
				guest = append(guest, e.AtMS-waitingOut)
				waitingOut = 0
			}
			continue
		}
		a.Messages.Outbound++
		if waitingIn != 0 {
			staff = append(staff, e.AtMS-waitingIn)
			waitingIn = 0
		}
		if waitingOut == 0 {
			waitingOut = e.AtMS
		}
		st := e.State
		switch {
		case st == nil:
		case st.Status == message.StatusRead:
			a.Delivery.Read++
		case st.Status == message.StatusDelivered:
			a.Delivery.Delivered++
		case st.Status == message.StatusSent || st.Status == message.StatusFallback:
			a.Delivery.Sent++
		case st.Status == message.StatusFailed || st.Status == message.StatusExpired:
			a.Delivery.Failed++
		case st.Status != message.StatusCanceled:
			a.Delivery.Pending++
		}
	}
	d := &a.Delivery
	reached := d.Delivered + d.Read
	d.DeliveryRate = ratio(reached, d.Sent+reached+d.Failed)
	d.ReadRate = ratio(d.Read, reached)
	rt := &a.ResponseTimes
	rt.StaffResponses, rt.GuestResponses = len(staff), len(guest)
	if len(staff) > 0 {
		first := seconds(staff[0])
		rt.StaffFirstResponseSeconds = &first
		avg := seconds(sum(staff) / int64(len(staff)))
		rt.StaffAverageSeconds = &avg
		sorted := slices.Clone(staff)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		med := seconds(sorted[len(sorted)/2])
		rt.StaffMedianSeconds = &med
	}
	if len(guest) > 0 {
		avg := seconds(sum(guest) / int64(len(guest)))
		rt.GuestAverageSeconds = &avg
	}
	if c.Resolution != "" {
		var r struct {
			Rating   *int  `json:"satisfaction_rating"`
			FollowUp *bool `json:"follow_up_required"`
		}
		if json.Unmarshal([]byte(c.Resolution), &r) == nil {
			a.Satisfaction.Rating, a.Satisfaction.FollowUpRequired, a.Satisfaction.Resolved = r.Rating, r.FollowUp, true
		}
	}
	return a
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// convActions are the POST /conversations/{id}/{action} actions.
var convActions = []string{redis.ActionResolve, redis.ActionAssign, redis.ActionLink, redis.ActionRead,
	redis.ActionArchive, redis.ActionClose, redis.ActionReopen}

// handleConversationAction serves POST
// /api/v1/whatsapp/conversations/{id}/{action}: resolve (seed 001), assign,
// link, read (seed 002), archive, close and reopen.
func (s *Server) handleConversationAction(ctx *fasthttp.RequestCtx, p Principal, ps params) {
	action := ps[1]
	if action == actionTyping {
		s.handleTyping(ctx, p, ps[0])
		return
	}
	if !slices.Contains(convActions, action) {
		writeError(ctx, &apiError{Code: message.CodeNotFound, Message: "No such conversation action: " + quote(action),
			Details: map[string]any{"action": action, "allowed": append(slices.Clone(convActions), actionTyping)}})
		return
	}
	fields, e := decodeAction(action, ctx.PostBody())
	if e != nil {
		writeError(ctx, e)
		return
	}
	rctx, cancel := s.apiCtx()
	defer cancel()
	c := s.conversation(ctx, rctx, p, ps[0])
	if c == nil {
		return
	}
	if e := s.actionStaff(rctx, p, action, fields); e != nil {
		writeError(ctx, e)
		return
	}
	prev, _, err := s.store.ConversationAction(rctx, c, action, fields)
	switch {
	case errors.Is(err, redis.ErrConversationNotFound):
		writeError(ctx, &apiError{Code: message.CodeConversationNotFound, Message: "No conversation with this id",
			Details: map[string]any{"conversation_id": c.ID}})
		return
	case errors.Is(err, redis.ErrConversationClosed):
		writeError(ctx, &apiError{Code: message.CodeConversationClosed, Message: "The conversation is closed: reopen it first",
			Details: map[string]any{"conversation_id": c.ID, "action": action}, RecoveryOptions: []string{"POST /api/v1/whatsapp/conversations/" + c.ID + "/reopen"}})
		return
	case err != nil:
		s.log.Warn("conversation action", "err", err)
		writeError(ctx, unavailable("changed"))
		return
	}
	if action == redis.ActionRead {
		// The guest sees blue ticks once staff read the conversation.
		s.receipts.markLatest(c, false)
	}
	now := time.Now()
	prevStatus := s.convStatus(&redis.Conversation{State: prev, LastInboundMS: c.LastInboundMS, WindowFromMS: c.WindowFromMS}, now)
	// Read again as it is now, even if p may no longer see it (an agent
	// who handed it to a colleague).
	if c = s.findConversation(ctx, rctx, p, c.ID); c == nil {
		return
	}
	out := struct {
		conversationJSON
		Action         string `json:"action"`
		PreviousStatus string `json:"previous_status"`
	}{s.conversationSummary(c, now), action, prevStatus}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// decodeAction checks an action's body and returns its fields for the
// store; actions without fields take an empty body or {}.
func decodeAction(action string, body []byte) (map[string]any, *apiError) {
	empty := len(bytes.TrimSpace(body)) == 0
	text := func(field, v string, max int, required bool) *apiError {
		if required && strings.TrimSpace(v) == "" {
			return invalidRequest(field+" is required", map[string]any{"field": field})
		}
		if utf8.RuneCountInString(v) > max {
			return invalidRequest(field+" is longer than "+strconv.Itoa(max)+" characters", map[string]any{"field": field, "max_length": max})
		}
		return nil
	}
	switch action {
	case redis.ActionResolve:
		var r struct {
			Notes    string `json:"resolution_notes"`
			Rating   *int   `json:"satisfaction_rating"`
			FollowUp *bool  `json:"follow_up_required"`
			By       string `json:"resolved_by"`
		}
		if !empty {
			if e := decodeJSON(body, &r); e != nil {
				return nil, e
			}
		}
		if e := text("resolution_notes", r.Notes, 4000, false); e != nil {
			return nil, e
		}
		if e := text("resolved_by", r.By, maxRefLen, false); e != nil {
			return nil, e
		}
		f := map[string]any{"resolution_notes": r.Notes, "follow_up_required": r.FollowUp != nil && *r.FollowUp, "resolved_by": r.By}
		if r.Rating != nil {
			if *r.Rating < 1 || *r.Rating > 5 {
				return nil, invalidRequest("satisfaction_rating must be a whole number from 1 to 5", map[string]any{"field": "satisfaction_rating"})
			}
			f["satisfaction_rating"] = *r.Rating
		}
		return f, nil
	case redis.ActionAssign:
		var r struct {
			AssignedTo json.RawMessage `json:"assigned_to"`
			Department json.RawMessage `json:"department"`
		}
		if e := decodeJSON(body, &r); e != nil {
			return nil, e
		}
		to, toGiven, e := nullableString("assigned_to", r.AssignedTo)
		if e != nil {
			return nil, e
		}
		dept, deptGiven, e := nullableString("department", r.Department)
		if e != nil {
			return nil, e
		}
		if !toGiven && !deptGiven {
			return nil, invalidRequest("assigned_to is required (a staff member id, or null to unassign), or department",
				map[string]any{"field": "assigned_to"})
		}
		if to != "" && strings.TrimSpace(to) == "" {
			return nil, invalidRequest(`assigned_to is blank: give an agent id, or "" or null to unassign`, map[string]any{"field": "assigned_to"})
		}
		if e := text("assigned_to", to, maxRefLen, false); e != nil {
			return nil, e
		}
		f := map[string]any{}
		if toGiven {
			f["assigned_to"] = to
		}
		if deptGiven {
			if dept != "" {
				if dept = normalizeDepartment(dept); dept == "" {
					return nil, invalidRequest("department must be a department name of 1 to 40 characters (e.g. "+departmentExample+"), or null",
						map[string]any{"field": "department", "max_length": maxDepartmentLen})
				}
			}
			f["department"] = dept
			if !toGiven && dept != "" {
				// Handed to a department: to its queue, no person.
				f["assigned_to"] = ""
			}
		}
		return f, nil
	case redis.ActionLink:
		var r struct {
			ServiceRequestID string `json:"service_request_id"`
		}
		if e := decodeJSON(body, &r); e != nil {
			return nil, e
		}
		if e := text("service_request_id", r.ServiceRequestID, maxRefLen, true); e != nil {
			return nil, e
		}
		return map[string]any{"service_request_id": r.ServiceRequestID}, nil
	}
	if !empty {
		var r struct{}
		if e := decodeJSON(body, &r); e != nil {
			return nil, e
		}
	}
	return nil, nil
}

// nullableString reads an optional field that may be a string or null:
// its value ("" for null) and whether it was given.
func nullableString(field string, raw json.RawMessage) (string, bool, *apiError) {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 {
		return "", false, nil
	}
	var out string
	if string(v) != "null" && json.Unmarshal(v, &out) != nil {
		return "", false, invalidRequest(field+" must be a string or null", map[string]any{"field": field})
	}
	return out, true, nil
}

// actionStaff checks and completes an action's fields for p: an
// assignment names an enabled staff member (checkStaffRef) and records
// who made it; a signed-in member resolves as themselves by default.
func (s *Server) actionStaff(rctx context.Context, p Principal, action string, fields map[string]any) *apiError {
	switch action {
	case redis.ActionAssign:
		if to, _ := fields["assigned_to"].(string); to != "" {
			if e := s.checkStaffRef(rctx, p, "assigned_to", to); e != nil {
				return e
			}
		}
		if p.Staff != nil {
			fields["assigned_by"] = p.Staff.StaffID
		}
	case redis.ActionResolve:
		if by, _ := fields["resolved_by"].(string); by == "" && p.Staff != nil {
			fields["resolved_by"] = p.Staff.StaffID
		}
	}
	return nil
}
