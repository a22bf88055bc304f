package main

import (
	"maps"
	"strings"
	"testing"
)

// `wagate dev -rates` sets the first numbers' rates, the others keep -rate.
func TestDevRatesSetTheFirstNumbers(t *testing.T) {
	for _, tc := range []struct {
		list string
		want map[string]float64
		err  string
	}{
		{"", nil, ""},
		{"1000,80", map[string]float64{"+15550001000": 1000, "+15550001001": 80}, ""},
		{" 250 ", map[string]float64{"+15550001000": 250}, ""},
		{"1000,80,20,5", nil, "names 4 numbers; -numbers gives 3"},
		{"1000,abc", nil, "want positive"},
		{"0", nil, "want positive"},
		{"-5", nil, "want positive"},
	} {
		t.Run(tc.list, func(t *testing.T) {
			fc := devConfig("http://127.0.0.1:1", devNumbers(3), 80)
			err := devRates(fc, tc.list)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("devRates(%q) = %v, want an error saying %q", tc.list, err, tc.err)
				}
				return
			}
			if err != nil || !maps.Equal(fc.Rates.PerNumber, tc.want) || fc.Rates.DefaultMPS != 80 {
				t.Fatalf("devRates(%q) = %v: rates %+v, want %v and 80 for the others", tc.list, err, fc.Rates, tc.want)
			}
		})
	}
}
