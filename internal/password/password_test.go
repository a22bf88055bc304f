package password

import (
	"errors"
	"strings"
	"testing"
)

func TestHashVerifies(t *testing.T) {
	for _, p := range []Params{Fast(), Default()} {
		enc, err := Hash("dev-password", p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(enc, "$argon2id$v=19$m=") || strings.Contains(enc, "dev-password") {
			t.Fatalf("encoded %q", enc)
		}
		f := func(pw string, want bool) {
			t.Helper()
			ok, err := Verify(pw, enc)
			if err != nil || ok != want {
				t.Fatalf("Verify(%q) = %v, %v; want %v", pw, ok, err, want)
			}
		}
		f("dev-password", true)
		f("dev-passwore", false)
		f("dev-password ", false)
		f("", false)
		f("DEV-PASSWORD", false)
		// A fresh salt each time: two hashes of one password differ.
		enc2, _ := Hash("dev-password", p)
		if enc2 == enc {
			t.Fatal("two hashes of one password are equal: no salt")
		}
	}
}

func TestHashRefusesTooSmallParams(t *testing.T) {
	for _, p := range []Params{{}, {MemoryKiB: 64, Time: 0, Threads: 1}, {MemoryKiB: 4, Time: 1, Threads: 1}, {MemoryKiB: 64, Time: 1}} {
		if _, err := Hash("x", p); err == nil {
			t.Errorf("Hash with %+v: no error", p)
		}
	}
}

func TestVerifyRefusesMalformedHashes(t *testing.T) {
	good, _ := Hash("secret-password", Fast())
	parts := strings.Split(good, "$")
	for name, enc := range map[string]string{
		"empty":            "",
		"bcrypt":           "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":          strings.Replace(good, "argon2id", "argon2i", 1),
		"old version":      strings.Replace(good, "v=19", "v=16", 1),
		"no salt":          strings.Join([]string{"", parts[1], parts[2], parts[3], "", parts[5]}, "$"),
		"unknown param":    strings.Replace(good, "t=1", "x=1", 1),
		"huge memory":      strings.Replace(good, "m=64", "m=99999999", 1),
		"zero passes":      strings.Replace(good, "t=1", "t=0", 1),
		"bad base64":       good[:len(good)-4] + "!!!!",
		"one field short":  strings.Join(parts[:5], "$"),
		"param not number": strings.Replace(good, "p=1", "p=one", 1),
	} {
		if ok, err := Verify("secret-password", enc); ok || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Verify = %v, %v; want ErrMalformed", name, ok, err)
		}
	}
}
