package codec

import (
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// benchValues are the values of the codec benchmarks: a chat message and
// a game snapshot of 50 entities.
var benchValues = []struct {
	name string
	v    any
	new  func() any // a fresh value to decode into
}{
	{"chat", chatMessage(), func() any { return new(Chat) }},
	{"snapshot50", snapshot(50), func() any { return new(Snapshot) }},
	// The same with an omitempty field: the msgpack library allocates
	// twice per struct that has one.
	{"snapshot50-omitempty", snapshotOmit(50), func() any { return new(SnapshotOmit) }},
}

// SnapshotOmit is Snapshot with omitempty names.
type SnapshotOmit struct {
	Tick     uint64       `json:"tick"`
	Entities []EntityOmit `json:"ents"`
}

// EntityOmit is Entity with an omitempty name.
type EntityOmit struct {
	ID    uint32  `json:"id"`
	Kind  uint8   `json:"k"`
	X     float32 `json:"x"`
	Y     float32 `json:"y"`
	VX    float32 `json:"vx"`
	VY    float32 `json:"vy"`
	Angle float32 `json:"a"`
	HP    uint16  `json:"hp"`
	Name  string  `json:"n,omitempty"`
}

func snapshotOmit(n int) SnapshotOmit {
	s := snapshot(n)
	o := SnapshotOmit{Tick: s.Tick, Entities: make([]EntityOmit, n)}
	for i, e := range s.Entities {
		o.Entities[i] = EntityOmit(e)
	}
	return o
}

// BenchmarkCodec measures encoding a value into a reused buffer and
// decoding it back into a reused value (whose strings and slices the
// decoder allocates anew), per codec. wire-B is the size of the encoding.
func BenchmarkCodec(b *testing.B) {
	for _, bv := range benchValues {
		for _, c := range []Codec{JSON, MsgPack} {
			enc, err := c.Append(nil, bv.v)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(bv.name+"/"+c.Name()+"/encode", func(b *testing.B) {
				buf := make([]byte, 0, 4096)
				b.ReportAllocs()
				for b.Loop() {
					buf, _ = c.Append(buf[:0], bv.v)
				}
				b.ReportMetric(float64(len(enc)), "wire-B")
			})
			b.Run(bv.name+"/"+c.Name()+"/decode", func(b *testing.B) {
				dst := bv.new()
				b.ReportAllocs()
				for b.Loop() {
					if err := c.Decode(enc, dst); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(enc)), "wire-B")
			})
			b.Run(bv.name+"/"+c.Name()+"/encode+decode", func(b *testing.B) {
				buf := make([]byte, 0, 4096)
				dst := bv.new()
				b.ReportAllocs()
				for b.Loop() {
					buf, _ = c.Append(buf[:0], bv.v)
					if err := c.Decode(buf, dst); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(enc)), "wire-B")
			})
		}
	}
}

// BenchmarkEnvelope measures what the Router does with a message besides
// the network: encode an event envelope around a value, parse the envelope
// and decode its payload into the handler's type.
func BenchmarkEnvelope(b *testing.B) {
	for _, bv := range benchValues {
		for _, c := range []envelopeCodec{jsonCodec{}, msgpackCodec{}} {
			h := outHeader{event: "chat.send", room: "lobby", id: 12345, hasID: true}
			b.Run(bv.name+"/"+c.Name(), func(b *testing.B) {
				buf := make([]byte, 0, 4096)
				dst := bv.new()
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if buf, err = c.appendEnvelope(buf[:0], h, bv.v); err != nil {
						b.Fatal(err)
					}
					in, err := c.parseEnvelope(buf)
					if err != nil {
						b.Fatal(err)
					}
					if err := c.decodeParsed(in.data, dst); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(buf)), "wire-B")
			})
		}
	}
}

