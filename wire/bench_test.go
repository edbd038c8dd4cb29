package wire

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Benchmarks of the hot paths. Sub-benchmark names use key=value so that
// benchstat can compare along any key, for example:
//
//	go test -run='^$' -bench=Mask -count=10 ./wire/ > mask.txt
//	benchstat -col /impl mask.txt

var (
	benchInt   int
	benchBool  bool
	benchBytes []byte
)

func BenchmarkParseHeader(b *testing.B) {
	key := [4]byte{1, 2, 3, 4}
	headers := []struct {
		name string
		h    Header
	}{
		{"len=7bit", Header{Fin: true, Opcode: OpText, Length: 100}},
		{"len=16bit/masked", Header{Fin: true, Opcode: OpBinary, Masked: true, Key: key, Length: 1000}},
		{"len=64bit/masked", Header{Fin: true, Opcode: OpBinary, Masked: true, Key: key, Length: 1 << 20}},
	}
	for _, tt := range headers {
		buf := AppendHeader(nil, tt.h)
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			// Use the fields as a reader would. Copying the whole Header
			// to a global would time a store-forwarding stall instead: the
			// fields are written byte by byte and copied in 16-byte moves.
			sum := 0
			for b.Loop() {
				h, n, err := ParseHeader(buf)
				if err != nil || !h.Fin {
					b.Fatal("bad parse")
				}
				sum += n + int(h.Length) + int(h.Opcode)
			}
			benchInt = sum
		})
		// parseHeader is what the Reader calls: the header is filled in
		// place rather than returned.
		b.Run(tt.name+"/in-place", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			var h Header
			sum := 0
			for b.Loop() {
				n, err := parseHeader(buf, &h)
				if err != nil || !h.Fin {
					b.Fatal("bad parse")
				}
				sum += n + int(h.Length) + int(h.Opcode)
			}
			benchInt = sum
		})
	}
}

func BenchmarkAppendHeader(b *testing.B) {
	h := Header{Fin: true, Opcode: OpBinary, Masked: true, Key: [4]byte{1, 2, 3, 4}, Length: 1000}
	buf := make([]byte, 0, MaxHeaderSize)
	b.ReportAllocs()
	for b.Loop() {
		benchBytes = AppendHeader(buf[:0], h)
	}
}

// benchSizes are the payload sizes of the Mask and round-trip benchmarks.
var benchSizes = []struct {
	name string
	n    int
}{
	{"32B", 32},
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
}

// BenchmarkMask measures the exported Mask (impl=Mask: what callers get,
// with its cut-over to assembly) and each implementation on its own
// (impl=go, and on amd64 impl=sse2 and impl=avx2 where the CPU has it).
// The slice starts one byte past an alignment boundary and the key
// position is 1, as in the middle of a frame.
func BenchmarkMask(b *testing.B) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	impls := append([]maskImpl{{"Mask", func(p []byte, _ uint32, pos int) int { return Mask(p, key, pos) }}}, maskImpls()...)
	for _, size := range benchSizes {
		buf := make([]byte, size.n+1)[1:]
		for _, impl := range impls {
			b.Run("size="+size.name+"/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(size.n))
				for b.Loop() {
					benchInt = impl.fn(buf, 0x3d21fa37, 1)
				}
			})
		}
	}
}

// BenchmarkUTF8 measures UTF8Validator.Write on a whole message against
// utf8.Valid (via ValidUTF8), on ASCII and on mixed text.
func BenchmarkUTF8(b *testing.B) {
	texts := []struct {
		name string
		unit string
	}{
		{"ascii", "The quick brown fox jumps over the lazy dog. "},
		{"mixed", "Ça coûte 5 €, naïve 𝄞 Ωμέγα, 日本語テキスト, plain ASCII words. "},
	}
	for _, text := range texts {
		for _, n := range []int{1 << 10, 64 << 10} {
			p := []byte(strings.Repeat(text.unit, n/len(text.unit)+1))[:n]
			for !ValidUTF8(p) { // cut at a character boundary
				p = p[:len(p)-1]
			}
			name := "text=" + text.name + "/size=" + map[int]string{1 << 10: "1KiB", 64 << 10: "64KiB"}[n]
			b.Run(name+"/impl=Validator", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(p)))
				var v UTF8Validator
				for b.Loop() {
					v.Reset()
					benchBool = v.Write(p) && v.Complete()
				}
				if !benchBool {
					b.Fatal("invalid")
				}
			})
			b.Run(name+"/impl=utf8.Valid", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(p)))
				for b.Loop() {
					benchBool = ValidUTF8(p)
				}
			})
		}
	}
}

func BenchmarkAcceptKey(b *testing.B) {
	var dst [28]byte
	b.ReportAllocs()
	for b.Loop() {
		benchBytes = AcceptKey(&dst, "dGhlIHNhbXBsZSBub25jZQ==")
	}
}

