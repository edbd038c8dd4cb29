package interop

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/shockwave-go/shockwave/wire"
)

// sizes are the message sizes around the frame length encodings and the
// limits.
var sizes = []int{0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20}

var opcodes = []wire.Opcode{wire.OpText, wire.OpBinary}

// TestMessageSizes sends text and binary messages of every size both ways:
// our side to gws and gws to our side.
func TestMessageSizes(t *testing.T) {
	payloads := map[wire.Opcode]map[int][]byte{}
	for _, op := range opcodes {
		payloads[op] = map[int][]byte{}
		for _, n := range sizes {
			payloads[op][n] = prose(op, n, n)
		}
	}
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			// gws's UTF-8 checks are off: they would only slow the big
			// messages down, and the bytes are compared anyway.
			p := topo.open(t, config{peerNoUTF8: true})
			p.startReader()
			for _, n := range sizes {
				for _, op := range opcodes {
					want := payloads[op][n]
					// A failed step leaves the connection out of step:
					// stop at the first.
					ok := t.Run(fmt.Sprintf("ours-to-gws/%v/%d", op, n), func(t *testing.T) {
						if err := p.ours.WriteMessage(op, want); err != nil {
							t.Fatalf("WriteMessage: %v", err)
						}
						checkMessage(t, recv(t, p.ev.msgs, "gws to receive"), op, want)
					}) && t.Run(fmt.Sprintf("gws-to-ours/%v/%d", op, n), func(t *testing.T) {
						werr := goErr(func() error { return p.peer.WriteMessage(gws.Opcode(op), want) })
						checkMessage(t, recv(t, p.msgs, "our side to receive"), op, want)
						if err := recv(t, werr, "gws to write"); err != nil {
							t.Fatalf("gws WriteMessage: %v", err)
						}
					})
					if !ok {
						return
					}
				}
			}
		})
	}
}

// seqPayload is message i of a sequence: its number and a body whose size
// and bytes vary with i.
func seqPayload(op wire.Opcode, i int) []byte {
	return append([]byte(strconv.Itoa(i)+":"), payload(op, i%700, i)...)
}

