package runtime_test

import (
	"bufio"
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	swrt "github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// BenchmarkEcho measures one message through the runtime and back: the
// client's write, the session's read, OnMessage, Send, the inline drain and
// the client's read. Allocation budget on the steady path: 0.
func BenchmarkEcho(b *testing.B) {
	for _, n := range []int{32, 1024, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			_, url := start(b, echo, swrt.WithMessageRate(-1, 0)) // a client's round trips, as fast as they go
			c := dial(b, url)
			p := make([]byte, n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.WriteMessage(wire.OpBinary, p); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEchoCompressed is BenchmarkEcho of chat JSON and of a large
// text, side by side without compression and with permessage-deflate
// (without context takeover) whose client compresses every message, as
// browsers do: what compression costs the process (server and client)
// per message, in cpu-ns/op, and saves on the wire, in wire-B/op (what
// the server sent). Allocation budget on the steady path: 0.
func BenchmarkEchoCompressed(b *testing.B) {
	for _, n := range []int{64, 1024, 64 << 10} {
		msg := chatJSON(n, 0)
		for _, mode := range []wire.CompressionMode{wire.CompressionDisabled, wire.CompressionNoContextTakeover} {
			b.Run(fmt.Sprintf("%dB/%v", n, mode), func(b *testing.B) {
				_, url := start(b, echo, swrt.WithMessageRate(-1, 0), swrt.WithCompression(mode, wire.DefaultCompressionThreshold))
				var read atomic.Int64
				c := dialCountingWith(b, url, wire.Options{Compression: mode, CompressionThreshold: -1}, &read)
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				echoOnce := func() {
					if err := c.WriteMessage(wire.OpText, msg); err != nil {
						b.Fatal(err)
					}
					if _, _, err := c.ReadMessage(); err != nil {
						b.Fatal(err)
					}
				}
				echoOnce()
				read.Store(0)
				cpu := cpuTime()
				for b.Loop() {
					echoOnce()
				}
				b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(read.Load())/float64(b.N), "wire-B/op")
			})
		}
	}
}

// BenchmarkBroadcast measures Room.Broadcast of a 128-byte message to 10
// and 1,000 members over loopback, until every member has read it. The
// clients' reads are part of the cost (they share the machine's cores);
// allocs/op counts the whole process and should not grow with the room.
// The broadcaster keeps at most window messages in flight, well within the
// members' mailboxes, so the default backpressure policy never triggers.
func BenchmarkBroadcast(b *testing.B) {
	for _, members := range []int{10, 1000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			benchRoom(b, members, nil, func(room *swrt.Room, msg []byte) { room.Broadcast(wire.OpBinary, msg) })
		})
	}
}

// BenchmarkPublish is Room.Publish of 128 bytes to a room of 1,000
// members, in a room that keeps no history and in one that keeps the last
// 100 messages, side by side: keeping history must cost no allocation
// per publish and little time (the goal: at most 1.2x).
func BenchmarkPublish(b *testing.B) {
	for _, size := range []int{0, 100} {
		b.Run(fmt.Sprintf("history=%d/members=1000", size), func(b *testing.B) {
			msg := &benchMsg{}
			benchRoom(b, 1000, []swrt.Option{swrt.WithRoomHistory(func(string) swrt.History { return swrt.History{Size: size} })},
				func(room *swrt.Room, p []byte) {
					msg.p = p
					if _, _, err := room.Publish(context.Background(), nil, msg); err != nil {
						b.Fatal(err)
					}
				})
		})
	}
}

// BenchmarkBroadcastCompressed is Room.Broadcast of a 1 KiB chat JSON
// message to 1,000 members, side by side without compression and with
// permessage-deflate offered by every member: the message is compressed
// once for the room, so the cost per delivery stays close (the goal:
// within 1.3x in cpu-ns/delivery), and neither allocates per broadcast.
// The members read the frames without inflating them, so that the
// process's CPU is mostly the server's.
func BenchmarkBroadcastCompressed(b *testing.B) {
	msg := chatJSON(1024, 0)
	for _, mode := range []wire.CompressionMode{wire.CompressionDisabled, wire.CompressionNoContextTakeover} {
		b.Run(fmt.Sprintf("%v/members=1000", mode), func(b *testing.B) {
			opts := []swrt.Option{swrt.WithCompression(mode, wire.DefaultCompressionThreshold)}
			benchRoomWith(b, 1000, opts, frameSkipper, msg, func(room *swrt.Room, msg []byte) { room.Broadcast(wire.OpText, msg) })
		})
	}
}

// frameSkipper dials url offering permessage-deflate and returns a
// reader of the server's frames that skips their payloads: a member that
// costs little and the same, compressed or not.
func frameSkipper(b testing.TB, url string) func() error {
	rc, _ := rawDeflate(b, url, "client_no_context_takeover")
	br := bufio.NewReader(rc.nc)
	return func() error {
		for k := 2; ; k++ {
			b, err := br.Peek(k)
			if err != nil {
				return err
			}
			h, n, err := wire.ParseHeader(b)
			if err != nil {
				return err
			}
			if n > 0 {
				_, err = br.Discard(n + int(h.Length))
				return err
			}
		}
	}
}

// benchMsg is an Encoder of one variant whose frame is p, position aside.
type benchMsg struct{ p []byte }

func (m *benchMsg) Variants() int                { return 1 }
func (m *benchMsg) Variant(*session.Session) int { return 0 }
func (m *benchMsg) Encode(swrt.Position, int) (*session.Frame, error) {
	return session.NewFrame(wire.OpBinary, m.p), nil
}

// benchRoom runs send, which sends a 128-byte message to the room
// "lobby", b.N times, with members clients reading, at most window
// messages in flight.
func benchRoom(b *testing.B, members int, opts []swrt.Option, send func(room *swrt.Room, msg []byte)) {
	benchRoomWith(b, members, opts, wireReader, make([]byte, 128), send)
}

// wireReader dials url with wire.Dial and returns a reader of its
// messages.
func wireReader(b testing.TB, url string) func() error {
	c := dial(b, url)
	return func() error { _, _, err := c.ReadMessage(); return err }
}

// benchRoomWith is benchRoom with members dialed by member, which
// returns a function reading one message, sending msg.
func benchRoomWith(b *testing.B, members int, opts []swrt.Option, member func(testing.TB, string) func() error, msg []byte, send func(room *swrt.Room, msg []byte)) {
	const window = 64
	var ref rtRef
	rt, url := start(b, roomHandler{rt: &ref}, opts...)
	ref.p.Store(rt)
	conns := make([]func() error, members)
	for i := range conns {
		conns[i] = member(b, url)
	}
	waitFor(b, func() bool { r, ok := rt.Room("lobby"); return ok && r.Len() == members })
	room, _ := rt.Room("lobby")
	var received atomic.Int64
	var wg sync.WaitGroup
	readAll := func(rounds int) {
		wg.Add(len(conns))
		for _, read := range conns {
			go func() {
				defer wg.Done()
				for range rounds {
					if err := read(); err != nil {
						b.Error(err)
						return
					}
					received.Add(1)
				}
			}()
		}
	}
	run := func(rounds int) {
		received.Store(0)
		readAll(rounds)
		for i := range rounds {
			for received.Load() < int64((i-window)*members) {
				runtime.Gosched()
			}
			send(room, msg)
		}
		wg.Wait()
	}
	run(window) // warm the pools
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	run(b.N)
	if cpu := cpuTime() - cpu; cpu > 0 {
		// The process's CPU, the members' reads included, per message a
		// member got: wall time on two shared cores says less.
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(members), "cpu-ns/delivery")
	}
}
