// Package message is wagate's shared vocabulary: messages, their statuses,
// status events and the API's error codes. It imports nothing of the project
// so that every other package can speak it.
package message

import "strings"

// Status is where a message is in its life. The string form is what the API
// shows, what Redis stores and what ClickHouse records.
type Status string

// The statuses of a message. See Rank for the order in which they may follow
// each other.
const (
	// StatusQueued: accepted and durable in Redis, waiting for a worker.
	StatusQueued Status = "queued"
	// StatusScheduled: accepted with a send_at in the future.
	StatusScheduled Status = "scheduled"
	// StatusSending: a worker is calling the provider. Not an event: it marks
	// the window in which a crash may lead to a second provider send.
	StatusSending Status = "sending"
	// StatusSent: the provider accepted the message.
	StatusSent Status = "sent"
	// StatusDelivered: the provider reports it reached the recipient's device.
	StatusDelivered Status = "delivered"
	// StatusRead: the recipient opened it.
	StatusRead Status = "read"
	// StatusFailed: the provider refused it, or reported a failure later.
	StatusFailed Status = "failed"
	// StatusExpired: its validity passed before it could be sent.
	StatusExpired Status = "expired"
	// StatusCanceled: canceled through the API before it was sent.
	StatusCanceled Status = "canceled"
	// StatusFallback: sent on another channel (SMS or a secondary provider).
	StatusFallback Status = "fallback"
)

// Rank orders statuses for forward-only updates: a status may replace the
// current one only if its rank is higher. Delivery evidence outranks a
// failure report, so a late "failed" never hides a "delivered", while a
// "failed" after "sent" does count. Unknown statuses rank -1 and never apply.
//
// store/redis/status.lua carries the same table; a test keeps them equal.
func Rank(s Status) int {
	switch s {
	case StatusQueued, StatusScheduled:
		return 0
	case StatusSending:
		return 1
	case StatusSent, StatusFallback:
		return 2
	case StatusFailed, StatusExpired, StatusCanceled:
		return 3
	case StatusDelivered:
		return 4
	case StatusRead:
		return 5
	}
	return -1
}

// Terminal reports whether the dispatcher is done with a message in status s:
// nothing more will be sent for it (provider statuses may still follow).
func Terminal(s Status) bool {
	switch s {
	case StatusSent, StatusDelivered, StatusRead, StatusFailed, StatusExpired, StatusCanceled, StatusFallback:
		return true
	}
	return false
}

// Known reports whether s is one of the statuses above.
func Known(s Status) bool { return Rank(s) >= 0 }

// DeliveryStatus reads a provider's delivery status (sent, delivered,
// read, failed, in any case) as wagate's; false for any other (accepted,
// deleted…), which wagate does not record.
func DeliveryStatus(s string) (Status, bool) {
	switch strings.ToLower(s) {
	case "sent":
		return StatusSent, true
	case "delivered":
		return StatusDelivered, true
	case "read":
		return StatusRead, true
	case "failed":
		return StatusFailed, true
	}
	return "", false
}
