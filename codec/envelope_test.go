package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// parsed is an inHeader with strings, for comparisons.
type parsed struct {
	Event, Room, Trace string
	HasEvent, HasID    bool
	ID                 uint64
	Epoch, Offset      uint64
	Data               string
}

func toParsed(h *inHeader) parsed {
	return parsed{
		Event: string(h.event), Room: string(h.room), Trace: string(h.trace),
		HasEvent: h.hasEvent, HasID: h.hasID, ID: h.id, Epoch: h.epoch, Offset: h.offset, Data: string(h.data),
	}
}

func parse(c envelopeCodec, data []byte) (parsed, error) {
	h, err := c.parseEnvelope(data)
	return toParsed(&h), err
}

func TestParseJSONEnvelope(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want parsed
	}{
		{"full", `{"e":"chat.send","r":"lobby","i":7,"t":"00-4bf9-01","d":{"text":"hi"}}`,
			parsed{Event: "chat.send", HasEvent: true, Room: "lobby", ID: 7, HasID: true, Trace: "00-4bf9-01", Data: `{"text":"hi"}`}},
		{"event only", `{"e":"ping"}`, parsed{Event: "ping", HasEvent: true}},
		{"spaces", " \t\r\n{ \"e\" : \"a\" , \"d\" : [ 1 , 2 ] } \n", parsed{Event: "a", HasEvent: true, Data: `[ 1 , 2 ]`}},
		{"escaped event", `{"e":"ch\u0061t\n"}`, parsed{Event: "chat\n", HasEvent: true}},
		{"unknown keys", `{"zz":[1,{"a":null,"b":-1.5e+3}],"e":"x","ee":{"e":"no"},"\u0065":"y"}`, parsed{Event: "x", HasEvent: true}},
		{"null fields", `{"e":"x","r":null,"t":null,"i":null,"d":null}`, parsed{Event: "x", HasEvent: true, Data: "null"}},
		{"id zero", `{"e":"x","i":0}`, parsed{Event: "x", HasEvent: true, HasID: true}},
		{"largest id", `{"e":"x","i":18446744073709551615}`, parsed{Event: "x", HasEvent: true, HasID: true, ID: 1<<64 - 1}},
		{"no event", `{"i":3}`, parsed{HasID: true, ID: 3}},
		{"empty", `{}`, parsed{}},
		{"last wins", `{"e":"a","e":"b"}`, parsed{Event: "b", HasEvent: true}},
		{"string payload", `{"e":"x","d":"a\"b\\"}`, parsed{Event: "x", HasEvent: true, Data: `"a\"b\\"`}},
		{"literals", `{"e":"x","d":[true,false,null,0,-0.5,1E9]}`, parsed{Event: "x", HasEvent: true, Data: `[true,false,null,0,-0.5,1E9]`}},
		{"position", `{"e":"x","g":4503599627,"o":17}`, parsed{Event: "x", HasEvent: true, Epoch: 4503599627, Offset: 17}},
		{"largest position", `{"e":"x","g":18446744073709551615,"o":18446744073709551615}`,
			parsed{Event: "x", HasEvent: true, Epoch: 1<<64 - 1, Offset: 1<<64 - 1}},
		// A position that is not a 64-bit non-negative integer is
		// ignored, never an error: only a server sends one.
		{"position past 64 bits", `{"e":"x","g":18446744073709551616,"o":99999999999999999999999}`, parsed{Event: "x", HasEvent: true}},
		{"position not an integer", `{"e":"x","g":-1,"o":1.5,"i":2}`, parsed{Event: "x", HasEvent: true, HasID: true, ID: 2}},
		{"position of other types", `{"e":"x","g":"7","o":[1]}`, parsed{Event: "x", HasEvent: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(jsonCodec{}, []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseJSONEnvelopeErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{``, errNotEnvelope},
		{`[]`, errNotEnvelope},
		{`"e"`, errNotEnvelope},
		{`null`, errNotEnvelope},
		{`{`, errSyntax},
		{`{"e"`, errSyntax},
		{`{"e":`, errSyntax},
		{`{"e":"x"`, errSyntax},
		{`{"e":"x",}`, errSyntax},
		{`{"e":"x" "r":"y"}`, errSyntax},
		{`{e:"x"}`, errSyntax},
		{`{"e":"\q"}`, errSyntax},
		{`{"e":"\u12"}`, errSyntax},
		{"{\"e\":\"a\nb\"}", errSyntax},
		{`{"e":"x","d":tru}`, errSyntax},
		{`{"e":"x","d":01}`, errSyntax},
		{`{"e":"x","d":1.}`, errSyntax},
		{`{"e":"x","d":-}`, errSyntax},
		{`{"e":"x","d":1e}`, errSyntax},
		{`{"e":"x","d":[1,]}`, errSyntax},
		{`{"e":"x","d":{"a"}}`, errSyntax},
		{`{"e":"x","d":{"a":1,}}`, errSyntax},
		{`{"e":"x"} x`, errTrailingEnv},
		{`{"e":"x"}{}`, errTrailingEnv},
		{`{"e":1}`, errFieldType},
		{`{"e":null}`, errFieldType},
		{`{"e":"x","r":5}`, errFieldType},
		{`{"e":"x","t":[]}`, errFieldType},
		{`{"e":"x","i":-1}`, errBadID},
		{`{"e":"x","i":1.5}`, errBadID},
		{`{"e":"x","i":1e3}`, errBadID},
		{`{"e":"x","i":"1"}`, errBadID},
		{`{"e":"x","i":18446744073709551616}`, errBadID},
		{`{"e":"x","d":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`, errTooDeep},
		// The envelope counts as a level, as encoding/json counts it.
		{`{"e":"x","d":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`, errTooDeep},
		{`{"e":"x","d":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}`, nil},
	} {
		_, err := parse(jsonCodec{}, []byte(tc.in))
		if err != tc.want {
			t.Errorf("%.60q: got %v, want %v", tc.in, err, tc.want)
		}
		if err == errSyntax || err == errTrailingEnv || err == errTooDeep {
			if json.Valid([]byte(tc.in)) {
				t.Errorf("%.60q: %v, but encoding/json finds it valid", tc.in, err)
			}
		}
		if err == nil && !json.Valid([]byte(tc.in)) {
			t.Errorf("%.60q: parsed, but encoding/json finds it invalid", tc.in)
		}
	}
}

// mp encodes v with the msgpack library, for building test inputs.
func mp(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseMsgpackEnvelope(t *testing.T) {
	payload := mp(t, map[string]any{"text": "hi", "n": []any{1, -2, 3.5, nil, true, []byte{1}}})
	for _, tc := range []struct {
		name string
		in   any
		want parsed
	}{
		{"full", map[string]any{"e": "chat.send", "r": "lobby", "i": 7, "t": "00-4bf9-01", "d": msgpack.RawMessage(payload)},
			parsed{Event: "chat.send", HasEvent: true, Room: "lobby", ID: 7, HasID: true, Trace: "00-4bf9-01", Data: string(payload)}},
		{"event only", map[string]any{"e": "ping"}, parsed{Event: "ping", HasEvent: true}},
		{"int8 id", map[string]any{"e": "x", "i": int8(5)}, parsed{Event: "x", HasEvent: true, HasID: true, ID: 5}},
		{"uint64 id", map[string]any{"e": "x", "i": uint64(1<<64 - 1)}, parsed{Event: "x", HasEvent: true, HasID: true, ID: 1<<64 - 1}},
		{"int64 id", map[string]any{"e": "x", "i": int64(1 << 40)}, parsed{Event: "x", HasEvent: true, HasID: true, ID: 1 << 40}},
		{"nil fields", map[string]any{"e": "x", "i": nil, "r": nil, "t": nil}, parsed{Event: "x", HasEvent: true}},
		{"unknown keys", map[string]any{"e": "x", "zz": map[string]any{"e": "no"}, "q": []any{1, 2}}, parsed{Event: "x", HasEvent: true}},
		{"long event", map[string]any{"e": strings.Repeat("e", 300)}, parsed{Event: strings.Repeat("e", 300), HasEvent: true}},
		{"no event", map[string]any{"i": 3}, parsed{HasID: true, ID: 3}},
		{"position", map[string]any{"e": "x", "g": uint64(4503599627), "o": int8(17)}, parsed{Event: "x", HasEvent: true, Epoch: 4503599627, Offset: 17}},
		{"largest position", map[string]any{"e": "x", "g": uint64(1<<64 - 1), "o": uint64(1<<64 - 1)},
			parsed{Event: "x", HasEvent: true, Epoch: 1<<64 - 1, Offset: 1<<64 - 1}},
		{"position not a non-negative integer", map[string]any{"e": "x", "g": int64(-1), "o": 1.5}, parsed{Event: "x", HasEvent: true}},
		{"position of other types", map[string]any{"e": "x", "g": "7", "o": []any{1}}, parsed{Event: "x", HasEvent: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(msgpackCodec{}, mp(t, tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseMsgpackEnvelopeErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", errNotEnvelope},
		{"\x90", errNotEnvelope},     // []
		{"\xa1e", errNotEnvelope},    // "e"
		{"\x81", errSyntax},          // map of one pair, nothing in it
		{"\x81\xa1e", errSyntax},     // no value
		{"\x81\x01\xa1x", errSyntax}, // integer key
		{"\x81\xa1e\xa5ab", errSyntax},
		{"\xdf\xff\xff\xff\xff\xa1e\xa1x", errSyntax}, // 4G pairs
		{"\x81\xa1d\xdd\xff\xff\xff\xff", errSyntax},  // an array of 4G elements
		{"\x81\xa1d\xc1", errSyntax},
		{"\x81\xa1e\xa1x\xc0", errTrailingEnv},
		{"\x81\xa1e\x05", errFieldType},
		{"\x81\xa1e\xc0", errFieldType},
		{"\x82\xa1e\xa1x\xa1r\x05", errFieldType},
		{"\x82\xa1e\xa1x\xa1i\xff", errBadID},                                 // -1
		{"\x82\xa1e\xa1x\xa1i\xd3\x80\x00\x00\x00\x00\x00\x00\x00", errBadID}, // MinInt64
		{"\x82\xa1e\xa1x\xa1i\xa11", errBadID},
		{"\x82\xa1e\xa1x\xa1i\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", errBadID}, // 1.0
		{"\x81\xa1d" + strings.Repeat("\x91", maxDepth+1) + "\xc0", errTooDeep},
	} {
		_, err := parse(msgpackCodec{}, []byte(tc.in))
		if err != tc.want {
			t.Errorf("%.40q: got %v, want %v", tc.in, err, tc.want)
		}
	}
}

// TestMsgpackLengths checks every MessagePack header that carries a
// length or a count at its boundaries: announcing what follows parses,
// one more byte or element, or the largest number the header holds, is a
// syntax error, found without reading or allocating past the input.
func TestMsgpackLengths(t *testing.T) {
	const k = 3 // bytes or elements that follow the header
	for _, tc := range []struct {
		name  string
		code  byte
		width int  // bytes of the length; 0 if in the code
		elems int  // values per element: 0 for bytes, 1 array, 2 map
		ext   bool // a type byte follows the length
	}{
		{"fixstr", 0xa0, 0, 0, false},
		{"str8", 0xd9, 1, 0, false},
		{"str16", 0xda, 2, 0, false},
		{"str32", 0xdb, 4, 0, false},
		{"bin8", 0xc4, 1, 0, false},
		{"bin16", 0xc5, 2, 0, false},
		{"bin32", 0xc6, 4, 0, false},
		{"ext8", 0xc7, 1, 0, true},
		{"ext16", 0xc8, 2, 0, true},
		{"ext32", 0xc9, 4, 0, true},
		{"fixarray", 0x90, 0, 1, false},
		{"array16", 0xdc, 2, 1, false},
		{"array32", 0xdd, 4, 1, false},
		{"fixmap", 0x80, 0, 2, false},
		{"map16", 0xde, 2, 2, false},
		{"map32", 0xdf, 4, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			largest := uint64(1)<<(8*tc.width) - 1
			if tc.width == 0 {
				largest = 31 // fixstr; fixarray and fixmap hold 15
				if tc.elems > 0 {
					largest = 15
				}
			}
			value := func(n uint64) []byte {
				b := []byte{tc.code}
				if tc.width == 0 {
					b[0] |= byte(n)
				}
				for i := tc.width - 1; i >= 0; i-- {
					b = append(b, byte(n>>(8*i)))
				}
				if tc.ext {
					b = append(b, 0x01)
				}
				body := k * max(1, tc.elems)
				return append(b, bytes.Repeat([]byte{0xc0}, body)...)
			}
			for _, n := range []uint64{k, k + 1, largest} {
				v := value(n)
				end, err := mpSkip(v, 0, 0)
				if ok := n == k; ok != (err == nil) || ok && end != len(v) || !ok && err != errSyntax {
					t.Errorf("announcing %d: mpSkip(% x) = %d, %v", n, v, end, err)
				}
				// In an envelope, as the payload and as a field.
				env := append([]byte("\x82\xa1e\xa1x\xa1d"), v...)
				if _, err := parse(msgpackCodec{}, env); (n == k) != (err == nil) {
					t.Errorf("announcing %d: envelope % x: %v", n, env, err)
				}
				switch {
				case tc.code == 0xa0 || tc.code >= 0xd9 && tc.code <= 0xdb:
					s, end, err := mpStr(v, 0)
					if (n == k) != (err == nil) || err == nil && (len(s) != k || end != len(v)) {
						t.Errorf("announcing %d: mpStr(% x) = %q, %d, %v", n, v, s, end, err)
					}
				case tc.elems == 2:
					pairs, end, err := mpMapHeader(v, 0)
					if (n == k) != (err == nil) || err == nil && (pairs != k || end != 1+tc.width) {
						t.Errorf("announcing %d: mpMapHeader(% x) = %d, %d, %v", n, v, pairs, end, err)
					}
				}
			}
		})
	}
}

// wireEnvelope is the envelope as a client reads it.
type wireEnvelope struct {
	E string          `json:"e" msgpack:"e"`
	R string          `json:"r" msgpack:"r"`
	I *uint64         `json:"i" msgpack:"i"`
	T string          `json:"t" msgpack:"t"`
	D json.RawMessage `json:"d" msgpack:"-"`
	X *Error          `json:"x" msgpack:"x"`
}

func TestAppendEnvelope(t *testing.T) {
	id := uint64(300)
	for _, tc := range []struct {
		name string
		h    outHeader
		v    any
		json string
	}{
		{"event", outHeader{event: "chat.msg", room: "lobby"}, Chat{Text: "hi"},
			`{"e":"chat.msg","r":"lobby","d":{"room":"","from":"","text":"hi","at":0}}`},
		{"no payload", outHeader{event: "tick"}, nil, `{"e":"tick"}`},
		{"reply", outHeader{id: id, hasID: true}, []int{1, 2}, `{"i":300,"d":[1,2]}`},
		{"empty reply", outHeader{hasID: true}, nil, `{"i":0}`},
		{"error reply", outHeader{id: id, hasID: true, err: &Error{Code: "nope", Message: `no "way"`}}, nil,
			`{"i":300,"x":{"code":"nope","message":"no \"way\""}}`},
		{"error event", outHeader{event: EventError, err: &Error{Code: "c", Message: "m"}}, nil,
			`{"e":"error","x":{"code":"c","message":"m"}}`},
		{"trace", outHeader{event: "e", trace: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, "x",
			`{"e":"e","t":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","d":"x"}`},
		{"escapes", outHeader{event: "a\"\\\n\x01\u2028<>&\xff"}, nil, `{"e":"a\"\\\n\u0001\u2028<>&\ufffd"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := jsonCodec{}.appendEnvelope([]byte("pre"), tc.h, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != "pre"+tc.json {
				t.Fatalf("got  %s\nwant pre%s", b, tc.json)
			}
			var w wireEnvelope
			if err := json.Unmarshal(b[3:], &w); err != nil {
				t.Fatal(err)
			}
			// The same envelope in MessagePack reads the same.
			m, err := msgpackCodec{}.appendEnvelope(nil, tc.h, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			var wm map[string]any
			if err := msgpack.Unmarshal(m, &wm); err != nil {
				t.Fatal(err)
			}
			var wj map[string]any
			if err := json.Unmarshal(b[3:], &wj); err != nil {
				t.Fatal(err)
			}
			if len(wm) != len(wj) {
				t.Fatalf("msgpack has keys %v, json %v", wm, wj)
			}
			for k, want := range map[string]string{"e": tc.h.event, "r": tc.h.room, "t": tc.h.trace} {
				if want == "" {
					continue
				}
				if wm[k] != want {
					t.Errorf("msgpack key %s: got %q, want %q", k, wm[k], want)
				}
				if utf8.ValidString(want) && wj[k] != want {
					t.Errorf("json key %s: got %q, want %q", k, wj[k], want)
				}
			}
		})
	}
}

func TestAppendEnvelopeError(t *testing.T) {
	for _, c := range []envelopeCodec{jsonCodec{}, msgpackCodec{}} {
		b, err := c.appendEnvelope([]byte("keep"), outHeader{event: "x"}, func() {})
		if err == nil || string(b) != "keep" {
			t.Errorf("%s: got %q, %v", c.Name(), b, err)
		}
	}
}

// FuzzParseEnvelope parses arbitrary bytes as envelopes in both codecs: no
// panic, and agreement with the reference decoders on what is well-formed.
func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"e":"chat.send","r":"lobby","i":7,"t":"00-4bf9-01","d":{"text":"hi"}}`,
		`{"e":"x","d":[true,false,null,0,-0.5,1E9,"\u00e9\n"]}`,
		`{"i":18446744073709551615}`,
		`{"e":"x","i":1.5}`,
	} {
		f.Add([]byte(s))
	}
	for _, v := range []map[string]any{
		{"e": "chat.send", "r": "lobby", "i": 7, "d": map[string]any{"a": []any{1.5, "x", nil, true, []byte{1}}}},
		{"e": "x", "i": int64(-1)},
	} {
		f.Add(mp(f, v))
	}
	for _, tc := range hugeCounts {
		f.Add([]byte("\x82\xa1e\xa1x\xa1d" + tc.in))
	}
	f.Add([]byte("\xdf\xff\xff\xff\xff\xa1e\xa1x"))
	f.Add([]byte(`{"e":"x","d":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`))
	f.Add([]byte("\x82\xa1e\xa1x\xa1d" + strings.Repeat("\x91", maxDepth) + "\xc0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The payload of an envelope that parses decodes into the types
		// a handler takes, in proportion to the message.
		for _, c := range []envelopeCodec{jsonCodec{}, msgpackCodec{}} {
			h, err := c.parseEnvelope(data)
			if err != nil || h.data == nil {
				continue
			}
			before := allocated()
			for _, v := range decodeTargets() {
				_ = c.decodeParsed(h.data, v)
			}
			if n := allocated() - before; n > maxDecodeAlloc(len(data)) {
				t.Fatalf("%s: decoding a payload of %d bytes (%.40q) allocated %d bytes", c.Name(), len(h.data), h.data, n)
			}
		}
		h, err := jsonCodec{}.parseEnvelope(data)
		switch err {
		case nil:
			if !json.Valid(data) {
				t.Fatalf("json: accepted %q, which encoding/json rejects", data)
			}
			if h.data != nil {
				var v any
				if err := json.Unmarshal(h.data, &v); err != nil {
					t.Fatalf("json: payload %q: %v", h.data, err)
				}
			}
		case errSyntax, errTrailingEnv:
			if json.Valid(data) {
				t.Fatalf("json: rejected %q (%v), which encoding/json accepts", data, err)
			}
		}
		if h, err := (msgpackCodec{}).parseEnvelope(data); err == nil {
			var m map[string]msgpack.RawMessage
			if err := msgpack.Unmarshal(data, &m); err != nil {
				t.Fatalf("msgpack: accepted %q, which the library rejects: %v", data, err)
			}
			if h.data != nil {
				var v any
				_ = decodeMsgpack(h.data, &v) // may fail (unknown ext), must not panic or blow up
			}
		}
	})
}

// FuzzEnvelopeRoundTrip encodes envelopes of fuzzed fields and parses them
// back in both codecs.
func FuzzEnvelopeRoundTrip(f *testing.F) {
	f.Add("chat.send", "lobby", "00-4bf9-01", uint64(7), true, "hello")
	f.Add("", "", "", uint64(0), false, "")
	f.Add("\xff", "\u2028", "\"", uint64(1<<64-1), true, strings.Repeat("x", 70000))
	f.Fuzz(func(t *testing.T, event, room, trace string, id uint64, hasID bool, text string) {
		h := outHeader{event: event, room: room, trace: trace, id: id, hasID: hasID}
		chat := Chat{Text: text}
		for _, c := range []envelopeCodec{jsonCodec{}, msgpackCodec{}} {
			if c.Name() == "json" && !validUTF8(event, room, trace, text) {
				continue // JSON strings are UTF-8
			}
			b, err := c.appendEnvelope(nil, h, chat)
			if err != nil {
				t.Fatalf("%s: %v", c.Name(), err)
			}
			got, err := parse(c, b)
			if err != nil {
				t.Fatalf("%s: parse(%q): %v", c.Name(), b, err)
			}
			want := parsed{Event: event, HasEvent: event != "", Room: room, Trace: trace, HasID: hasID, ID: id, Data: got.Data}
			if !hasID {
				want.ID = 0
			}
			if got != want {
				t.Fatalf("%s: got %+v, want %+v", c.Name(), got, want)
			}
			var m Chat
			if err := c.Decode([]byte(got.Data), &m); err != nil || !reflect.DeepEqual(m, chat) {
				t.Fatalf("%s: payload %q: %#v %v", c.Name(), got.Data, m, err)
			}
		}
	})
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{errNotEnvelope, errSyntax, errTooDeep, errTrailingEnv, errFieldType, errBadID}
	for i, a := range all {
		for _, b := range all[i+1:] {
			if errors.Is(a, b) || a.Error() == b.Error() {
				t.Errorf("%v and %v are alike", a, b)
			}
		}
	}
}
