package message

// Type is the kind of content a message carries. The names are Meta's, so
// that Content can be Meta's object of that name verbatim.
type Type string

// Message types. Only TypeText is sent by the skeleton; the others are part
// of the vocabulary so that stored rows and events keep one meaning.
const (
	TypeText        Type = "text"
	TypeTemplate    Type = "template"
	TypeImage       Type = "image"
	TypeDocument    Type = "document"
	TypeAudio       Type = "audio"
	TypeVideo       Type = "video"
	TypeSticker     Type = "sticker"
	TypeInteractive Type = "interactive"
	TypeLocation    Type = "location"
	TypeContacts    Type = "contacts"
	TypeReaction    Type = "reaction"
)

// Lane is the queue a message waits in. The transactional lane of a shard is
// always served before its bulk lane.
type Lane string

// The two lanes.
const (
	LaneTx   Lane = "tx"
	LaneBulk Lane = "bulk"
)

// MaxTextRunes is the longest text body WhatsApp accepts, in characters.
const MaxTextRunes = 4096

// Message is one outbound send as the dispatcher sees it.
type Message struct {
	// ID is wagate's id; it encodes the shard (see NewID).
	ID string
	// TenantID owns the message.
	TenantID string
	// Sender is the business number in E.164 ("+15550001000").
	Sender string
	// Recipient is the guest's number in E.164.
	Recipient string
	// Type names the content.
	Type Type
	// Content is Meta's object for Type, as JSON: for text {"body":…}.
	Content []byte
	// Lane is the queue the message waits in.
	Lane Lane
	// ConversationID and StaffMemberID are the caller's references, kept for
	// the inbox and analytics.
	ConversationID string
	StaffMemberID  string
	// CreatedMS is when the API accepted it, in Unix milliseconds.
	CreatedMS int64
	// Attempt counts provider calls made for it, this one included.
	Attempt int
}

// Reset clears m for reuse from a pool, keeping Content's capacity.
func (m *Message) Reset() {
	c := m.Content[:0]
	*m = Message{}
	m.Content = c
}
