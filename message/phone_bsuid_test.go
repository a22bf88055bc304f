package message

import "testing"

func TestValidGuest(t *testing.T) {
	for _, c := range []struct {
		s           string
		bsuid, good bool
	}{
		{"BR.1502576394655843", true, true},
		{"US.13491208655302741918", true, true},
		{"US.ENT.11815799212886844830", true, true},
		{"+14155550100", false, true},
		{"br.1502576394655843", false, false},
		{"BR1502576394655843", false, false},
		{"BR.", false, false},
		{"BR.ENT.", false, false},
		{"BR.15025-76394655843", false, false},
		{"BR.15025 76394655843", false, false},
		{"B.1502576394655843", false, false},
		{"BR." + string(make([]byte, 129)), false, false},
		{"14155550100", false, false},
		{"", false, false},
	} {
		if got := ValidBSUID(c.s); got != c.bsuid {
			t.Errorf("ValidBSUID(%q) = %v, want %v", c.s, got, c.bsuid)
		}
		if got := ValidGuest(c.s); got != c.good {
			t.Errorf("ValidGuest(%q) = %v, want %v", c.s, got, c.good)
		}
	}
}

func FuzzValidBSUID(f *testing.F) {
	for _, s := range []string{"BR.1502576394655843", "US.ENT.1", "+14155550100", "ZZ.ENT.ENT.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidBSUID(s) && (ValidE164(s) || len(s) > 3+4+128 || s[2] != '.') {
			t.Fatalf("%q taken as a BSUID", s)
		}
	})
}
