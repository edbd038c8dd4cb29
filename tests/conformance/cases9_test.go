package conformance

import (
	"fmt"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// maxMessage is the message size limit of the server under test, and the
// size of Autobahn's largest messages.
const maxMessage = 16 << 20

// largeWait bounds the waits of the 9.x cases, which move up to 16 MiB each
// way (slowly under the race detector).
const largeWait = 2 * time.Minute

// cases9 is "Limits/Performance". Autobahn only checks the type and length
// of each echo; we check the content too. Messages of 8 MiB and more are
// Large (left out by -short).
func cases9() []Case {
	const (
		textPat = "BAsd7&jh23"
		binPat  = "\x00\xfe\x23\xfa\xf0"
	)
	large := func(c Case) Case {
		c.Wait = largeWait
		return c
	}
	var cs []Case
	// 9.1, 9.2: one frame, 64 KiB to 16 MiB.
	for g, k := range []struct {
		op  wire.Opcode
		pat string
		ev  func(payload) event
	}{{wire.OpText, textPat, msgText}, {wire.OpBinary, binPat, msgBinary}} {
		for i, n := range []int{64 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20} {
			p := rep(k.pat, n)
			c := large(echoCase(fmt.Sprintf("9.%d.%d", g+1, i+1), fmt.Sprintf("%s message of %s", k.op, size(n)),
				steps(sendF(fr(k.op, true, p))), k.ev(p)))
			c.Large = n >= 8<<20
			cs = append(cs, c)
		}
	}
	// 9.3, 9.4: 4 MiB in fragments of 64 bytes to 4 MiB.
	for g, k := range []struct {
		op wire.Opcode
		ev func(payload) event
	}{{wire.OpText, msgText}, {wire.OpBinary, msgBinary}} {
		for i, n := range []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20} {
			pat := "*"
			if g == 1 && i == 0 {
				pat = "\xfe" // as Autobahn's 9.4.1; its 9.4.2-9.4.9 send '*'
			}
			p := rep(pat, 4<<20)
			cs = append(cs, large(echoCase(fmt.Sprintf("9.%d.%d", g+3, i+1),
				fmt.Sprintf("%s message of 4 MiB in fragments of %s", k.op, size(n)),
				steps(message{op: k.op, p: p, frag: n}), k.ev(p))))
		}
	}
	// 9.5, 9.6: 1 MiB in one frame, written in chops of 64 to 2048 bytes.
	for g, k := range []struct {
		op  wire.Opcode
		pat string
		ev  func(payload) event
	}{{wire.OpText, textPat, msgText}, {wire.OpBinary, binPat, msgBinary}} {
		for i, n := range []int{64, 128, 256, 512, 1024, 2048} {
			p := rep(k.pat, 1<<20)
			cs = append(cs, large(echoCase(fmt.Sprintf("9.%d.%d", g+5, i+1),
				fmt.Sprintf("%s message of 1 MiB written in chops of %d bytes", k.op, n),
				steps(send{frames: []frame{fr(k.op, true, p)}, chop: n}), k.ev(p))))
		}
	}
	// 9.7, 9.8: 1000 round trips of messages of 0 to 4096 bytes.
	for g, k := range []struct {
		op  wire.Opcode
		pat string
		ev  func(payload) event
	}{{wire.OpText, "*", msgText}, {wire.OpBinary, "\xfe", msgBinary}} {
		for i, n := range []int{0, 16, 64, 256, 1024, 4096} {
			const count = 1000
			p := rep(k.pat, n)
			want := make([]event, count)
			for j := range want {
				want[j] = k.ev(p)
			}
			cs = append(cs, large(echoCase(fmt.Sprintf("9.%d.%d", g+7, i+1),
				fmt.Sprintf("%d %s messages of %d bytes, one after the other's echo", count, k.op, n),
				steps(roundTrips{op: k.op, p: p, count: count}), want...)))
		}
	}
	return cs
}

func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
