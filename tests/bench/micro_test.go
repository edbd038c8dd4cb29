package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"
	"github.com/lxzan/gws"
	"go.uber.org/goleak"

	"github.com/shockwave-go/shockwave/tests/bench/internal/peers"
	"github.com/shockwave-go/shockwave/tests/bench/internal/wsraw"
	"github.com/shockwave-go/shockwave/wire"
)

// The micro-benchmarks drive every library's bench server (the same code
// as the load matrix's, see internal/peers) with the same lean raw client
// over loopback TCP, in one process, so that ns/op, B/op and allocs/op
// differ only by the server library. Allocations count the whole process;
// the client allocates nothing per operation. Names follow benchstat's
// key=value convention:
//
//	go test -run '^$' -bench . -count 6 ./tests/bench > new.txt
//	benchstat -col /lib new.txt

// microLibs are the libraries of the micro-benchmarks.
var microLibs = []string{"shockwave", "gws", "gorilla", "coder"}

// leakCheck fails the benchmark if goroutines it started outlive it. Call
// it first: its cleanup runs last, after the server and clients are gone.
func leakCheck(b *testing.B) {
	b.Helper()
	ignore := goleak.IgnoreCurrent()
	b.Cleanup(func() {
		if err := goleak.Find(ignore); err != nil {
			b.Error(err)
		}
	})
}

func dialPeer(b *testing.B, r *peers.Running, path string, n int) []*wsraw.Conn {
	b.Helper()
	conns := make([]*wsraw.Conn, n)
	b.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	for i := range conns {
		c, err := wsraw.Dial(r.Addr, path, 0)
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = c
	}
	return conns
}

// eachLib runs f as sub-benchmark lib=<lib>/<sub> for every library.
func eachLib(b *testing.B, sub string, f func(b *testing.B, lib string)) {
	for _, lib := range microLibs {
		name := "lib=" + lib
		if sub != "" {
			name += "/" + sub
		}
		b.Run(name, func(b *testing.B) {
			leakCheck(b)
			f(b, lib)
		})
	}
}

// echoOnce writes frame and checks that the echo is want.
func echoOnce(b *testing.B, c *wsraw.Conn, frame []byte, want wire.Opcode, payload []byte) {
	if err := c.Write(frame); err != nil {
		b.Fatal(err)
	}
	op, p, err := c.ReadMessage()
	if err != nil {
		b.Fatal(err)
	}
	if op != want || !bytes.Equal(p, payload) {
		b.Fatalf("got %v of %d bytes, want %v of %d", op, len(p), want, len(payload))
	}
}

// BenchmarkEcho: one message to /echo and back, one connection.
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{32, 1024} {
		eachLib(b, fmt.Sprintf("size=%d", size), func(b *testing.B, lib string) {
			r := startPeer(b, lib)
			c := dialPeer(b, r, "/echo", 1)[0]
			payload := wsraw.Pattern(size)
			frame := wsraw.AppendMessage(nil, wire.OpBinary, payload, 0)
			echoOnce(b, c, frame, wire.OpBinary, payload) // warm up
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				echoOnce(b, c, frame, wire.OpBinary, payload)
			}
		})
	}
}

// BenchmarkLargeMessage: a 1 MiB message to /echo and back.
func BenchmarkLargeMessage(b *testing.B) {
	eachLib(b, "size=1MiB", func(b *testing.B, lib string) {
		r := startPeer(b, lib)
		c := dialPeer(b, r, "/echo", 1)[0]
		payload := wsraw.Pattern(1 << 20)
		frame := wsraw.AppendMessage(nil, wire.OpBinary, payload, 0)
		echoOnce(b, c, frame, wire.OpBinary, payload)
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			echoOnce(b, c, frame, wire.OpBinary, payload)
		}
	})
}

// BenchmarkPingPong: a ping with 8 bytes of payload and its pong.
func BenchmarkPingPong(b *testing.B) {
	eachLib(b, "", func(b *testing.B, lib string) {
		r := startPeer(b, lib)
		c := dialPeer(b, r, "/echo", 1)[0]
		payload := []byte("pingpong")
		frame := wsraw.AppendMessage(nil, wire.OpPing, payload, 0)
		echoOnce(b, c, frame, wire.OpPong, payload)
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			echoOnce(b, c, frame, wire.OpPong, payload)
		}
	})
}

