package natsbroker

import (
	"bytes"
	"encoding/base64"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// seq yields m's keys and infos.
func seq(m map[string]any) func(func(string, any) bool) {
	return func(yield func(string, any) bool) {
		for k, v := range m {
			if !yield(k, v) {
				return
			}
		}
	}
}

// TestPresenceRoundTrip: what appendPresence writes, decodePresence reads
// back as encoding/json decodes the infos into any.
func TestPresenceRoundTrip(t *testing.T) {
	type card struct {
		Name string `json:"name"`
		Age  int    `json:"age"`
	}
	big := strings.Repeat("k", 300) // a length of two uvarint bytes
	for _, tc := range []struct {
		name string
		in   map[string]any
		want map[string]any
		body []byte // the value, when spelled out
	}{
		{"none", map[string]any{}, map[string]any{}, []byte{1, 0, 0}},
		{"nil info", map[string]any{"a": nil}, map[string]any{"a": nil}, []byte{1, 0, 1, 1, 'a', 0}},
		{"string", map[string]any{"a": "A"}, map[string]any{"a": "A"}, []byte{1, 0, 1, 1, 'a', 3, '"', 'A', '"'}},
		{"empty key", map[string]any{"": 1}, map[string]any{"": 1.0}, nil},
		{"struct and number", map[string]any{"alice": card{"Alice", 30}, "bob": 7},
			map[string]any{"alice": map[string]any{"name": "Alice", "age": 30.0}, "bob": 7.0}, nil},
		{"long key", map[string]any{big: []string{"x"}}, map[string]any{big: []any{"x"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, left, bad, err := appendPresence(nil, seq(tc.in), 1<<20)
			if left != 0 || bad != 0 || err != nil {
				t.Fatalf("left %d, bad %d, %v", left, bad, err)
			}
			if tc.body != nil && !bytes.Equal(v, tc.body) {
				t.Fatalf("encoded % x, want % x", v, tc.body)
			}
			got, err := decodePresence(v)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decoded %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestPresenceLimits: an info that does not marshal goes as null, and is
// counted; keys past the limit are left out, counted, and the value says
// so; it stays within the limit.
func TestPresenceLimits(t *testing.T) {
	v, left, bad, err := appendPresence(nil, seq(map[string]any{"nan": math.NaN(), "ch": make(chan int), "ok": true}), 1<<20)
	if left != 0 || bad != 2 || err == nil {
		t.Fatalf("left %d, bad %d, %v: want 2 bad infos", left, bad, err)
	}
	got, err := decodePresence(v)
	if want := map[string]any{"nan": nil, "ch": nil, "ok": true}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %v, %v, want %v", got, err, want)
	}

	keys := map[string]any{}
	for i := range 100 {
		keys[strings.Repeat("x", i+1)] = "info"
	}
	const limit = 1000
	v, left, _, _ = appendPresence(nil, seq(keys), limit)
	if len(v) > limit || left == 0 || v[1] != presenceTruncated {
		t.Fatalf("%d bytes, %d keys left out, flags %d: want at most %d bytes, some left out, flagged", len(v), left, v[1], limit)
	}
	got, err = decodePresence(v)
	if err != nil || len(got)+left != len(keys) {
		t.Fatalf("decoded %d keys (%v), %d left out, of %d", len(got), err, left, len(keys))
	}
}

// TestPresenceRefused: values that are not entries of format 1 are
// refused, never half read.
func TestPresenceRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"empty", nil, errPresenceFormat},
		{"short", []byte{1, 0}, errPresenceFormat},
		{"version 2", []byte{2, 0, 0}, errPresenceFormat},
		{"unknown flag", []byte{1, 2, 0}, errPresenceFormat},
		{"count past 64 bits", []byte{1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, errShort},
		{"count past the bytes", []byte{1, 0, 3, 0, 0, 0, 0}, errPresenceCount},
		{"huge count", []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0}, errPresenceCount},
		{"key past the end", []byte{1, 0, 1, 5, 'a', 0}, errShort},
		{"info past the end", []byte{1, 0, 1, 1, 'a', 9, '1'}, errShort},
		{"info not JSON", []byte{1, 0, 1, 1, 'a', 1, '{'}, errPresenceInfo},
		{"key twice", []byte{1, 0, 2, 1, 'a', 0, 1, 'a', 0}, errPresenceDup},
		{"trailing", []byte{1, 0, 1, 1, 'a', 0, 0}, errTrailing},
	} {
		if _, err := decodePresence(tc.b); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
}

// FuzzDecodePresence: no value makes the decoder panic or hold more keys
// than the value has bytes; what decodes encodes again to a value that
// decodes the same.
func FuzzDecodePresence(f *testing.F) {
	for _, m := range []map[string]any{
		{},
		{"alice": "Alice", "bob": nil},
		{"k": map[string]any{"name": "x", "n": 1.5}, "": []any{true, "y"}},
	} {
		v, _, _, _ := appendPresence(nil, seq(m), 1<<20)
		f.Add(v)
	}
	f.Add([]byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 1, 2, 1, 'a', 0, 1, 'b', 4, 'n', 'u', 'l', 'l'})
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := decodePresence(b)
		if err != nil {
			return
		}
		if 2*len(keys) > len(b) {
			t.Fatalf("%d keys from %d bytes", len(keys), len(b))
		}
		v, left, bad, err := appendPresence(nil, seq(keys), 1<<20)
		if left != 0 || bad != 0 || err != nil {
			t.Fatalf("re-encoded: left %d, bad %d, %v", left, bad, err)
		}
		again, err := decodePresence(v)
		if err != nil || !reflect.DeepEqual(again, keys) {
			t.Fatalf("re-encoded: %v, %#v, want %#v", err, again, keys)
		}
	})
}

// TestKVToken: a room's token in the bucket's keys is a valid key token
// of its own, and names one room.
func TestKVToken(t *testing.T) {
	seen := map[string]string{}
	for _, room := range []string{"lobby", "=lobby", "~lobby", "a.b", "*", ">", "café", "a b", "=", "Zm9v", "=Zm9v"} {
		tok := kvToken(room)
		for _, c := range []byte(tok) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=') {
				t.Errorf("%q: token %q has %q, not allowed in a key token", room, tok, c)
			}
		}
		if prev, ok := seen[tok]; ok {
			t.Errorf("%q and %q share the token %q", room, prev, tok)
		}
		seen[tok] = room
		back := tok
		if strings.HasPrefix(tok, "=") {
			b, err := base64.RawURLEncoding.DecodeString(tok[1:])
			if err != nil {
				t.Fatalf("%q: %v", tok, err)
			}
			back = string(b)
		}
		if back != room {
			t.Errorf("token %q is room %q, want %q", tok, back, room)
		}
	}
	if got := bucketName("app.eu"); got != "app_eu_presence" {
		t.Errorf("bucketName: %q", got)
	}
}
