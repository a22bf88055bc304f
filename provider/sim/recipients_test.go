package sim

import (
	"encoding/json"
	"testing"
)

func TestPairRateAndRecipientErrors(t *testing.T) {
	s := startSim(t, Config{PairRate: 0.1, PairBurst: 2, RecipientErrors: map[string]int{"15550009999": 131026, "15550008888": 131048}})
	f := func(to string, wantStatus, wantCode int, wantMessage string) {
		t.Helper()
		a := send(t, s, `{"messaging_product":"whatsapp","to":"`+to+`","type":"text","text":{"body":"hi"}}`)
		if a.status != wantStatus || a.err.Code != wantCode || a.err.Message != wantMessage {
			t.Fatalf("send to %s: %d %s, want %d code %d", to, a.status, a.body, wantStatus, wantCode)
		}
	}
	f("+15550001111", 200, 0, "")
	f("+15550001111", 200, 0, "")
	f("+15550001111", 400, 131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit") // burst spent
	f("+15550002222", 200, 0, "")                                                                        // another recipient goes
	f("+15550009999", 400, 131026, "(#131026) Message undeliverable")
	f("15550008888", 400, 131048, "(#131048) Spam rate limit hit")
	if st := s.Stats(); st.PairThrottled != 1 || st.Rejected[131056] != 1 || st.Rejected[131026] != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := s.SetRuntime(Runtime{RecipientErrors: map[string]int{"1": 42}}); err == nil {
		t.Fatal("an unknown error code was accepted")
	}
}

func TestRatesOverHTTP(t *testing.T) {
	s := startSim(t, Config{})
	send(t, s, `{"messaging_product":"whatsapp","to":"15550001111","type":"text","text":{"body":"hi"}}`)
	a := do(t, "GET", s.URL()+"/_sim/rates?phone_number_id="+testPhoneID, "", "", nil)
	var per map[string]int
	if err := json.Unmarshal(a.body, &per); err != nil || len(per) != 1 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	for _, n := range per {
		if n != 1 {
			t.Fatalf("%s", a.body)
		}
	}
}
