package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

// stampHeaders are the envelopes of TestStamp: a room's messages, and the
// other fields a Router writes, so that Stamp is seen to put the position
// among all of them where appendEnvelope does.
var stampHeaders = []struct {
	name string
	h    outHeader
}{
	{"event", outHeader{event: "chat.msg"}},
	{"room", outHeader{event: "chat.msg", room: "lobby"}},
	{"room and trace", outHeader{event: "chat.msg", room: "lobby",
		trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
	{"trace", outHeader{event: "e", trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}},
	{"escapes", outHeader{event: "a\"\\\n\u2028", room: "r\x01\xff<>&"}},
	{"id", outHeader{id: 300, hasID: true}},
	{"room and id", outHeader{event: "x", room: "lobby", id: 1<<64 - 1, hasID: true}},
	{"id zero", outHeader{hasID: true}},
	{"error reply", outHeader{id: 7, hasID: true, err: &Error{Code: "nope", Message: `no "way"`}}},
	{"error event", outHeader{event: EventError, room: "lobby", err: &Error{Code: "c", Message: "m"}}},
	{"room only", outHeader{room: "lobby"}},
	{"nothing", outHeader{}},
}

// stampPayloads are the payloads of TestStamp, some of them with keys
// that look like the envelope's, which Stamp must leave alone.
var stampPayloads = []struct {
	name string
	v    any
}{
	{"none", nil},
	{"string", "with \"quotes\", \\, \n and \u2028"},
	{"number", -1.5e300},
	{"bool", true},
	{"chat", chatMessage()},
	{"snapshot", snapshot(50)},
	{"position-like keys", lookalike{G: 1, O: 2, E: "inner", D: []lookalike{{G: -1}}}},
	{"bytes", []byte{0, 1, 2, 0xff}},
	{"nested", []any{nil, []any{}, map[string]any{}, []any{[]any{"x"}}}},
	{"empty struct", struct{}{}},
	{"70000 bytes", strings.Repeat("x", 70000)}, // str32, past a frame's pool class
}

// lookalike is a payload with the envelope's keys, in an order of its
// own.
type lookalike struct {
	G int         `json:"g"`
	O int         `json:"o"`
	E string      `json:"e"`
	D []lookalike `json:"d,omitempty"`
}

// stampPositions are positions of every size of integer, and offsets of 0.
var stampPositions = []runtime.Position{
	{Epoch: 1, Offset: 1},
	{Epoch: 200, Offset: 70000},
	{Epoch: 1<<53 - 1, Offset: 1 << 32},
	{Epoch: 1<<64 - 1, Offset: 1<<64 - 1},
	{Epoch: 0, Offset: 5},
	{Epoch: 9, Offset: 0},
	{},
}

// encodeRoomMsg returns variant i of v to a room under header h, at pos,
// as the Router's publish encodes it.
func encodeRoomMsg(t testing.TB, r *Router, h outHeader, v any, pos runtime.Position, i int) runtime.Variant {
	t.Helper()
	m := &roomMsg{r: r, h: h, v: v}
	f, err := m.Encode(pos, i)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	return runtime.Variant{Key: m.Key(i), Op: f.Opcode(), Data: bytes.Clone(f.Payload())}
}

// TestStamp stamps every envelope, encoded without a position, with each
// position, and compares it with the Router's encoding at that position;
// then restamps envelopes that have one.
func TestStamp(t *testing.T) {
	r := NewRouter(JSON) // its variants: JSON, then MessagePack
	for _, hc := range stampHeaders {
		for _, pc := range stampPayloads {
			t.Run(hc.name+"/"+pc.name, func(t *testing.T) {
				for i := range r.codecs {
					zero := encodeRoomMsg(t, r, hc.h, pc.v, runtime.Position{}, i)
					if want := r.codecs[i].Opcode(); zero.Op != want {
						t.Fatalf("variant %d is in %v messages, not %v", i, zero.Op, want)
					}
					for _, pos := range stampPositions {
						want := encodeRoomMsg(t, r, hc.h, pc.v, pos, i)
						if bytes.Equal(want.Data, zero.Data) != (pos.Offset == 0) {
							t.Fatalf("%s at %+v: the Router's encoding is %q, %q at no position", zero.Key, pos, want.Data, zero.Data)
						}
						checkStamp(t, zero, pos, want.Data)
						// A position already there is replaced, whatever
						// it was.
						for _, from := range stampPositions {
							checkStamp(t, encodeRoomMsg(t, r, hc.h, pc.v, from, i), pos, want.Data)
						}
					}
				}
			})
		}
	}
}

// checkStamp stamps v with pos after a prefix and compares the result with
// want.
func checkStamp(t *testing.T, v runtime.Variant, pos runtime.Position, want []byte) {
	t.Helper()
	got, err := Stamp([]byte("pre"), v, pos)
	if err != nil {
		t.Fatalf("%s %.60q at %+v: %v", v.Key, v.Data, pos, err)
	}
	if !bytes.Equal(got, append([]byte("pre"), want...)) {
		t.Fatalf("%s %.60q at %+v:\ngot  %.200q\nwant pre%.200q", v.Key, v.Data, pos, got, want)
	}
}

// TestStampAnyEnvelope stamps envelopes a Router does not write, in JSON:
// spaces, other orders, duplicate and unknown keys. The members are
// copied as they are, the position before the first that is neither the
// event nor the room.
func TestStampAnyEnvelope(t *testing.T) {
	pos := runtime.Position{Epoch: 7, Offset: 42}
	for _, tc := range []struct {
		name, in string
		want     string // stamped with pos
		none     string // stamped with no position
	}{
		{"spaces", " \t{ \"e\" : \"x\" ,\n\"d\" : [ 1 , 2 ] } \r\n",
			`{"e" : "x","g":7,"o":42,"d" : [ 1 , 2 ]}`, `{"e" : "x","d" : [ 1 , 2 ]}`},
		{"empty", `{}`, `{"g":7,"o":42}`, `{}`},
		{"empty with spaces", ` { } `, `{"g":7,"o":42}`, `{}`},
		{"position only", `{"g":1,"o":2}`, `{"g":7,"o":42}`, `{}`},
		{"position last", `{"e":"x","d":1,"o":3,"g":2}`, `{"e":"x","g":7,"o":42,"d":1}`, `{"e":"x","d":1}`},
		{"epoch alone", `{"e":"x","g":5}`, `{"e":"x","g":7,"o":42}`, `{"e":"x"}`},
		{"position of other types", `{"g":"a","o":[-1.5],"e":"x"}`, `{"e":"x","g":7,"o":42}`, `{"e":"x"}`},
		{"room first", `{"r":"a","e":"x","d":1}`, `{"r":"a","e":"x","g":7,"o":42,"d":1}`, `{"r":"a","e":"x","d":1}`},
		{"unknown key first", `{"zz":1,"e":"x"}`, `{"g":7,"o":42,"zz":1,"e":"x"}`, `{"zz":1,"e":"x"}`},
		{"duplicates", `{"e":"a","g":1,"e":"b","g":2,"o":3}`, `{"e":"a","e":"b","g":7,"o":42}`, `{"e":"a","e":"b"}`},
		// The parser reads keys as they are written: an escaped "g" is
		// some other key, left where it is.
		{"escaped key", `{"e":"x","\u0067":1}`, `{"e":"x","g":7,"o":42,"\u0067":1}`, `{"e":"x","\u0067":1}`},
		{"null fields", `{"e":"x","r":null,"t":null,"i":null,"d":null}`,
			`{"e":"x","r":null,"g":7,"o":42,"t":null,"i":null,"d":null}`, `{"e":"x","r":null,"t":null,"i":null,"d":null}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := runtime.Variant{Op: wire.OpText, Data: []byte(tc.in)}
			checkStamp(t, v, pos, []byte(tc.want))
			checkStamp(t, v, runtime.Position{Epoch: 7}, []byte(tc.none))
		})
	}
}

// TestStampMapHeaders stamps MessagePack envelopes whose pairs, the
// position's counted in or out, take each size of map header: the result
// has the shortest header for its pairs, and reads as the input with the
// position.
func TestStampMapHeaders(t *testing.T) {
	pos := runtime.Position{Epoch: 7, Offset: 1 << 40}
	for _, tc := range []struct {
		name      string
		head      string // the map header of the input
		unknown   int    // pairs besides "e", "g", "o"
		withPos   bool   // whether the input has a position
		wantHead  string // the stamped map header
		wantPairs int
	}{
		{"fixmap", "\x84", 1, true, "\x84", 4},
		{"fixmap to map16", "\x8f", 14, false, "\xde\x00\x11", 17},
		{"fixmap full", "\x8f", 12, true, "\x8f", 15},
		{"map16 to fixmap", "\xde\x00\x03", 0, true, "\x83", 3},
		{"map16 of 16", "\xde\x00\x10", 13, true, "\xde\x00\x10", 16},
		{"map32 to map16", "\xdf\x00\x00\x00\x12", 15, true, "\xde\x00\x12", 18},
		{"map16 to map32", "\xde\xff\xfe", 65533, false, "\xdf\x00\x01\x00\x00", 65536},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.head + "\xa1e\xa1x")
			if tc.withPos {
				in = append(in, "\xa1g\x01\xa1o\x02"...)
			}
			for i := range tc.unknown {
				in = mpString(in, fmt.Sprintf("k%d", i))
				in = mpUint(in, uint64(i))
			}
			got, err := Stamp([]byte("pre"), runtime.Variant{Op: wire.OpBinary, Data: in}, pos)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, []byte("pre"+tc.wantHead+"\xa1e\xa1x\xa1g\x07\xa1o\xcf\x00\x00\x01\x00\x00\x00\x00\x00")) {
				t.Fatalf("got %.40q", got)
			}
			var before, after map[string]msgpack.RawMessage
			if err := msgpack.Unmarshal(in, &before); err != nil {
				t.Fatal(err)
			}
			if err := msgpack.Unmarshal(got[3:], &after); err != nil {
				t.Fatal(err)
			}
			if len(after) != tc.wantPairs {
				t.Fatalf("%d pairs, want %d", len(after), tc.wantPairs)
			}
			before["g"], before["o"] = mpUint(nil, pos.Epoch), mpUint(nil, pos.Offset)
			for k, v := range before {
				if !bytes.Equal(after[k], v) {
					t.Fatalf("%q: %q, want %q", k, after[k], v)
				}
			}
		})
	}
}

// TestStampErrors stamps what is not an envelope: each is an error, and
// dst comes back as it was.
func TestStampErrors(t *testing.T) {
	type input struct {
		name string
		op   wire.Opcode
		data string
	}
	inputs := []input{
		{"close frame", wire.OpClose, `{"e":"x"}`},
		{"continuation", wire.OpContinuation, `{"e":"x"}`},
		{"ping", wire.OpPing, "\x81\xa1e\xa1x"},
		{"JSON as binary", wire.OpBinary, `{"e":"x"}`},
		{"MessagePack as text", wire.OpText, "\x81\xa1e\xa1x"},
	}
	for _, s := range []string{
		"", " ", `[]`, `"x"`, `null`, `{`, `{"e":"x"`, `{"e":"x",}`, `{"e":"x"}x`,
		`{"e":"x"}{}`, `{"e":}`, `{"e" "x"}`, `{e:"x"}`, `{"e":"\x"}`, "{\"e\":\"\x01\"}",
		`{"e":1}`, `{"e":null}`, `{"r":5}`, `{"t":[]}`, `{"i":-1}`, `{"i":1.5}`, `{"i":"1"}`,
		`{"i":18446744073709551616}`, `{"e":"x","d":01}`, `{"e":"x","d":tru}`,
		`{"e":"x","d":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`,
	} {
		inputs = append(inputs, input{fmt.Sprintf("json %.40q", s), wire.OpText, s})
	}
	for _, s := range []string{
		"", "\x90", "\xc0", "\x81", "\x81\xa1e", "\x81\x01\xc0", "\x81\xa1e\xa1x\xc0",
		"\x81\xa1e\x01", "\x81\xa1r\x01", "\x81\xa1t\x90", "\x81\xa1i\xff", "\x81\xa1i\xd0\x80",
		"\x81\xa1i\xcb\x00\x00\x00\x00\x00\x00\x00\x00", "\x82\xa1e\xa1x\xa1d\xc1",
		"\xdf\xff\xff\xff\xff\xa1e\xa1x", "\xde\xff\xff\xa1e\xa1x",
		"\x82\xa1e\xa1x\xa1d" + strings.Repeat("\x91", maxDepth+1) + "\xc0",
	} {
		inputs = append(inputs, input{fmt.Sprintf("msgpack %.40q", s), wire.OpBinary, s})
	}
	for _, hc := range hugeCounts {
		inputs = append(inputs, input{"msgpack payload " + hc.name, wire.OpBinary, "\x82\xa1e\xa1x\xa1d" + hc.in})
	}
	// Every envelope cut short.
	r := NewRouter(JSON)
	h := outHeader{event: "chat.msg", room: "lobby", trace: "00-4bf9-01"}
	for i := range r.codecs {
		for _, pos := range stampPositions[:2] {
			v := encodeRoomMsg(t, r, h, chatMessage(), pos, i)
			for n := range len(v.Data) {
				inputs = append(inputs, input{fmt.Sprintf("%s at %d cut at %d", v.Key, pos.Offset, n), v.Op, string(v.Data[:n])})
			}
		}
	}
	for _, tc := range inputs {
		dst := make([]byte, 3, 64)
		copy(dst, "pre")
		got, err := Stamp(dst, runtime.Variant{Op: tc.op, Data: []byte(tc.data)}, runtime.Position{Epoch: 1, Offset: 2})
		if err == nil {
			t.Errorf("%s: no error, got %.60q", tc.name, got)
			continue
		}
		if string(got) != "pre" || &got[0] != &dst[0] {
			t.Errorf("%s: dst became %q", tc.name, got)
		}
		if !strings.HasPrefix(err.Error(), "codec: cannot stamp a ") {
			t.Errorf("%s: error %q", tc.name, err)
		}
	}
}

// TestStampAllocs checks the allocation budget: none when dst has room.
func TestStampAllocs(t *testing.T) {
	r := NewRouter(JSON)
	h := outHeader{event: "chat.msg", room: "lobby", trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	for i := range r.codecs {
		v := encodeRoomMsg(t, r, h, snapshot(20), runtime.Position{Epoch: 3, Offset: 70000}, i)
		dst := make([]byte, 0, len(v.Data)+maxStampGrowth)
		pos := runtime.Position{Epoch: 1 << 40, Offset: 1<<64 - 1}
		if n := testing.AllocsPerRun(100, func() {
			if _, err := Stamp(dst, v, pos); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations a stamp, want 0", v.Key, n)
		}
	}
}

// FuzzStamp stamps arbitrary bytes in both codecs: no panic, an output
// bounded by the input, dst untouched on error; and Stamp takes exactly
// the envelopes the parser does, whose stamped envelope parses to the
// same fields and payload bytes with the position.
func FuzzStamp(f *testing.F) {
	r := NewRouter(JSON)
	for _, hc := range stampHeaders[:6] {
		for _, pc := range stampPayloads[:7] {
			for i := range r.codecs {
				for _, pos := range stampPositions[:2] {
					v := encodeRoomMsg(f, r, hc.h, pc.v, pos, i)
					f.Add(v.Data, uint64(5), uint64(6))
				}
			}
		}
	}
	for _, s := range []string{
		` { "zz" : 1 , "e" : "x" , "g" : "a" } `, `{}`, `{"e":"x","\u0067":1}`, `{"e":1}`,
		"\xde\x00\x01\xa1e\xa1x", "\xdf\xff\xff\xff\xff\xa1e\xa1x", "\x81\xa1i\xff",
	} {
		f.Add([]byte(s), uint64(0), uint64(1<<64-1))
	}
	f.Fuzz(func(t *testing.T, data []byte, epoch, offset uint64) {
		pos := runtime.Position{Epoch: epoch, Offset: offset}
		for _, c := range []envelopeCodec{jsonCodec{}, msgpackCodec{}} {
			v := runtime.Variant{Op: c.Opcode(), Data: data}
			out, err := Stamp([]byte("pre"), v, pos)
			if err != nil {
				if string(out) != "pre" {
					t.Fatalf("%s: error %v, and dst became %q", c.Name(), err, out)
				}
			} else if n := len(out) - 3; n > len(data)+maxStampGrowth {
				t.Fatalf("%s: %d bytes from %d", c.Name(), n, len(data))
			}
			in, perr := parse(c, data)
			if (err == nil) != (perr == nil) {
				t.Fatalf("%s: %q: Stamp's error %v, the parser's %v", c.Name(), data, err, perr)
			}
			if err != nil {
				continue
			}
			got, err := parse(c, out[3:])
			if err != nil {
				t.Fatalf("%s: %q stamped %q: %v", c.Name(), data, out[3:], err)
			}
			want := in
			want.Epoch, want.Offset = 0, 0
			if pos.Offset != 0 {
				want.Epoch, want.Offset = pos.Epoch, pos.Offset
			}
			if got != want {
				t.Fatalf("%s: %q stamped %q:\ngot  %+v\nwant %+v", c.Name(), data, out[3:], got, want)
			}
			if c.Name() == "json" && !json.Valid(out[3:]) {
				t.Fatalf("json: %q stamped %q, not JSON", data, out[3:])
			}
			// Stamping again depends on the new position only.
			again, err := Stamp(nil, runtime.Variant{Op: c.Opcode(), Data: out[3:]}, runtime.Position{Epoch: 3, Offset: 4})
			direct, _ := Stamp(nil, v, runtime.Position{Epoch: 3, Offset: 4})
			if err != nil || !bytes.Equal(again, direct) {
				t.Fatalf("%s: %q restamped %q (%v), stamped %q", c.Name(), data, again, err, direct)
			}
		}
	})
}

// BenchmarkStamp measures stamping a room message as it comes back from a
// log, into a reused buffer, per codec and payload.
func BenchmarkStamp(b *testing.B) {
	r := NewRouter(JSON)
	h := outHeader{event: "chat.msg", room: "lobby", trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	for _, bv := range benchValues[:2] {
		for i, c := range r.codecs {
			v := encodeRoomMsg(b, r, h, bv.v, runtime.Position{}, i)
			b.Run(bv.name+"/"+c.Name(), func(b *testing.B) {
				buf := make([]byte, 0, len(v.Data)+maxStampGrowth)
				pos := runtime.Position{Epoch: 1 << 40, Offset: 1}
				b.SetBytes(int64(len(v.Data)))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if buf, err = Stamp(buf[:0], v, pos); err != nil {
						b.Fatal(err)
					}
					pos.Offset++
				}
			})
		}
	}
}

// A node that carries a room's messages through a log writes into each
// the position the log gave it, as it comes back.
func ExampleStamp() {
	fromLog := runtime.Variant{
		Key:  "shockwave.json",
		Op:   wire.OpText,
		Data: []byte(`{"e":"chat.msg","r":"lobby","d":{"text":"hi"}}`),
	}
	b, err := Stamp(nil, fromLog, runtime.Position{Epoch: 1732600000, Offset: 42})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
	// Output: {"e":"chat.msg","r":"lobby","g":1732600000,"o":42,"d":{"text":"hi"}}
}
