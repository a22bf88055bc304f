package message

// Event is one status transition of one message: a row of ClickHouse's
// message_events. Events are written by the Redis scripts that change a
// message's state, in the same atomic step.
type Event struct {
	// Shard and StreamID locate the event in its shard's events stream; the
	// loader acknowledges it by them once ClickHouse has it.
	Shard    int
	StreamID string
	// Index is the event's place in its stream entry: a call that records
	// many messages writes their events as one entry (0: the first, or
	// the entry's only one). StreamID and Index name the event.
	Index int

	MessageID string
	TenantID  string
	Sender    string
	Recipient string
	Status    Status
	// AtMS is when the transition happened (the provider's time for provider
	// statuses), in Unix milliseconds.
	AtMS int64
	// Channel is "whatsapp", or "sms" for a fallback send.
	Channel string
	// Provider names the adapter that carried the message ("meta", "sim"…).
	Provider          string
	ProviderMessageID string
	Type              Type
	Lane              Lane
	// Attempt is the provider call this event belongs to (0 before any).
	Attempt int
	// ErrorCode and ErrorTitle are the provider's, for failures.
	ErrorCode  int
	ErrorTitle string
	// PricingCategory, Billable and ProviderConversationID (Meta's
	// billing conversation) come from the provider's status webhooks.
	PricingCategory string
	Billable        bool
	// PricingModel ("PMP") and PricingType ("regular",
	// "free_customer_service", "free_entry_point") complete Meta's pricing
	// object.
	PricingModel           string
	PricingType            string
	ProviderConversationID string
	// Campaign and TemplateName are the bulk campaign the message is of
	// and the template it is, for delivery analytics by campaign and
	// template ("" when none).
	Campaign     string
	TemplateName string
	// ConversationID and StaffMemberID are the caller's references from
	// the send request.
	ConversationID string
	StaffMemberID  string
}
