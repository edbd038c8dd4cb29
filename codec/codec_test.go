package codec

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/shockwave-go/shockwave/wire"
)

// Chat is a chat message, as a chat server sends it.
type Chat struct {
	Room string `json:"room"`
	From string `json:"from"`
	Text string `json:"text"`
	At   int64  `json:"at"`
}

// Entity is one object of a game's world.
type Entity struct {
	ID    uint32  `json:"id"`
	Kind  uint8   `json:"k"`
	X     float32 `json:"x"`
	Y     float32 `json:"y"`
	VX    float32 `json:"vx"`
	VY    float32 `json:"vy"`
	Angle float32 `json:"a"`
	HP    uint16  `json:"hp"`
	Name  string  `json:"n"`
}

// Snapshot is the state of a game's world at one tick.
type Snapshot struct {
	Tick     uint64   `json:"tick"`
	Entities []Entity `json:"ents"`
}

func chatMessage() Chat {
	return Chat{Room: "lobby", From: "ada", Text: "hello, shockwave! 👋 <b>&</b>", At: 1732600000123}
}

// snapshot returns a snapshot of n entities with varied, realistic values:
// positions with fractions, some entities named.
func snapshot(n int) Snapshot {
	s := Snapshot{Tick: 918273, Entities: make([]Entity, n)}
	for i := range s.Entities {
		f := float32(i)
		s.Entities[i] = Entity{
			ID: uint32(1000 + i), Kind: uint8(i % 4),
			X: 100.25 + f*3.5, Y: -40.75 + f*1.25, VX: 0.5 - f/16, VY: f / 32, Angle: f * 0.1,
			HP: uint16(100 - i%100),
		}
		if i%5 == 0 {
			s.Entities[i].Name = "player-" + string(rune('a'+i%26))
		}
	}
	return s
}

func TestCodecNames(t *testing.T) {
	for _, tc := range []struct {
		c    Codec
		name string
		op   wire.Opcode
	}{
		{Raw, "raw", wire.OpBinary},
		{JSON, "json", wire.OpText},
		{MsgPack, "msgpack", wire.OpBinary},
	} {
		if tc.c.Name() != tc.name || tc.c.Opcode() != tc.op || Subprotocol(tc.c) != "shockwave."+tc.name {
			t.Errorf("%s: name %q opcode %v subprotocol %q", tc.name, tc.c.Name(), tc.c.Opcode(), Subprotocol(tc.c))
		}
	}
}

// roundTrip encodes v after a prefix, checks the prefix is kept, and
// decodes into a new value of v's type.
func roundTrip[T any](t *testing.T, c Codec, v T) T {
	t.Helper()
	prefix := []byte("prefix")
	b, err := c.Append(bytes.Clone(prefix), v)
	if err != nil {
		t.Fatalf("%s: Append(%#v): %v", c.Name(), v, err)
	}
	if !bytes.HasPrefix(b, prefix) {
		t.Fatalf("%s: Append lost the prefix: %q", c.Name(), b)
	}
	var got T
	if err := c.Decode(b[len(prefix):], &got); err != nil {
		t.Fatalf("%s: Decode(%q): %v", c.Name(), b[len(prefix):], err)
	}
	return got
}

func TestRoundTrip(t *testing.T) {
	values := []struct {
		name string
		v    any
	}{
		{"chat", chatMessage()},
		{"empty chat", Chat{}},
		{"snapshot", snapshot(50)},
		{"empty snapshot", Snapshot{Entities: []Entity{}}},
		{"map", map[string]int{"a": 1, "b": -2}},
		{"strings", []string{"", "x", strings.Repeat("long ", 100), "\u2028\x00\"\\"}},
		{"int", int64(math.MinInt64)},
		{"uint", uint64(math.MaxUint64)},
		{"float", 1.5},
		{"bool", true},
	}
	for _, c := range []Codec{JSON, MsgPack} {
		for _, tc := range values {
			t.Run(c.Name()+"/"+tc.name, func(t *testing.T) {
				got := reflect.New(reflect.TypeOf(tc.v))
				b, err := c.Append(nil, tc.v)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Decode(b, got.Interface()); err != nil {
					t.Fatalf("Decode(%q): %v", b, err)
				}
				if !reflect.DeepEqual(got.Elem().Interface(), tc.v) {
					t.Fatalf("got %#v, want %#v", got.Elem().Interface(), tc.v)
				}
			})
		}
	}
}

