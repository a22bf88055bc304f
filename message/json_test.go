package message

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzAppendJSONString: whatever the string, the literal is valid JSON
// that reads back as the string (invalid UTF-8 as U+FFFD, as encoding/json
// does), and holds no raw U+2028/U+2029.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `a "quoted" \ text`, "line\nbreak\r\ttab\x00\x1f", "\u2028\u2029", "\xff\xfe bad", "é😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendJSONString([]byte("x"), s)
		if out[0] != 'x' {
			t.Fatalf("dst overwritten: %q", out)
		}
		var back string
		if err := json.Unmarshal(out[1:], &back); err != nil {
			t.Fatalf("%q gives invalid JSON %q: %v", s, out[1:], err)
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if !utf8.ValidString(s) {
			// encoding/json replaces each invalid byte, not each run.
			var b strings.Builder
			for i := 0; i < len(s); {
				r, size := utf8.DecodeRuneInString(s[i:])
				b.WriteRune(r)
				i += size
			}
			want = b.String()
		}
		if back != want {
			t.Fatalf("%q reads back as %q, want %q", s, back, want)
		}
		if strings.ContainsAny(string(out), "\u2028\u2029") {
			t.Fatalf("raw line separator in %q", out)
		}
	})
}

// TestAppendJSONStringDoesNotAllocate: the API's answers are written into
// reused buffers; escaping costs no allocation.
func TestAppendJSONStringDoesNotAllocate(t *testing.T) {
	out := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(1000, func() {
		out = AppendJSONString(out[:0], "msg_01m7yb4j2d3c59g3vj0tbha_15")
		out = AppendJSONString(out, "a \"quoted\" text\n\u2028 with \xff bad bytes")
	}); n != 0 {
		t.Errorf("AppendJSONString allocates %v times, want 0", n)
	}
}
