package conformance

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	kflate "github.com/klauspost/compress/flate"

	"github.com/shockwave-go/shockwave/wire"
)

// TestInflater checks the client's inflater against compress/flate on what
// compress/flate and klauspost's windowed encoder make, and that it finds
// distances beyond the window or the history.
func TestInflater(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	text, _ := datasets[3].load()
	bin, _ := datasets[1].load()
	rnd := make([]byte, 70000)
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	for _, src := range [][]byte{text[:100000], bin[:70000], rnd, []byte("a"), nil, bytes.Repeat([]byte("ab"), 40000)} {
		for bits := 8; bits <= 15; bits++ {
			for _, takeover := range []bool{false, true} {
				z := &deflater{bits: bits, takeover: takeover}
				f := &inflater{window: 1 << bits, takeover: takeover}
				for i, n := 0, 0; i < len(src); i += n {
					n = min(len(src)-i, 1+r.IntN(9000))
					msg := src[i : i+n]
					out, err := f.inflate(z.compress(msg))
					if err != nil || !bytes.Equal(out, msg) {
						t.Fatalf("bits %d takeover %v at %d: %v (%d bytes, want %d)", bits, takeover, i, err, len(out), len(msg))
					}
				}
			}
		}
	}
	// compress/flate's own decompressor agrees on every level.
	for level := flate.HuffmanOnly; level <= flate.BestCompression; level++ {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, level)
		w.Write(text[:50000])
		w.Flush()
		b := buf.Bytes()[:buf.Len()-4]
		out, err := (&inflater{window: 1 << 15}).inflate(b)
		if err != nil || !bytes.Equal(out, text[:50000]) {
			t.Fatalf("level %d: %v", level, err)
		}
	}
	// A stream that ends with BFINAL.
	if out, err := (&inflater{window: 1 << 15}).inflate(deflateFinal(text[:3000])); err != nil || !bytes.Equal(out, text[:3000]) {
		t.Fatalf("BFINAL: %v", err)
	}
	// 600 bytes, then the same again: 600 bytes back, past a window of
	// 512.
	twice := append(append([]byte{}, rnd[:600]...), rnd[:600]...)
	if _, err := (&inflater{window: 1 << 9}).inflate(deflateAlone(twice)); !errors.Is(err, errWindow) {
		t.Errorf("distance 600 in a window of 512: %v, want errWindow", err)
	}
	// A message compressed against the one before, inflated on its own.
	z := &deflater{bits: 15, takeover: true}
	z.compress(rnd[:1000])
	second := z.compress(rnd[:1000])
	if _, err := (&inflater{window: 1 << 15}).inflate(second); !errors.Is(err, errWindow) {
		t.Errorf("a reference to the message before without takeover: %v, want errWindow", err)
	}
	f := &inflater{window: 1 << 15, takeover: true}
	f.inflate(deflateAlone(rnd[:1000]))
	if out, err := f.inflate(second); err != nil || !bytes.Equal(out, rnd[:1000]) {
		t.Errorf("with takeover: %v", err)
	}
	for _, bad := range [][]byte{{0x07, 0x00}, {0x00, 0x05, 0x00, 0xfa, 0xfe, 'a'}, {0x04, 0xff}} {
		if _, err := (&inflater{window: 1 << 15}).inflate(bad); err == nil {
			t.Errorf("%x inflated", bad)
		}
	}
}