func TestJSONIsCompactAndUnescaped(t *testing.T) {
	b, err := JSON.Append(nil, chatMessage())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"room":"lobby","from":"ada","text":"hello, shockwave! 👋 <b>&</b>","at":1732600000123}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestMsgPackUsesJSONTags(t *testing.T) {
	b, err := MsgPack.Append(nil, Chat{Text: "hi", At: 5})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["text"] != "hi" || m["at"] != int8(5) { // compact ints
		t.Fatalf("got %#v", m)
	}
}

func TestRaw(t *testing.T) {
	s := "payload"
	bs := []byte("bytes")
	for _, v := range []any{s, &s, bs, &bs} {
		b, err := Raw.Append([]byte("<"), v)
		if err != nil || (string(b) != "<payload" && string(b) != "<bytes") {
			t.Errorf("Append(%T) = %q, %v", v, b, err)
		}
	}
	if _, err := Raw.Append(nil, 42); err == nil {
		t.Error("Append(int) did not fail")
	}
	var nilBytes *[]byte
	if _, err := Raw.Append(nil, nilBytes); err == nil {
		t.Error("Append(nil *[]byte) did not fail")
	}
	data := []byte("data")
	out := make([]byte, 0, 16)
	if err := Raw.Decode(data, &out); err != nil || string(out) != "data" {
		t.Fatalf("Decode: %q %v", out, err)
	}
	data[0] = 'X'
	if string(out) != "data" {
		t.Fatal("Decode kept a reference to its input")
	}
	var str string
	if err := Raw.Decode(data, &str); err != nil || str != "Xata" {
		t.Fatalf("Decode(*string): %q %v", str, err)
	}
	if err := Raw.Decode(data, new(int)); err == nil {
		t.Fatal("Decode(*int) did not fail")
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		c    Codec
		data string
	}{
		{JSON, `{"room":`},
		{JSON, `{"at":"not a number"}`},
		{JSON, `{} {}`},
		{JSON, ``},
		{MsgPack, "\x81\xa2at\xa3str"}, // {"at": "str"}
		{MsgPack, "\x81\xa2at"},        // truncated
		{MsgPack, "\x80\x80"},          // trailing data
		{MsgPack, "\xc1"},              // never used
		{MsgPack, ""},
	} {
		var m Chat
		if err := tc.c.Decode([]byte(tc.data), &m); err == nil {
			t.Errorf("%s: Decode(%q) did not fail: %#v", tc.c.Name(), tc.data, m)
		}
	}
	// An error leaves dst as it was.
	for _, c := range []Codec{JSON, MsgPack} {
		b, err := c.Append([]byte("keep"), make(chan int))
		if err == nil || string(b) != "keep" {
			t.Errorf("%s: Append(chan) = %q, %v", c.Name(), b, err)
		}
	}
}

// TestNoAliasing checks that decoded strings do not share the input's
// memory, which a session reuses after the callback.
func TestNoAliasing(t *testing.T) {
	for _, c := range []Codec{JSON, MsgPack} {
		b, err := c.Append(nil, chatMessage())
		if err != nil {
			t.Fatal(err)
		}
		var m Chat
		if err := c.Decode(b, &m); err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] = 0
		}
		if m != chatMessage() {
			t.Errorf("%s: decoded value changed with its input: %#v", c.Name(), m)
		}
	}
}

// decodeTargets returns new values of the types the fuzz targets decode
// into: structs, and the slices and maps whose length a MessagePack
// header announces, which the library allocates up front.
func decodeTargets() []any {
	return []any{
		new(Chat), new(Snapshot), new(any), new([]byte), new(string),
		new([]int), new([]string), new([]Entity), new([]any),
		new(map[string]int), new(map[string]any),
	}
}

