// Package sendargs builds the parts of a queued send that the API and the
// inbound role (its opt-out and opt-in confirmations) must make alike:
// Meta's text object and the fingerprint that tells an Idempotency-Key
// reused for a different message apart.
package sendargs

import (
	"hash/fnv"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/store/redis"
)

// AppendText appends Meta's text object for body to dst, with
// preview_url when preview is set.
func AppendText(dst []byte, body string, preview bool) []byte {
	dst = append(dst, `{"body":`...)
	dst = message.AppendJSONString(dst, body)
	if preview {
		return append(dst, `,"preview_url":true}`...)
	}
	return append(dst, '}')
}

// Fingerprint identifies what a send asks for, so that an
// Idempotency-Key reused for a different message is told apart.
func Fingerprint(a *redis.EnqueueArgs) uint64 {
	h := fnv.New64a()
	for _, s := range [...]string{a.Sender, a.Recipient, string(a.Type), a.ConversationID, a.StaffMemberID,
		string(a.Lane), a.Campaign, a.FallbackText} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(a.Content)
	return h.Sum64()
}