// TestCheckAnswer checks the client's reading of the server's
// Sec-WebSocket-Extensions against RFC 7692 section 7.1 and Autobahn's
// client.
func TestCheckAnswer(t *testing.T) {
	for _, tc := range []struct {
		offers             []string
		answer             string
		strict, autobahn   bool // the answer fails the check
		serverBits         int
		serverTO, clientTO bool
	}{
		{[]string{defaultOffer}, "permessage-deflate", false, false, 15, true, false},
		{[]string{defaultOffer}, "permessage-deflate; client_no_context_takeover", false, false, 15, true, false},
		{[]string{"permessage-deflate"}, "permessage-deflate", false, false, 15, true, true},
		{[]string{"permessage-deflate"}, "Permessage-Deflate; Server_No_Context_Takeover", false, false, 15, false, true},
		{[]string{"permessage-deflate"}, "permessage-deflate; server_max_window_bits=10", false, false, 10, true, true},
		{[]string{"permessage-deflate"}, `permessage-deflate; server_max_window_bits="10"`, false, false, 10, true, true},
		{[]string{"permessage-deflate"}, "permessage-deflate; server_max_window_bits=8", false, true, 8, true, true}, // zlib has no 8
		{[]string{"permessage-deflate"}, "permessage-deflate; client_max_window_bits=10", true, false, 15, true, true},
		{[]string{"permessage-deflate; client_max_window_bits=9"}, "permessage-deflate; client_max_window_bits=10", true, false, 15, true, true},
		{[]string{"permessage-deflate; client_max_window_bits"}, "permessage-deflate; client_max_window_bits", true, true, 0, false, false},
		{[]string{"permessage-deflate; server_no_context_takeover"}, "permessage-deflate", true, false, 15, true, true},
		{[]string{"permessage-deflate; server_max_window_bits=10"}, "permessage-deflate", true, false, 15, true, true},
		{[]string{"permessage-deflate; server_max_window_bits=10"}, "permessage-deflate; server_max_window_bits=11", true, false, 11, true, true},
		{[]string{"permessage-deflate"}, "permessage-deflate; server_max_window_bits=09", true, false, 0, false, false},
		{[]string{"permessage-deflate"}, "permessage-deflate; server_no_context_takeover; server_no_context_takeover", true, true, 0, false, false},
		{[]string{"permessage-deflate"}, "permessage-deflate; server_no_context_takeover=true", true, true, 0, false, false},
		{[]string{"permessage-deflate"}, "permessage-deflate; foo", true, true, 0, false, false},
		{[]string{"permessage-deflate"}, "permessage-deflate, permessage-deflate", true, true, 0, false, false},
		{[]string{"permessage-deflate"}, "x-webkit-deflate-frame", true, true, 0, false, false},
		{offers13[6], "permessage-deflate; server_no_context_takeover; client_no_context_takeover", false, false, 15, false, false},
		{offers13[6], "permessage-deflate; client_no_context_takeover", false, false, 15, true, false},
		{offers13[6], "permessage-deflate; server_no_context_takeover; server_max_window_bits=9", false, false, 9, false, false},
	} {
		n, autobahn, strict := checkAnswer([]string{tc.answer}, tc.offers)
		if (len(strict) > 0) != tc.strict || (autobahn != nil) != tc.autobahn {
			t.Errorf("%q to %q: strict %q, Autobahn %v; want failures %v, %v", tc.answer, tc.offers, strict, autobahn, tc.strict, tc.autobahn)
			continue
		}
		if tc.serverBits == 0 {
			continue
		}
		if n == nil || n.serverBits != tc.serverBits || n.serverTakeover != tc.serverTO || n.clientTakeover != tc.clientTO {
			t.Errorf("%q to %q: agreed %+v, want server bits %d, takeover %v/%v", tc.answer, tc.offers, n, tc.serverBits, tc.serverTO, tc.clientTO)
		}
	}
	if _, ab, _ := checkAnswer([]string{"permessage-deflate", "permessage-deflate"}, []string{"permessage-deflate"}); ab == nil {
		t.Error("two Sec-WebSocket-Extensions lines: Autobahn's client fails the handshake")
	}
}

// badServer is an echo server with permessage-deflate that answers the
// handshake with answer, whatever the offer, and then compresses what it
// sends back its own way (see its fields), to show the client catches it.
type badServer struct {
	answer   string
	takeover bool // compress against the messages before, whatever it answered
	fragment bool // send each message in two frames
	rsvCont  bool // with RSV1 on the continuation frame too
	t        *testing.T
}

func (b *badServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		b.t.Error(err)
		return
	}
	defer nc.Close()
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(sum[:]) + "\r\n"
	if b.answer != "" {
		resp += "Sec-WebSocket-Extensions: " + b.answer + "\r\n"
	}
	io.WriteString(nc, resp+"\r\n")
	var zbuf bytes.Buffer
	zw, _ := kflate.NewWriter(&zbuf, 6)
	var msg []byte
	var op wire.Opcode
	var compressed bool
	for {
		h, p, err := readClientFrame(brw.Reader)
		if err != nil {
			return
		}
		switch h.Opcode {
		case wire.OpClose:
			nc.Write(wire.AppendFrame(nil, wire.Header{Fin: true, Opcode: wire.OpClose}, p))
			return
		case wire.OpPing:
			continue
		case wire.OpText, wire.OpBinary:
			op, msg, compressed = h.Opcode, p, h.Rsv&wire.RSV1 != 0
		default:
			msg = append(msg, p...)
		}
		if !h.Fin {
			continue
		}
		if compressed {
			fr := flate.NewReader(io.MultiReader(bytes.NewReader(msg), strings.NewReader("\x00\x00\xff\xff\x01\x00\x00\xff\xff")))
			msg, err = io.ReadAll(fr)
			if err != nil {
				b.t.Error(err)
				return
			}
		}
		zbuf.Reset()
		if !b.takeover {
			zw.Reset(&zbuf)
		}
		zw.Write(msg)
		zw.Flush()
		body := bytes.Clone(zbuf.Bytes()[:zbuf.Len()-4])
		var out []byte
		if b.fragment && len(body) > 1 {
			rsv := uint8(0)
			if b.rsvCont {
				rsv = wire.RSV1
			}
			out = wire.AppendFrame(out, wire.Header{Rsv: wire.RSV1, Opcode: op}, body[:1])
			out = wire.AppendFrame(out, wire.Header{Fin: true, Rsv: rsv, Opcode: wire.OpContinuation}, body[1:])
		} else {
			out = wire.AppendFrame(nil, wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: op}, body)
		}
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

