package message

import (
	"strings"
	"testing"
)

func TestSingleEmoji(t *testing.T) {
	f := func(s string, want bool) {
		t.Helper()
		if got := SingleEmoji(s); got != want {
			t.Errorf("SingleEmoji(%q) = %v, want %v", s, got, want)
		}
	}
	for _, s := range []string{"👍", "❤", "❤️", "👍🏿", "🇯🇵", "1️⃣", "#⃣", "🏳️‍🌈", "👩🏻‍❤️‍💋‍👨🏼", "🏃🏻‍♀️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "👁️‍🗨️", "😀", "🫠", "©️"} {
		f(s, true)
	}
	for _, s := range []string{"", "a", "1", "👍👍", " 👍", "👍 ", "🇯", "🇯🇵🇯🇵", "🏻", "👍\u200d", "\u200d👍",
		"👨‍👩‍👧‍👦‍👦", "🏴󠁧󠁢󠁳󠁣󠁴", "ab", "é", strings.Repeat("👍", 40)} {
		f(s, false)
	}
}
