package bufpool

import "testing"

func TestGetCap(t *testing.T) {
	for _, tc := range []struct{ n, cap int }{
		{0, 512},
		{1, 512},
		{512, 512},
		{513, 4 << 10},
		{64 << 10, 64 << 10},
		{64<<10 + 14, 256 << 10},
		{MaxPooled, MaxPooled},
		{MaxPooled + 1, MaxPooled + 1},
	} {
		if got := Cap(tc.n); got != tc.cap {
			t.Errorf("Cap(%d) = %d, want %d", tc.n, got, tc.cap)
		}
		bp := Get(tc.n)
		if len(*bp) != tc.n || cap(*bp) != tc.cap {
			t.Errorf("Get(%d): len %d, cap %d; want %d, %d", tc.n, len(*bp), cap(*bp), tc.n, tc.cap)
		}
		Put(bp)
	}
}

func TestPutDropsOddSizes(t *testing.T) {
	b := make([]byte, 100, 1000) // not a class size: dropped, not pooled
	Put(&b)
	Put(nil)
	for range 10 {
		if bp := Get(1000); cap(*bp) != 4<<10 {
			t.Fatalf("Get(1000) returned a buffer of %d", cap(*bp))
		}
	}
}
