package message

// WhatsApp's limits of interactive messages, in characters (PROVIDERS.md,
// Meta's spec): what the API checks before queueing and the simulator
// checks as Meta does.
const (
	MaxBodyText       = 1024
	MaxHeaderText     = 60
	MaxFooterText     = 60
	MaxButtons        = 3
	MaxButtonID       = 256
	MaxButtonTitle    = 20
	MaxListButton     = 20
	MaxSections       = 10
	MaxListRows       = 10
	MaxSectionTitle   = 24
	MaxRowID          = 200
	MaxRowTitle       = 24
	MaxRowDescription = 72
	MaxCTADisplayText = 20
	MaxContacts       = 5
)

// maxEmojiParts bounds the emoji a ZWJ sequence joins: the longest
// sequences WhatsApp shows (families, couples with skin tones) join four.
const maxEmojiParts = 4

// SingleEmoji reports whether s is exactly one emoji, as UTS #51 builds
// them: a flag (two regional indicators), a keycap (0-9 # * with U+20E3),
// or up to four pictographs joined by ZWJ, each with an optional variation
// selector, skin tone and tag sequence (subdivision flags).
func SingleEmoji(s string) bool {
	var rs [32]rune
	n := 0
	for _, r := range s {
		if n == len(rs) {
			return false
		}
		rs[n] = r
		n++
	}
	if n == 0 {
		return false
	}
	r := rs[:n]
	if isRegionalIndicator(r[0]) {
		return n == 2 && isRegionalIndicator(r[1])
	}
	if r[0] == '#' || r[0] == '*' || r[0] >= '0' && r[0] <= '9' {
		return n == 3 && r[1] == 0xFE0F && r[2] == 0x20E3 || n == 2 && r[1] == 0x20E3
	}
	parts := 0
	for i := 0; ; {
		if i >= n || !isPictograph(r[i]) {
			return false
		}
		i++
		if i < n && (r[i] == 0xFE0F || r[i] == 0xFE0E) {
			i++
		}
		if i < n && r[i] >= 0x1F3FB && r[i] <= 0x1F3FF {
			i++
		}
		if i < n && r[i] >= 0xE0020 && r[i] <= 0xE007E {
			for i < n && r[i] >= 0xE0020 && r[i] <= 0xE007E {
				i++
			}
			if i >= n || r[i] != 0xE007F {
				return false
			}
			i++
		}
		parts++
		if i == n {
			return parts <= maxEmojiParts
		}
		if r[i] != 0x200D {
			return false
		}
		i++
	}
}

func isRegionalIndicator(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }

// pictographs are the ranges of Unicode's Extended_Pictographic property,
// merged where the gaps hold no letters.
var pictographs = [...][2]rune{
	{0x00A9, 0x00A9}, {0x00AE, 0x00AE}, {0x203C, 0x203C}, {0x2049, 0x2049}, {0x2122, 0x2122},
	{0x2139, 0x2139}, {0x2194, 0x2199}, {0x21A9, 0x21AA}, {0x231A, 0x231B}, {0x2328, 0x2328},
	{0x2388, 0x2388}, {0x23CF, 0x23CF}, {0x23E9, 0x23F3}, {0x23F8, 0x23FA}, {0x24C2, 0x24C2},
	{0x25AA, 0x25AB}, {0x25B6, 0x25B6}, {0x25C0, 0x25C0}, {0x25FB, 0x25FE}, {0x2600, 0x27BF},
	{0x2934, 0x2935}, {0x2B05, 0x2B07}, {0x2B1B, 0x2B1C}, {0x2B50, 0x2B50}, {0x2B55, 0x2B55},
	{0x3030, 0x3030}, {0x303D, 0x303D}, {0x3297, 0x3297}, {0x3299, 0x3299},
	{0x1F000, 0x1F1E5}, {0x1F200, 0x1F3FA}, {0x1F400, 0x1FAFF}, {0x1FC00, 0x1FFFD},
}

func isPictograph(r rune) bool {
	for _, p := range pictographs {
		if r < p[0] {
			return false
		}
		if r <= p[1] {
			return true
		}
	}
	return false
}