// allocated returns the bytes allocated on the heap so far, by all
// goroutines.
func allocated() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// maxDecodeAlloc bounds what decoding n bytes into every one of
// decodeTargets may allocate. A decoded value can be larger than its
// encoding (a one-byte nil becomes a 48-byte Entity), so the bound is a
// multiple of n, but not of a length the input merely announces.
func maxDecodeAlloc(n int) uint64 { return 1<<20 + 2048*uint64(n) }

// FuzzDecode decodes arbitrary bytes with every codec into several types:
// it must return an error or a value, never panic, and allocate in
// proportion to the input, whatever lengths and counts it announces.
func FuzzDecode(f *testing.F) {
	for _, c := range []Codec{JSON, MsgPack} {
		for _, v := range []any{chatMessage(), snapshot(3), map[string]any{"a": []any{1, "x", nil}}} {
			b, _ := c.Append(nil, v)
			f.Add(b)
			f.Add(b[:len(b)/2])
		}
	}
	for _, tc := range hugeCounts {
		f.Add([]byte(tc.in))
	}
	f.Add([]byte(strings.Repeat("[", 10001) + strings.Repeat("]", 10001)))
	f.Add([]byte(strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001)))
	f.Add([]byte(strings.Repeat("\x91", 10001) + "\xc0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []Codec{JSON, MsgPack, Raw} {
			before := allocated()
			for _, v := range decodeTargets() {
				_ = c.Decode(data, v)
			}
			if n := allocated() - before; n > maxDecodeAlloc(len(data)) {
				t.Fatalf("%s: decoding %d bytes (%.40q) allocated %d bytes", c.Name(), len(data), data, n)
			}
		}
	})
}

// hugeCounts are MessagePack values of ten bytes or so whose header
// announces far more elements or bytes than follow.
var hugeCounts = []struct {
	name, in string
}{
	{"array32", "\xdd\xff\xff\xff\xff\xc0\xc0\xc0\xc0\xc0"},
	{"map32", "\xdf\xff\xff\xff\xff\xa1a\xc0\xa1b\xc0"},
	{"str32", "\xdb\xff\xff\xff\xffabcde"},
	{"bin32", "\xc6\xff\xff\xff\xffabcde"},
	{"ext32", "\xc9\xff\xff\xff\xff\x01abcd"},
	{"array16", "\xdc\xff\xff\xc0\xc0\xc0\xc0\xc0\xc0\xc0"},
	{"map16", "\xde\xff\xff\xa1a\xc0\xa1b\xc0\xc0\xc0"},
	{"array32 in an array", "\x92\xc0\xdd\xff\xff\xff\xff\xc0\xc0\xc0"},
	{"map32 in a map", "\x81\xa1a\xdf\xff\xff\xff\xff\xa1a\xc0"},
	{"array32 of 2^31", "\xdd\x80\x00\x00\x00\xc0\xc0\xc0\xc0\xc0"},
	// The library unwraps a map or an array from an extension when the
	// target is one (FuzzDecode found it: 6 bytes, 1 MB).
	{"map16 in a fixext4", "\xd60\xde000"},
	{"map16 in a map in a fixext8", "\xd7\x01\x81\xa1k\xde\xff\xff\xc0"},
	{"array32 in an ext8", "\xc7\x06\x05\xdd\xff\xff\xff\xff\xc0"},
}

// TestMsgpackHugeCounts decodes ten-byte inputs that announce 4G
// elements into slices and maps, through Decode and through the Router's
// envelope. The msgpack library allocates what a header announces (an
// array32 of 2^20 nils, 10 bytes, costs it 16 MiB as []int, 80 MiB as
// map[string]any: see the "library" case); our decoder checks every
// length against the bytes left first, so each input fails at once.
func TestMsgpackHugeCounts(t *testing.T) {
	const budget = 64 << 10
	envelope := func(payload string) []byte { return []byte("\x82\xa1e\xa1x\xa1d" + payload) }
	for _, tc := range hugeCounts {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range decodeTargets() {
				decode := func() error { return MsgPack.Decode([]byte(tc.in), v) }
				routed := func() error {
					h, err := msgpackCodec{}.parseEnvelope(envelope(tc.in))
					if err != nil {
						return err
					}
					return msgpackCodec{}.decodeParsed(h.data, v)
				}
				for _, f := range []func() error{decode, routed} {
					f() // once for the library's caches of types
					before := allocated()
					err := f()
					if n := allocated() - before; err == nil || n > budget {
						t.Errorf("%T: %v, %d bytes allocated", v, err, n)
					}
				}
			}
		})
	}
	t.Run("library", func(t *testing.T) {
		// Without our check: 2^20 elements announced in ten bytes.
		in := []byte("\xdd\x00\x10\x00\x00\xc0\xc0\xc0\xc0\xc0")
		var v []int
		before := allocated()
		_ = msgpack.Unmarshal(in, &v)
		if n := allocated() - before; n < 8<<20 {
			t.Logf("msgpack.Unmarshal allocated %d bytes: the library no longer preallocates; Decode's check stays as a defence", n)
		}
	})
}

