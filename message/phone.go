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

// ValidBSUID reports whether s is a WhatsApp business-scoped user id (Meta,
// 2026): a two-letter country code, ".", optionally "ENT." (a parent
// BSUID shared by a business's portfolios), then 1 to 128 letters and
// digits, as "BR.1502576394655843". Meta identifies a guest by it when it
// withholds the guest's phone number (usernames).
func ValidBSUID(s string) bool {
	if len(s) < 4 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' || s[2] != '.' {
		return false
	}
	rest := s[3:]
	if len(rest) > 4 && rest[:4] == "ENT." {
		rest = rest[4:]
	}
	if len(rest) == 0 || len(rest) > 128 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// ValidGuest reports whether s identifies a guest: a phone number in E.164
// form, or a business-scoped user id when Meta withheld the number.
func ValidGuest(s string) bool { return ValidE164(s) || ValidBSUID(s) }
