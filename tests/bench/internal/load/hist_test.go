package load

import "testing"

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for v := int64(1); v <= 100000; v++ {
		h.record(v * 1000) // 1 µs .. 100 ms, uniform
	}
	tests := []struct {
		q    float64
		want int64
	}{{0.5, 50e6}, {0.99, 99e6}, {0, 1000}}
	for _, tt := range tests {
		got := h.quantile(tt.q)
		if d := float64(got-tt.want) / float64(tt.want); d < -0.07 || d > 0.07 {
			t.Errorf("quantile(%v) = %d, want %d within 7%%", tt.q, got, tt.want)
		}
	}
}

func TestBucketsAreMonotonic(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<22; v += 1 + v/64 {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d < %d", v, b, prev)
		}
		if mid := bucketMid(b); v >= 32 && (mid < v/2 || mid > 2*v) {
			t.Fatalf("bucketMid(bucketOf(%d)) = %d", v, mid)
		}
		prev = b
	}
}