// BenchmarkPublish measures Router.Publish of a chat message to a room of
// 10 and 1,000 members over loopback, until every member has read it:
// members all speaking JSON, or half JSON and half MessagePack (two
// encodings, two shared frames); baseline is runtime's Room.Broadcast of
// the same envelope, encoded beforehand. The members' reads share the machine's
// cores and count in the time; allocs/op counts the whole process and must
// not grow with the room. The publisher lets no member fall more than
// window messages behind, well within the members' mailboxes.
func BenchmarkPublish(b *testing.B) {
	const window = 64
	for _, mix := range []string{"json", "mixed", "baseline"} {
		for _, members := range []int{10, 1000} {
			b.Run(fmt.Sprintf("%s/members=%d", mix, members), func(b *testing.B) {
				r := NewRouter(JSON)
				rt, url := serve(b, r)
				r.HandleRooms(rt, Rooms{})
				conns := make([]*wire.Conn, members)
				for i := range conns {
					var c Codec = JSON
					if mix == "mixed" && i%2 == 1 {
						c = MsgPack
					}
					cl := dialCodec(b, url, c)
					cl.request(env{E: EventJoin, R: "lobby", I: 1})
					conns[i] = cl.conn
				}
				room, ok := rt.Room("lobby")
				if !ok || room.Len() != members {
					b.Fatalf("room of %d", room.Len())
				}
				msg := chatMessage()
				pre, _ := jsonCodec{}.appendEnvelope(nil, outHeader{event: "chat.msg", room: "lobby"}, msg)
				// received[i] counts what member i has read, one
				// cache line each.
				type counter struct {
					n atomic.Int64
					_ [56]byte
				}
				received := make([]counter, members)
				// slowest returns the count of the member furthest behind.
				slowest := func() int64 {
					low := received[0].n.Load()
					for i := range received {
						low = min(low, received[i].n.Load())
					}
					return low
				}
				var wg sync.WaitGroup
				run := func(rounds int) {
					for i := range received {
						received[i].n.Store(0)
					}
					wg.Add(len(conns))
					for i, c := range conns {
						go func() {
							defer wg.Done()
							for range rounds {
								if _, _, err := c.ReadMessage(); err != nil {
									b.Error(err)
									return
								}
								received[i].n.Add(1)
							}
						}()
					}
					low := int64(0)
					for i := range rounds {
						for low < int64(i-window) {
							if low = slowest(); low < int64(i-window) {
								goruntime.Gosched()
							}
						}
						if mix == "baseline" {
							room.Broadcast(wire.OpText, pre)
						} else if n, err := r.Publish(room, "chat.msg", msg); n != members || err != nil {
							b.Fatalf("Publish: %d %v", n, err)
						}
					}
					wg.Wait()
				}
				run(window) // warm the pools
				b.ReportAllocs()
				b.ResetTimer()
				run(b.N)
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(members), "ns/member")
			})
		}
	}
}

// BenchmarkEmit measures Router.Emit of a chat message to one session
// whose client reads it, over loopback, against session.Send of the same
// bytes pre-encoded.
func BenchmarkEmit(b *testing.B) {
	for _, c := range []Codec{JSON, MsgPack} {
		b.Run(c.Name(), func(b *testing.B) {
			r := NewRouter(JSON)
			got := make(chan *session.Session, 1)
			On(r, "hello", func(s *session.Session, _ struct{}) error { got <- s; return nil })
			_, url := serve(b, r, runtime.WithMessageRate(-1, 0))
			cl := dialCodec(b, url, c)
			cl.send(env{E: "hello"})
			s := <-got
			msg := chatMessage()
			b.ReportAllocs()
			for b.Loop() {
				if err := r.Emit(s, "chat.msg", msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := cl.conn.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRequest measures a request through the Router over loopback: the
// client writes a chat message as a request, the server parses the
// envelope, decodes the payload, runs the handler and encodes the reply
// (the same message back), and the client reads it.
func BenchmarkRequest(b *testing.B) {
	for _, c := range []Codec{JSON, MsgPack} {
		b.Run(c.Name(), func(b *testing.B) {
			r := NewRouter(JSON)
			Handle(r, "chat.send", func(s *session.Session, m Chat) (Chat, error) { return m, nil })
			_, url := serve(b, r, runtime.WithMessageRate(-1, 0)) // the default rate (1,000 a second) would pace it
			cl := dialCodec(b, url, c)
			req, err := c.Append(nil, env{E: "chat.send", I: 1, D: chatMessage()})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := cl.conn.WriteMessage(c.Opcode(), req); err != nil {
					b.Fatal(err)
				}
				if _, _, err := cl.conn.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(req)), "wire-B")
		})
	}
}
