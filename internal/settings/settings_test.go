package settings

import "testing"

func TestNormalizeKeyword(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := NormalizeKeyword(in); got != want {
			t.Fatalf("%q → %q, want %q", in, got, want)
		}
	}
	f("stop", "STOP")
	f("  ¡Stop!! ", "STOP")
	f("no más", "NO MAS")
	f("NO  MAS.", "NO MAS")
	f("opt-out", "OPT OUT")
	f("Désabonner", "DESABONNER")
	f("🙂", "")
	st := Default()
	for text, want := range map[string]string{"STOP": "out", "Alto": "out", "baja": "out", "start": "in", "Alta": "in",
		"please stop sending": "", "stop.": "out", "": ""} {
		if got := st.OptKeyword(text); got != want {
			t.Fatalf("%q: %q, want %q", text, got, want)
		}
	}
}
