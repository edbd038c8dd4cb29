package runtime

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/shockwave-go/shockwave/session"
)

// BenchmarkPresence measures a user's arrival and departure in rooms of
// 10 and 10,000 present users, the Changed call included but not what an
// application does in it (a publish: the fan-out): the cost must not
// grow with the room, and a change allocates only the key's own record.
func BenchmarkPresence(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("present=%d", n), func(b *testing.B) {
			var next string
			p := newPresence(&Presence{
				Who:     func(*session.Session) (string, any) { return next, nil },
				Changed: func(*Room, string, any, bool) {},
			})
			r := &Room{presence: p}
			for i := range n {
				next = "user-" + strconv.Itoa(i)
				p.joined(r, nil)
			}
			next = "newcomer"
			b.ReportAllocs()
			for b.Loop() {
				p.joined(r, nil)
				p.left(r, nil, true)
			}
		})
	}
}
