package chatserver

import (
	"slices"
	"testing"
)

func TestRing(t *testing.T) {
	for _, tc := range []struct {
		size, pushed int
		want         []int
	}{
		{3, 0, []int{}},
		{3, 2, []int{1, 2}},
		{3, 3, []int{1, 2, 3}},
		{3, 4, []int{2, 3, 4}},
		{3, 7, []int{5, 6, 7}},
		{1, 5, []int{5}},
		{0, 5, []int{}},
	} {
		r := newRing[int](tc.size)
		for i := 1; i <= tc.pushed; i++ {
			r.push(i)
		}
		if got := r.all(); got == nil || !slices.Equal(got, tc.want) || r.len() != len(tc.want) {
			t.Errorf("ring of %d after %d pushes: %v (len %d), want %v", tc.size, tc.pushed, got, r.len(), tc.want)
		}
	}
}
