package load

import "math/bits"

// histogram counts durations in log-linear buckets: exact below 32 ns,
// then 16 buckets per power of two (about 6 % wide).
type histogram struct {
	counts [1024]uint64
	n      uint64
}

func bucketOf(v int64) int {
	if v < 32 {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - 5
	return 32 + (shift-1)*16 + int(v>>shift) - 16
}

// bucketMid returns the middle of bucket b.
func bucketMid(b int) int64 {
	if b < 32 {
		return int64(b)
	}
	shift := (b-32)/16 + 1
	mant := int64((b-32)%16 + 16)
	return mant<<shift + int64(1)<<shift/2
}

func (h *histogram) record(v int64) {
	h.counts[bucketOf(v)]++
	h.n++
}

// quantile returns the value below which a fraction q of the samples lie.
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return bucketMid(b)
		}
	}
	return 0
}