// BenchmarkRoundTrip sends a binary message from a client Conn to a server
// Conn over loopback TCP and reads the echo: one op is one WriteMessage and
// one ReadMessage on each side. Allocations count both sides.
func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range benchSizes {
		b.Run("size="+size.name, func(b *testing.B) {
			url, stop := startBenchEcho(b)
			defer stop()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, _, err := Dial(ctx, url, nil)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			msg := bytes.Repeat([]byte{0xA5}, size.n)
			roundTrip := func() {
				if err := c.WriteMessage(OpBinary, msg); err != nil {
					b.Fatal(err)
				}
				op, p, err := c.ReadMessage()
				if err != nil || op != OpBinary || len(p) != len(msg) {
					b.Fatalf("echo: %v, %d bytes, %v", op, len(p), err)
				}
			}
			for range 10 { // warm the pools
				roundTrip()
			}
			b.ReportAllocs()
			b.SetBytes(int64(size.n))
			for b.Loop() {
				roundTrip()
			}
			b.StopTimer()
			if err := c.Close(StatusNormalClosure, ""); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// startBenchEcho serves one echo connection on 127.0.0.1 and returns its
// URL and a function that shuts the server down and waits until the
// handler and the accept loop have returned.
func startBenchEcho(tb testing.TB) (url string, stop func()) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	handlerDone := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			tb.Error(err)
			close(handlerDone)
			return
		}
		defer close(handlerDone)
		defer c.CloseNow()
		for {
			op, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(op, p); err != nil {
				return
			}
		}
	})}
	serveDone := make(chan struct{})
	go func() {
		defer close(serveDone)
		srv.Serve(ln)
	}()
	stopped := false
	return "ws://" + ln.Addr().String(), func() {
		if stopped {
			return
		}
		stopped = true
		srv.Close()
		<-serveDone
		select {
		case <-handlerDone:
		case <-time.After(10 * time.Second):
			tb.Error("echo handler did not return")
		}
	}
}

// benchTexts are the payloads of the compression benchmarks: a chat
// message of 1 KiB in JSON, and 64 KiB of text.
var benchTexts = []struct {
	name string
	gen  func(seed uint64, n int) []byte
	n    int
}{
	{"json=1KiB", chatJSON, 1 << 10},
	{"text=64KiB", proseText, 64 << 10},
}

// BenchmarkCompress measures AppendCompressed, what a broadcast pays once
// per message whatever the number of members, and reports the compressed
// size in percent of the message.
func BenchmarkCompress(b *testing.B) {
	for _, tt := range benchTexts {
		p := tt.gen(1, tt.n)
		b.Run(tt.name, func(b *testing.B) {
			dst := make([]byte, 0, CompressBound(len(p)))
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				dst = AppendCompressed(dst[:0], p)
			}
			b.ReportMetric(100*float64(len(dst))/float64(len(p)), "%size")
		})
	}
}

// benchModes are the compression settings the Conn and Reader benchmarks
// compare: none, and permessage-deflate without and with context
// takeover.
var benchModes = []CompressionMode{CompressionDisabled, CompressionNoContextTakeover, CompressionContextTakeover}

func benchParams(mode CompressionMode) CompressionParams {
	if mode == CompressionDisabled {
		return CompressionParams{}
	}
	noContext := mode == CompressionNoContextTakeover
	return CompressionParams{Enabled: true, ServerNoContextTakeover: noContext, ClientNoContextTakeover: noContext, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
}

// BenchmarkWriteCompressed measures a server Conn's WriteMessage (compress,
// when on, and write) to a loopback TCP connection whose other end a
// goroutine drains, and reports the bytes each message takes on the wire.
func BenchmarkWriteCompressed(b *testing.B) {
	for _, tt := range benchTexts {
		for _, mode := range benchModes {
			b.Run(tt.name+"/mode="+mode.String(), func(b *testing.B) {
				srv, cli := tcpPair(b)
				drained := make(chan int64)
				go func() {
					n, _ := io.Copy(io.Discard, cli)
					drained <- n
				}()
				o := Options{Compression: mode}
				c := newConn(srv, true, nil, "", benchParams(mode), &o)
				msgs := make([][]byte, 64)
				for i := range msgs {
					msgs[i] = tt.gen(uint64(i), tt.n)
				}
				for _, m := range msgs { // warm the pools
					if err := c.WriteMessage(OpText, m); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				b.SetBytes(int64(tt.n))
				i := 0
				for b.Loop() {
					if err := c.WriteMessage(OpText, msgs[i%len(msgs)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.StopTimer()
				c.CloseNow()
				n := <-drained
				b.ReportMetric(float64(n)/float64(i+len(msgs)), "wireB/msg")
			})
		}
	}
}

// BenchmarkReadCompressed measures a server's Reader.Next (unmask, and
// inflate when on) of masked messages held in memory: 64 different ones,
// compressed as the mode has it, read again and again with a Reset
// between rounds (which takes the window back to empty, as the stream
// starts).
func BenchmarkReadCompressed(b *testing.B) {
	for _, tt := range benchTexts {
		for _, mode := range benchModes {
			b.Run(tt.name+"/mode="+mode.String(), func(b *testing.B) {
				const count = 64
				var stream []byte
				z := newCompressor(15) // one stream for context takeover
				for i := range count {
					p := tt.gen(uint64(i), tt.n)
					h := Header{Fin: true, Opcode: OpText, Masked: true, Key: [4]byte{1, 2, 3, byte(i)}}
					switch mode {
					case CompressionNoContextTakeover:
						p, h.Rsv = AppendCompressed(nil, p), RSV1
					case CompressionContextTakeover:
						p, h.Rsv = z.appendDeflate(nil, p, true), RSV1
					}
					stream = AppendFrame(stream, h, p)
				}
				src := bytes.NewReader(stream)
				opts := &ReaderOptions{Server: true, Compression: benchParams(mode)}
				var rd Reader
				read := func(i int) {
					if i%count == 0 {
						src.Reset(stream)
						rd.Reset(src, opts)
					}
					if _, p, err := rd.Next(); err != nil || len(p) != tt.n {
						b.Fatalf("Next: %d bytes, %v", len(p), err)
					}
				}
				for i := range count { // warm the pools
					read(i)
				}
				b.ReportAllocs()
				b.SetBytes(int64(tt.n))
				i := 0
				for b.Loop() {
					read(i)
					i++
				}
				b.ReportMetric(float64(len(stream))/count, "wireB/msg")
			})
		}
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(tb testing.TB) (server, client net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	if server, err = ln.Accept(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}