// readClientFrame reads a masked frame and unmasks its payload.
func readClientFrame(br *bufio.Reader) (wire.Header, []byte, error) {
	var hdr [wire.MaxHeaderSize]byte
	h, err := readHeader(br, hdr[:])
	if err != nil {
		return h, nil, err
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(br, p); err != nil {
		return h, nil, err
	}
	wire.Mask(p, h.Key, 0)
	return h, p, nil
}

// TestDeflateSelfCheck plays compression cases against servers that get
// permessage-deflate wrong, each in a way the cases must catch, and
// against one that gets it right.
func TestDeflateSelfCheck(t *testing.T) {
	c12 := deflateCases()
	find := func(id string) Case {
		for _, c := range c12 {
			if c.ID == id {
				c.Wait = defaultWait
				return c
			}
		}
		t.Fatalf("no case %s", id)
		return Case{}
	}
	for _, tc := range []struct {
		name     string
		server   badServer
		id       string
		want     string // in the failures; "" for none
		behavior string // Autobahn's verdict
	}{
		{"correct", badServer{answer: "permessage-deflate; client_no_context_takeover"}, "12.1.6", "", OK},
		{"correct, in fragments", badServer{answer: "permessage-deflate; client_no_context_takeover", fragment: true}, "12.1.6", "", OK},
		{"correct, with takeover", badServer{answer: "permessage-deflate; client_no_context_takeover", takeover: true}, "12.1.6", "", OK},
		{"declines", badServer{}, "12.1.6", "declined the offers", Unimplemented},
		{"takeover despite server_no_context_takeover",
			badServer{answer: "permessage-deflate; server_no_context_takeover; client_no_context_takeover", takeover: true},
			"13.2.6", "does not inflate as agreed", Failed},
		{"a window of 32 KiB despite server_max_window_bits=9",
			badServer{answer: "permessage-deflate; client_no_context_takeover; server_max_window_bits=9"},
			"13.3.6", "does not inflate as agreed", Failed},
		{"takeover and a window of 32 KiB despite server_max_window_bits=9",
			badServer{answer: "permessage-deflate; client_no_context_takeover; server_max_window_bits=9", takeover: true},
			"13.3.4", "does not inflate as agreed", Failed},
		{"server_no_context_takeover left out", badServer{answer: "permessage-deflate; client_no_context_takeover"},
			"13.2.6", "accepts none of the offers", OK},
		{"client_max_window_bits unasked",
			badServer{answer: "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=15"},
			"xd.3.9", "accepts none of the offers", OK},
		{"an extension not offered", badServer{answer: "x-webkit-deflate-frame"}, "12.1.6", "not offered", Failed},
		{"RSV1 on a continuation frame", badServer{answer: "permessage-deflate; client_no_context_takeover", fragment: true, rsvCont: true},
			"12.1.6", "RSV1 on a continuation frame", Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.server.t = t
			srv := httptest.NewServer(&tc.server)
			defer srv.Close()
			c := find(tc.id)
			r, err := c.Run("ws" + strings.TrimPrefix(srv.URL, "http"))
			if err != nil {
				t.Fatal(err)
			}
			fs := strings.Join(c.Failures(r), "\n")
			t.Logf("%s: %v\n%s", tc.id, r, fs)
			switch {
			case r.Behavior != tc.behavior:
				t.Errorf("Autobahn verdict %s, want %s", r.Behavior, tc.behavior)
			case tc.want == "" && fs != "":
				t.Errorf("failures of a correct server: %s", fs)
			case tc.want != "" && !strings.Contains(fs, tc.want):
				t.Errorf("failures %q, want one about %q", fs, tc.want)
			}
		})
	}
}
