package bench

import (
	"math"
	"testing"
	"time"
)

func TestMasterFigures(t *testing.T) {
	a := cpuSample{at: time.Unix(0, 0), masters: map[string]masterSample{
		"m1": {cpu: 1, usec: 1000}, "m2": {cpu: 2, usec: 2000}, "m3": {cpu: 3, usec: 3000}}}
	b := cpuSample{at: time.Unix(10, 0), masters: map[string]masterSample{
		"m1": {cpu: 1.5, usec: 41000}, "m2": {cpu: 2.4, usec: 32000}, "m3": {cpu: 3.3, usec: 33000}}}
	out := map[string]float64{}
	masterFigures(a, b, 10000, "message", out)
	for k, want := range map[string]float64{
		"Redis master m1 CPU per message (µs)":                  50,
		"Redis master m2 share of commands (%)":                 30,
		"Redis masters":                                         3,
		"Redis masters' spread: busiest over an even share (%)": 20, // 40 of an even 33.3
		"Redis masters' spread: idlest under an even share (%)": 10, // 30 of 33.3
	} {
		if got := out[k]; math.Abs(got-want) > 0.01 {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	none := map[string]float64{}
	masterFigures(cpuSample{}, cpuSample{}, 10, "message", none)
	if len(none) != 0 {
		t.Errorf("one server: %v, want no master figures", none)
	}
}