// TestSequence sends many messages both ways at once and checks that each
// side receives all of them, intact and in order.
func TestSequence(t *testing.T) {
	const n = 1500
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			p := topo.open(t, config{})
			p.startReader()
			oursDone := goErr(func() error {
				for i := range n {
					op := opcodes[i%2]
					if err := p.ours.WriteMessage(op, seqPayload(op, i)); err != nil {
						return fmt.Errorf("our message %d: %w", i, err)
					}
				}
				return nil
			})
			peerDone := goErr(func() error {
				for i := range n {
					op := opcodes[i%2]
					if err := p.peer.WriteMessage(gws.Opcode(op), seqPayload(op, i)); err != nil {
						return fmt.Errorf("gws message %d: %w", i, err)
					}
				}
				return nil
			})
			var wg sync.WaitGroup
			errs := make(chan error, 2)
			check := func(who string, msgs <-chan message) {
				defer wg.Done()
				for i := range n {
					var m message
					select {
					case m = <-msgs:
					case <-p.stop:
						errs <- fmt.Errorf("%s: stopped at message %d", who, i)
						return
					}
					op := opcodes[i%2]
					if want := seqPayload(op, i); m.op != op || !bytes.Equal(m.data, want) {
						errs <- fmt.Errorf("%s: message %d is %v %.40q, want %v %.40q", who, i, m.op, m.data, op, want)
						return
					}
				}
			}
			wg.Add(2)
			go check("gws", p.ev.msgs)
			go check("ours", p.msgs)
			for _, ch := range []<-chan error{oursDone, peerDone} {
				if err := recv(t, ch, "the writers"); err != nil {
					t.Fatal(err)
				}
			}
			checked := make(chan struct{})
			go func() { wg.Wait(); close(checked) }()
			select {
			case <-checked:
			case <-time.After(waitFor):
				p.halt()
				<-checked
				t.Fatal("timed out waiting for the messages")
			}
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// fragmentCases are messages split into fragments.
var fragmentCases = []struct {
	name  string
	op    wire.Opcode
	frags [][]byte
}{
	{"text-two-halves", wire.OpText, split(payload(wire.OpText, 1000, 1), 500)},
	{"binary-two-halves", wire.OpBinary, split(payload(wire.OpBinary, 1000, 1), 500)},
	{"text-3-byte-char-byte-by-byte", wire.OpText, split([]byte("a€b"), 2, 1, 1)},
	{"text-4-byte-char-split", wire.OpText, split([]byte("x😀y"), 2, 2, 1)},
	{"text-2-byte-char-split", wire.OpText, split([]byte("hé"), 2)},
	{"empty-fragments", wire.OpText, split([]byte("hello"), 0, 5, 0, 0)},
	{"all-empty", wire.OpBinary, [][]byte{{}, {}, {}}},
	{"single-final-fragment", wire.OpBinary, [][]byte{payload(wire.OpBinary, 300, 2)}},
	{"byte-per-fragment", wire.OpBinary, chunks(payload(wire.OpBinary, 512, 3), 1)},
	{"text-byte-per-fragment", wire.OpText, chunks(payload(wire.OpText, 300, 3), 1)},
	{"text-1MiB-in-100000s", wire.OpText, chunks(payload(wire.OpText, 1<<20, 4), 100_000)},
	{"binary-1MiB-in-64KiB", wire.OpBinary, chunks(payload(wire.OpBinary, 1<<20, 5), 64<<10)},
	{"lengths-125-126-65535-65536", wire.OpBinary, split(payload(wire.OpBinary, 200_000, 6), 125, 126, 65535, 65536)},
}

// TestFragmentedFromOurs sends fragmented messages with our WriteFrame,
// with and without a ping between the fragments, and checks that gws
// reassembles them.
func TestFragmentedFromOurs(t *testing.T) {
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			p := topo.open(t, config{})
			p.startReader()
			for _, tc := range fragmentCases {
				want := bytes.Join(tc.frags, nil)
				t.Run(tc.name, func(t *testing.T) {
					if err := writeFragments(p.ours, tc.op, tc.frags, nil); err != nil {
						t.Fatalf("WriteFrame: %v", err)
					}
					checkMessage(t, recv(t, p.ev.msgs, "gws to receive"), tc.op, want)
				})
				if len(tc.frags) < 2 {
					continue
				}
				t.Run(tc.name+"/ping-between", func(t *testing.T) {
					ping := []byte("between " + tc.name)
					between := func() error { return p.ours.Ping(ping) }
					if err := writeFragments(p.ours, tc.op, tc.frags, between); err != nil {
						t.Fatalf("WriteFrame: %v", err)
					}
					if got := recv(t, p.ev.pings, "gws to get the ping"); !bytes.Equal(got, ping) {
						t.Errorf("gws got ping %q, want %q", got, ping)
					}
					checkMessage(t, recv(t, p.ev.msgs, "gws to receive"), tc.op, want)
					if got := recv(t, p.pongs, "our OnPong"); !bytes.Equal(got, ping) {
						t.Errorf("our OnPong got %q, want %q", got, ping)
					}
				})
			}
		})
	}
}