// BenchmarkThroughput: one-way, 1 KiB messages to /sink, written 64 at a
// time; the clock stops when the server has read them all.
func BenchmarkThroughput(b *testing.B) {
	const size, batch = 1024, 64
	eachLib(b, fmt.Sprintf("size=%d", size), func(b *testing.B, lib string) {
		r := startPeer(b, lib)
		c := dialPeer(b, r, "/sink", 1)[0]
		one := wsraw.AppendMessage(nil, wire.OpBinary, wsraw.Pattern(size), 0)
		frames := bytes.Repeat(one, batch)
		send := func(total int) {
			start := r.Server.Sunk()
			for n := total; n > 0; {
				k := min(n, batch)
				if err := c.Write(frames[:k*len(one)]); err != nil {
					b.Fatal(err)
				}
				n -= k
			}
			waitUntil(b, func() bool { return r.Server.Sunk() >= start+int64(total) })
		}
		send(batch)
		b.SetBytes(size)
		b.ReportAllocs()
		b.ResetTimer()
		send(b.N)
	})
}

// BenchmarkConcurrent: 1 KiB echoes over 100 connections at once, one
// goroutine each; ns/op is per echo.
func BenchmarkConcurrent(b *testing.B) {
	const conns, size = 100, 1024
	eachLib(b, fmt.Sprintf("conns=%d", conns), func(b *testing.B, lib string) {
		r := startPeer(b, lib)
		cs := dialPeer(b, r, "/echo", conns)
		payload := wsraw.Pattern(size)
		frame := wsraw.AppendMessage(nil, wire.OpBinary, payload, 0)
		for _, c := range cs {
			echoOnce(b, c, frame, wire.OpBinary, payload)
		}
		b.SetBytes(size)
		b.ReportAllocs()
		b.ResetTimer()
		var left atomic.Int64
		left.Store(int64(b.N))
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					if err := c.Write(frame); err != nil {
						b.Error(err)
						return
					}
					if _, p, err := c.ReadMessage(); err != nil || len(p) != size {
						b.Errorf("echo of %d bytes, %v", len(p), err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

// BenchmarkBroadcast: a 128-byte message broadcast by the server to every
// member of /room, until every member has read it. The broadcaster keeps at
// most 64 messages not yet read by the slowest member, within every
// library's per-member queue (Shockwave's default mailbox holds 256).
// Bytes are those delivered (128 x members).
func BenchmarkBroadcast(b *testing.B) {
	const window, size = 64, 128
	for _, members := range []int{10, 1000} {
		eachLib(b, fmt.Sprintf("members=%d", members), func(b *testing.B, lib string) {
			r := startPeer(b, lib)
			cs := dialPeer(b, r, "/room", members)
			waitUntil(b, func() bool { return r.Server.RoomLen() == members })
			msg := wsraw.Pattern(size)
			got := make([]atomic.Int64, members) // deliveries per member
			run := func(rounds int) {
				for i := range got {
					got[i].Store(0)
				}
				var wg sync.WaitGroup
				for k, c := range cs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range rounds {
							if _, p, err := c.ReadMessage(); err != nil || len(p) != size {
								b.Errorf("delivery of %d bytes, %v", len(p), err)
								return
							}
							got[k].Add(1)
						}
					}()
				}
				// The slowest member decides: none has more than window
				// messages waiting, whatever the others do.
				slowest := 0
				for i := range rounds {
					for int64(i-window) > got[slowest].Load() {
						runtime.Gosched()
						for k := range got {
							if got[k].Load() < got[slowest].Load() {
								slowest = k
							}
						}
					}
					if n := r.Server.Broadcast(peers.OpBinary, msg); n != members {
						b.Fatalf("broadcast to %d members, want %d", n, members)
					}
				}
				wg.Wait()
			}
			run(window)
			b.SetBytes(int64(size * members))
			b.ReportAllocs()
			b.ResetTimer()
			run(b.N)
		})
	}
}

// waitUntil polls cond for up to 10 seconds.
func waitUntil(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not met after 10 s")
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// BenchmarkParseHeader: wire.ParseHeader on the header of a masked 32-byte
// frame. The other libraries do not export their header parsers: compare
// them with BenchmarkFrameParse.
func BenchmarkParseHeader(b *testing.B) {
	b.Run("lib=shockwave", func(b *testing.B) {
		frame := wsraw.AppendMessage(nil, wire.OpBinary, wsraw.Pattern(32), 0)
		b.SetBytes(6)
		b.ReportAllocs()
		var sum int64
		for b.Loop() {
			h, n, err := wire.ParseHeader(frame)
			if err != nil || n != 6 {
				b.Fatal(n, err)
			}
			sum += h.Length
		}
		if sum == 0 {
			b.Fatal("nothing parsed")
		}
	})
}

// BenchmarkFrameParse: each library's server side reads masked 32-byte
// frames from memory and hands them to the application: header parsing,
// unmasking and delivery, without sockets. Shockwave is its wire.Reader,
// the reader of every session.
func BenchmarkFrameParse(b *testing.B) {
	const size = 32
	frame := wsraw.AppendMessage(nil, wire.OpBinary, wsraw.Pattern(size), 0)
	src := bytes.Repeat(frame, (64<<10)/len(frame))
	for _, lib := range microLibs {
		b.Run("lib="+lib+fmt.Sprintf("/size=%d", size), func(b *testing.B) {
			leakCheck(b)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			mc := &memConn{src: src, left: int64(b.N+1) * int64(len(frame))}
			got := readFrames(b, lib, mc)
			if got != b.N+1 {
				b.Fatalf("%d messages read, want %d", got, b.N+1)
			}
		})
	}
}

// readFrames upgrades mc with lib's server and reads messages until EOF,
// returning how many it read. The clock starts after the upgrade and the
// first message.
func readFrames(b *testing.B, lib string, mc *memConn) int {
	req := upgradeRequest()
	n := 0
	first := func() {
		n++
		if n == 1 {
			b.ResetTimer()
		}
	}
	switch lib {
	case "shockwave":
		rd := wire.NewReader(mc, &wire.ReaderOptions{Server: true, MaxMessageSize: peers.MaxMessage})
		for {
			if _, _, err := rd.Next(); err != nil {
				rd.Release()
				return n
			}
			first()
		}
	case "gws":
		h := &gwsCounter{count: first}
		up := gws.NewUpgrader(h, &gws.ServerOption{CheckUtf8Enabled: true, ReadMaxPayloadSize: peers.MaxMessage})
		c, err := up.UpgradeFromConn(mc, bufio.NewReaderSize(mc, 4096), req)
		if err != nil {
			b.Fatal(err)
		}
		c.ReadLoop()
		return n
	case "gorilla":
		up := gorilla.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
		c, err := up.Upgrade(&hijacker{c: mc}, req, nil)
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadLimit(peers.MaxMessage)
		var buf []byte
		for {
			_, r, err := c.NextReader()
			if err != nil {
				return n
			}
			if buf, err = readAllInto(r, buf); err != nil {
				return n
			}
			first()
		}
	case "coder":
		c, err := coder.Accept(&hijacker{c: mc}, req, &coder.AcceptOptions{
			InsecureSkipVerify: true, CompressionMode: coder.CompressionDisabled})
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadLimit(peers.MaxMessage)
		var buf []byte
		for {
			_, r, err := c.Reader(context.Background())
			if err != nil {
				c.CloseNow()
				return n
			}
			if buf, err = readAllInto(r, buf); err != nil {
				c.CloseNow()
				return n
			}
			first()
		}
	}
	b.Fatalf("unknown library %s", lib)
	return 0
}

type gwsCounter struct {
	gws.BuiltinEventHandler
	count func()
}

func (h *gwsCounter) OnMessage(_ *gws.Conn, m *gws.Message) {
	h.count()
	m.Close()
}

func readAllInto(r io.Reader, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func upgradeRequest() *http.Request {
	req, _ := http.NewRequest("GET", "http://127.0.0.1/echo", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", wsraw.Key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	return req
}

// memConn is a net.Conn that reads left bytes of src, over and over, then
// io.EOF, and drops what is written.
type memConn struct {
	src  []byte
	off  int
	left int64
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(int64(len(p)), c.left)], c.src[c.off:])
	c.off = (c.off + n) % len(c.src)
	c.left -= int64(n)
	return n, nil
}

func (c *memConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// hijacker is the http.ResponseWriter of an upgrade over a memConn.
type hijacker struct {
	c *memConn
	h http.Header
}

func (w *hijacker) Header() http.Header {
	if w.h == nil {
		w.h = make(http.Header)
	}
	return w.h
}
func (w *hijacker) Write(p []byte) (int, error) { return len(p), nil }
func (w *hijacker) WriteHeader(int)             {}
func (w *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.c, bufio.NewReadWriter(bufio.NewReaderSize(w.c, 4096), bufio.NewWriterSize(w.c, 4096)), nil
}