// TestMsgpackDecoderPool checks that a decoder that read a large message
// does not go back to the pool with the buffer it grew for it.
func TestMsgpackDecoderPool(t *testing.T) {
	big, err := MsgPack.Append(nil, strings.Repeat("x", 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := MsgPack.Decode(big, &s); err != nil || len(s) != 1<<20 {
		t.Fatalf("Decode: %d bytes, %v", len(s), err)
	}
	// The library keeps its read buffer in the unexported field buf; a
	// version without it makes this test pass vacuously.
	var got []*msgpackDecoder
	for range 4 {
		d := msgpackDecoders.Get().(*msgpackDecoder)
		got = append(got, d)
		buf := reflect.ValueOf(d.dec).Elem().FieldByName("buf")
		if buf.IsValid() && buf.Cap() > maxKeptBuf {
			t.Errorf("a pooled decoder holds a buffer of %d bytes", buf.Cap())
		}
	}
	for _, d := range got {
		msgpackDecoders.Put(d)
	}
}

// FuzzRoundTrip builds values from fuzzed fields and checks that every
// codec gives them back.
func FuzzRoundTrip(f *testing.F) {
	f.Add("lobby", "ada", "hello", int64(42), float32(1.5), uint32(7))
	f.Add("", "\xff\xfe", "\u2028", int64(math.MinInt64), float32(-0), uint32(math.MaxUint32))
	f.Fuzz(func(t *testing.T, room, from, text string, at int64, x float32, id uint32) {
		chat := Chat{Room: room, From: from, Text: text, At: at}
		snap := Snapshot{Tick: uint64(at), Entities: []Entity{{ID: id, X: x, Y: -x, Name: text}}}
		if got := roundTrip(t, MsgPack, chat); got != chat {
			t.Fatalf("msgpack: got %#v, want %#v", got, chat)
		}
		if math.IsNaN(float64(x)) {
			x = 0 // NaN != NaN
			snap.Entities[0].X, snap.Entities[0].Y = 0, 0
		}
		if got := roundTrip(t, MsgPack, snap); !reflect.DeepEqual(got, snap) {
			t.Fatalf("msgpack: got %#v, want %#v", got, snap)
		}
		if got := roundTrip(t, Raw, []byte(text)); string(got) != text {
			t.Fatalf("raw: got %q, want %q", got, text)
		}
		if got := roundTrip(t, Raw, text); got != text {
			t.Fatalf("raw: got %q, want %q", got, text)
		}
		// JSON strings are UTF-8: invalid bytes come back as U+FFFD.
		if !validUTF8(room, from, text) {
			return
		}
		if got := roundTrip(t, JSON, chat); got != chat {
			t.Fatalf("json: got %#v, want %#v", got, chat)
		}
		if math.IsInf(float64(x), 0) {
			if _, err := JSON.Append(nil, snap); err == nil {
				t.Fatal("json: infinity encoded")
			}
			return
		}
		if got := roundTrip(t, JSON, snap); !reflect.DeepEqual(got, snap) {
			t.Fatalf("json: got %#v, want %#v", got, snap)
		}
		// Our JSON is what encoding/json reads.
		b, _ := JSON.Append(nil, chat)
		if !json.Valid(b) {
			t.Fatalf("json: invalid output %q", b)
		}
	})
}

// validUTF8 reports whether every string is valid UTF-8 (their
// concatenation may be valid when they are not).
func validUTF8(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}