// TestFragmentedFromGWS makes gws send fragmented messages (its WriteFile
// sends one frame per Read of the reader it is given) and checks that our
// side reassembles them. A second variant writes the frames on gws's
// connection directly, with a ping between the fragments, which gws's API
// cannot do.
func TestFragmentedFromGWS(t *testing.T) {
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			p := topo.open(t, config{})
			p.startReader()
			peerIsClient := topo.peerIsClient
			for _, tc := range fragmentCases {
				want := bytes.Join(tc.frags, nil)
				t.Run(tc.name, func(t *testing.T) {
					werr := goErr(func() error {
						return p.peer.WriteFile(gws.Opcode(tc.op), &fragmentReader{frags: tc.frags})
					})
					checkMessage(t, recv(t, p.msgs, "our side to receive"), tc.op, want)
					if err := recv(t, werr, "gws to write"); err != nil {
						t.Fatalf("gws WriteFile: %v", err)
					}
				})
				if len(tc.frags) < 2 {
					continue
				}
				t.Run(tc.name+"/raw-with-ping-between", func(t *testing.T) {
					ping := []byte("between " + tc.name)
					var raw []byte
					for i, f := range tc.frags {
						h := wire.Header{Fin: i == len(tc.frags)-1, Opcode: tc.op, Masked: peerIsClient, Length: int64(len(f))}
						if i > 0 {
							h.Opcode = wire.OpContinuation
						}
						if peerIsClient {
							binary.LittleEndian.PutUint32(h.Key[:], uint32(0x9e3779b9*(i+1)))
						}
						raw = wire.AppendFrame(raw, h, f)
						if i == 0 {
							raw = wire.AppendFrame(raw, wire.Header{Fin: true, Opcode: wire.OpPing, Masked: peerIsClient, Key: h.Key, Length: int64(len(ping))}, ping)
						}
					}
					werr := goErr(func() error { _, err := p.peer.NetConn().Write(raw); return err })
					if got := recv(t, p.pings, "our OnPing"); !bytes.Equal(got, ping) {
						t.Errorf("our OnPing got %q, want %q", got, ping)
					}
					checkMessage(t, recv(t, p.msgs, "our side to receive"), tc.op, want)
					if got := recv(t, p.ev.pongs, "gws to get our pong"); !bytes.Equal(got, ping) {
						t.Errorf("gws got pong %q, want %q", got, ping)
					}
					if err := recv(t, werr, "the raw write"); err != nil {
						t.Fatalf("raw write: %v", err)
					}
				})
			}
		})
	}
}

// concurrentPayload is message seq of writer w: a header naming both and a
// body derived from them, text or binary by seq.
func concurrentPayload(w, seq int) (wire.Opcode, []byte) {
	lens := []int{0, 1, 125, 126, 1000, 65535, 65536, 200_000}
	op := opcodes[(w+seq)%2]
	head := fmt.Sprintf("%02d:%04d:", w, seq)
	return op, append([]byte(head), payload(op, lens[(w*3+seq)%len(lens)], w*1000+seq)...)
}

// TestConcurrentWriters has many goroutines write on our connection at once,
// with our pings and our answers to gws's pings in between, and checks that gws receives every message intact
// and each writer's messages in its order: frames never interleave.
func TestConcurrentWriters(t *testing.T) {
	const writers, perWriter, pings = 8, 40, 20
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			p := topo.open(t, config{})
			p.startReader()
			var wg sync.WaitGroup
			errs := make(chan error, writers+2)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for seq := range perWriter {
						op, b := concurrentPayload(w, seq)
						if err := p.ours.WriteMessage(op, b); err != nil {
							errs <- fmt.Errorf("writer %d message %d: %w", w, seq, err)
							return
						}
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range pings {
					if err := p.ours.Ping([]byte("ping " + strconv.Itoa(i))); err != nil {
						errs <- fmt.Errorf("ping %d: %w", i, err)
						return
					}
				}
			}()

			// gws pings too: our reader's pongs go between the writers'
			// frames.
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range pings {
					if err := p.peer.WritePing([]byte("gws ping " + strconv.Itoa(i))); err != nil {
						errs <- fmt.Errorf("gws ping %d: %w", i, err)
						return
					}
				}
			}()

			next := make([]int, writers)
			for range writers * perWriter {
				m := recv(t, p.ev.msgs, "gws to receive")
				var w, seq int
				if _, err := fmt.Sscanf(string(m.data[:min(len(m.data), 8)]), "%02d:%04d:", &w, &seq); err != nil || w < 0 || w >= writers {
					t.Fatalf("message with a mangled header %.20q", m.data)
				}
				if seq != next[w] {
					t.Fatalf("writer %d: got message %d, want %d", w, seq, next[w])
				}
				next[w]++
				op, want := concurrentPayload(w, seq)
				checkMessage(t, m, op, want)
			}
			for i := range pings {
				want := "ping " + strconv.Itoa(i)
				if got := recv(t, p.ev.pings, "gws to get the pings"); string(got) != want {
					t.Errorf("gws got ping %q, want %q", got, want)
				}
			}
			for i := range pings {
				want := "gws ping " + strconv.Itoa(i)
				if got := recv(t, p.pings, "our OnPing"); string(got) != want {
					t.Errorf("our OnPing got %q, want %q", got, want)
				}
				if got := recv(t, p.ev.pongs, "gws to get our pongs"); string(got) != want {
					t.Errorf("gws got pong %q, want %q", got, want)
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
