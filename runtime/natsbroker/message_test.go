package natsbroker

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

// encode is encodedLen and appendMessage, checking that the length said
// is the length written.
func encode(t testing.TB, m runtime.Carried) []byte {
	t.Helper()
	n, err := encodedLen(m)
	if err != nil {
		t.Fatalf("encodedLen: %v", err)
	}
	b := appendMessage(nil, m)
	if len(b) != n {
		t.Fatalf("encodedLen %d, wrote %d", n, len(b))
	}
	return b
}

func variant(key string, op wire.Opcode, data string) runtime.Variant {
	return runtime.Variant{Key: key, Op: op, Data: []byte(data)}
}

// TestMessageRoundTrip: what appendMessage writes, decodeMessage reads
// back the same, for the shapes the runtime sends.
func TestMessageRoundTrip(t *testing.T) {
	big := strings.Repeat("x", 300) // lengths of two uvarint bytes
	for _, tc := range []struct {
		name string
		m    runtime.Carried
		want []byte // the body, when spelled out
	}{
		{"one text, no key", runtime.Carried{Variants: []runtime.Variant{variant("", wire.OpText, "hi")}},
			[]byte{1, 1, 0, 1, 2, 'h', 'i'}},
		{"empty binary", runtime.Carried{Variants: []runtime.Variant{variant("", wire.OpBinary, "")}},
			[]byte{1, 1, 0, 2, 0}},
		{"two codecs", runtime.Carried{Variants: []runtime.Variant{
			variant("shockwave.json", wire.OpText, `{"e":"x"}`),
			variant("shockwave.msgpack", wire.OpBinary, "\x81\xa1e\xa1x"),
		}}, nil},
		{"long data and key", runtime.Carried{Variants: []runtime.Variant{variant(big, wire.OpBinary, big+big)}}, nil},
		{"MaxVariants", runtime.Carried{Variants: []runtime.Variant{
			variant("a", wire.OpText, "1"), variant("b", wire.OpText, "2"),
			variant("c", wire.OpBinary, "3"), variant("d", wire.OpBinary, "\x00\xff"),
		}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := encode(t, tc.m)
			if tc.want != nil && !bytes.Equal(b, tc.want) {
				t.Fatalf("encoded % x, want % x", b, tc.want)
			}
			got, err := decodeMessage(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !sameCarried(got, tc.m) {
				t.Fatalf("decoded %+v, want %+v", got, tc.m)
			}
		})
	}
}

func sameCarried(a, b runtime.Carried) bool {
	if len(a.Variants) != len(b.Variants) {
		return false
	}
	for i := range a.Variants {
		x, y := a.Variants[i], b.Variants[i]
		if x.Key != y.Key || x.Op != y.Op || !bytes.Equal(x.Data, y.Data) {
			return false
		}
	}
	return true
}

// TestMessageRefused: messages that cannot be encoded, and bodies that
// do not decode, each for its reason.
func TestMessageRefused(t *testing.T) {
	five := make([]runtime.Variant, runtime.MaxVariants+1)
	for i := range five {
		five[i] = variant("", wire.OpText, "x")
	}
	for _, tc := range []struct {
		name string
		m    runtime.Carried
		want error
	}{
		{"no variant", runtime.Carried{}, errVariants},
		{"too many", runtime.Carried{Variants: five}, errVariants},
		{"a close frame", runtime.Carried{Variants: []runtime.Variant{variant("", wire.OpClose, "")}}, errOpcode},
		{"a continuation", runtime.Carried{Variants: []runtime.Variant{variant("", wire.OpContinuation, "")}}, errOpcode},
	} {
		if _, err := encodedLen(tc.m); err != tc.want {
			t.Errorf("encode %s: %v, want %v", tc.name, err, tc.want)
		}
	}

	huge := binary.AppendUvarint([]byte{1, 1}, 1<<62) // a key "of 4 EiB"
	over := append([]byte{1, 1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)
	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"empty", nil, errFormat},
		{"one byte", []byte{1}, errFormat},
		{"another version", []byte{2, 1, 0, 1, 0}, errFormat},
		{"no variant", []byte{1, 0}, errVariants},
		{"five variants", []byte{1, 5}, errVariants},
		{"no key length", []byte{1, 1}, errShort},
		{"key past the end", []byte{1, 1, 3, 'a', 'b'}, errShort},
		{"a huge key length", huge, errShort},
		{"a length past 64 bits", over, errShort},
		{"no opcode", []byte{1, 1, 0}, errShort},
		{"opcode 0", []byte{1, 1, 0, 0, 0}, errOpcode},
		{"a ping", []byte{1, 1, 0, 9, 0}, errOpcode},
		{"no data length", []byte{1, 1, 0, 1}, errShort},
		{"data past the end", []byte{1, 1, 0, 1, 2, 'x'}, errShort},
		{"second variant missing", []byte{1, 2, 0, 1, 1, 'x'}, errShort},
		{"trailing bytes", []byte{1, 1, 0, 1, 1, 'x', 0}, errTrailing},
	} {
		if _, err := decodeMessage(tc.body); err != tc.want {
			t.Errorf("decode %s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzDecodeMessage: no body makes the decoder panic or hold more than
// the body's bytes; what decodes encodes again to a body that decodes the
// same.
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range []runtime.Carried{
		{Variants: []runtime.Variant{variant("", wire.OpText, "hi")}},
		{Variants: []runtime.Variant{variant("shockwave.json", wire.OpText, `{"e":"x"}`), variant("shockwave.msgpack", wire.OpBinary, "\x81")}},
		{Variants: []runtime.Variant{variant("k", wire.OpBinary, strings.Repeat("z", 200))}},
	} {
		f.Add(encode(f, m))
	}
	f.Add([]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 4, 0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 2, 0})
	f.Add([]byte{1, 1, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := decodeMessage(body)
		if err != nil {
			return
		}
		held := 0
		for _, v := range m.Variants {
			held += len(v.Key) + len(v.Data)
			if v.Op != wire.OpText && v.Op != wire.OpBinary {
				t.Fatalf("opcode %v decoded", v.Op)
			}
		}
		if held > len(body) {
			t.Fatalf("%d bytes of keys and data from a body of %d", held, len(body))
		}
		again, err := decodeMessage(encode(t, m))
		if err != nil || !sameCarried(again, m) {
			t.Fatalf("re-encoded: %v, %+v, want %+v", err, again, m)
		}
	})
}

// untoken inverts token: a token has one room.
func untoken(t testing.TB, tok string) string {
	if !strings.HasPrefix(tok, "~") {
		if !safe(tok) {
			t.Fatalf("token %q neither safe nor encoded", tok)
		}
		return tok
	}
	b, err := base64.RawURLEncoding.DecodeString(tok[1:])
	if err != nil {
		t.Fatalf("token %q: %v", tok, err)
	}
	return string(b)
}

// tokenOK reports whether tok is one subject token that matches no
// wildcard but itself.
func tokenOK(tok string) bool {
	return tok == "~" || strings.HasPrefix(tok, "~") && safe(tok[1:]) || safe(tok)
}

// TestToken: rooms whose names are safe tokens keep them; the others are
// encoded, and no two rooms share a token.
func TestToken(t *testing.T) {
	for room, want := range map[string]string{
		"lobby":      "lobby",
		"match-42_b": "match-42_b",
		"a.b":        "~YS5i",
		"*":          "~Kg",
		">":          "~Pg",
		"two words":  "~dHdvIHdvcmRz",
		"café.1":     "~Y2Fmw6kuMQ",
		"~lobby":     "~fmxvYmJ5",
		"":           "~",
	} {
		if got := token(room); got != want {
			t.Errorf("token(%q) = %q, want %q", room, got, want)
		}
		if back := untoken(t, want); back != room {
			t.Errorf("untoken(%q) = %q, want %q", want, back, room)
		}
	}
	if got := Subject("app.sw", "a.b"); got != "app.sw.r.~YS5i" {
		t.Errorf("Subject: %q", got)
	}
}

// FuzzToken: every room's token is one safe subject token, and gives the
// room back.
func FuzzToken(f *testing.F) {
	for _, s := range []string{"lobby", "a.b", "*", ">", " ", "~x", "日本", "\x00", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, room string) {
		tok := token(room)
		if !tokenOK(tok) {
			t.Fatalf("token(%q) = %q: not a safe token", room, tok)
		}
		if back := untoken(t, tok); back != room {
			t.Fatalf("token(%q) = %q, which is room %q", room, tok, back)
		}
		if safe(room) && tok != room {
			t.Fatalf("a safe name encoded: %q", tok)
		}
	})
}

// TestEncodedLenUvarint: the lengths of lengths, across the uvarint
// boundaries.
func TestEncodedLenUvarint(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 1 << 21} {
		if got, want := uvarintLen(n), len(binary.AppendUvarint(nil, uint64(n))); got != want {
			t.Errorf("uvarintLen(%d) = %d, want %d", n, got, want)
		}
	}
	if !reflect.DeepEqual(appendMessage([]byte("x"), runtime.Carried{Variants: []runtime.Variant{variant("", wire.OpText, "")}}),
		[]byte{'x', 1, 1, 0, 1, 0}) {
		t.Error("appendMessage does not append")
	}
}
