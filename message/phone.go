package message

// ValidE164 reports whether s is a phone number in E.164 form: "+", a country
// code that does not start with 0, and 7 to 15 digits in all. Spaces, dashes,
// brackets and a missing "+" are refused rather than guessed at, because a
// guess that picks the wrong country sends a hotel's message to a stranger.
func ValidE164(s string) bool {
	if len(s) < 8 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ValidE164Bytes is ValidE164 for a byte slice, without converting it.
func ValidE164Bytes(b []byte) bool {
	if len(b) < 8 || len(b) > 16 || b[0] != '+' || b[1] == '0' {
		return false
	}
	for i := 1; i < len(b); i++ {
		if b[i] < '0' || b[i] > '9' {
			return false
		}
	}
	return true
}

// ShardFor maps a sender number to one of n shards (FNV-1a), so that all of a
// number's messages share one shard and one rate limiter.
func ShardFor(sender string, n int) int {
	if n <= 1 {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(sender); i++ {
		h ^= uint32(sender[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}
