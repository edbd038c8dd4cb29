package ratelimit

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name        string
		rate, burst float64
		at          []time.Duration // when each message is sent, from t0
		want        []bool
	}{
		{"burst then refused", 10, 3, []time.Duration{0, 0, 0, 0}, []bool{true, true, true, false}},
		{"refills at the rate", 10, 1, []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}, []bool{true, false, true, true}},
		{"refills no further than the burst", 10, 2, []time.Duration{0, 0, time.Hour, time.Hour, time.Hour}, []bool{true, true, true, true, false}},
		{"a clock going back takes nothing", 1, 1, []time.Duration{time.Second, 0, 2 * time.Second}, []bool{true, false, true}},
	} {
		var b Bucket
		for i, d := range tc.at {
			if got := b.Take(t0.Add(d), tc.rate, tc.burst); got != tc.want[i] {
				t.Errorf("%s: message %d at %v: %v, want %v", tc.name, i, d, got, tc.want[i])
			}
		}
	}
}
