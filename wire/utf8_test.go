package wire_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shockwave-go/shockwave/wire"
)

// validPrefix reports whether p is valid UTF-8 or can be made valid by
// appending bytes: whole characters followed by at most one unfinished one
// whose bytes so far can still start a valid character. utf8.FullRune is
// false exactly for such an unfinished start.
func validPrefix(p []byte) bool {
	for t := 0; t <= 3 && t <= len(p); t++ {
		if utf8.Valid(p[:len(p)-t]) && (t == 0 || !utf8.FullRune(p[len(p)-t:])) {
			return true
		}
	}
	return false
}

// validateChunks feeds the chunks to a fresh validator and reports whether
// the whole input is valid UTF-8.
func validateChunks(chunks ...[]byte) bool {
	var v wire.UTF8Validator
	for _, c := range chunks {
		if !v.Write(c) {
			return false
		}
	}
	return v.Complete()
}

// utf8Inputs are valid and invalid inputs, with characters of every length
// and the edges of every range in RFC 3629's table.
var utf8Inputs = []string{
	"",
	"a",
	"hello, world",
	"é",
	"€",
	"𝄞",
	"\u0080\u07FF\u0800\uFFFF\U00010000\U0010FFFF",
	"\uD7FF\uE000",
	"κόσμε",
	"mixed ASCII é € 𝄞 and more ASCII to pass a word boundary or two",
	strings.Repeat("é€𝄞x", 20),
	"\xC0\x80",             // overlong NUL
	"\xC1\xBF",             // overlong
	"\xE0\x80\x80",         // overlong
	"\xE0\x9F\xBF",         // overlong
	"\xF0\x80\x80\x80",     // overlong
	"\xF0\x8F\xBF\xBF",     // overlong
	"\xED\xA0\x80",         // surrogate U+D800
	"\xED\xBF\xBF",         // surrogate U+DFFF
	"\xF4\x90\x80\x80",     // U+110000
	"\xF5\x80\x80\x80",     // above U+10FFFF
	"\xF8\x88\x80\x80\x80", // 5-byte form
	"\xFF",
	"\xFE",
	"\x80",         // lone continuation
	"a\xBFb",       // lone continuation
	"\xC2",         // truncated at the end
	"\xE2\x82",     // truncated at the end
	"\xF0\x9D\x84", // truncated at the end
	"\xC2a",        // continuation missing
	"\xE2\x82a",    // continuation missing
	"\xF0\x9D\x84a",
	"ok \xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80edited",
	"κόσμε\xF4\x90\x80\x80",
	strings.Repeat("a", 40) + "\xE2\x82\xAC" + strings.Repeat("b", 40) + "\xC3",
}

// TestUTF8Splits feeds every input whole, split in two at every position,
// split in three at every pair of positions and byte by byte, and checks the
// verdict against utf8.Valid.
func TestUTF8Splits(t *testing.T) {
	for _, s := range utf8Inputs {
		p := []byte(s)
		want := utf8.Valid(p)
		if got := validateChunks(p); got != want {
			t.Errorf("%q whole: %v, want %v", s, got, want)
		}
		for i := 0; i <= len(p); i++ {
			if got := validateChunks(p[:i], p[i:]); got != want {
				t.Errorf("%q split at %d: %v, want %v", s, i, got, want)
			}
			if len(p) > 40 {
				continue
			}
			for j := i; j <= len(p); j++ {
				if got := validateChunks(p[:i], p[i:j], p[j:]); got != want {
					t.Errorf("%q split at %d and %d: %v, want %v", s, i, j, got, want)
				}
			}
		}
		var bytewise [][]byte
		for i := range p {
			bytewise = append(bytewise, p[i:i+1])
		}
		if got := validateChunks(bytewise...); got != want {
			t.Errorf("%q byte by byte: %v, want %v", s, got, want)
		}
	}
}

// TestUTF8FailFast checks that a prefix no valid text starts with is
// rejected by the Write that completes it, before the rest arrives, both
// whole and byte by byte.
func TestUTF8FailFast(t *testing.T) {
	invalid := []string{
		"\xF4\x90", // above U+10FFFF
		"\xED\xA0", // surrogate
		"\xC0",     // overlong lead
		"\xC1",
		"\xE0\x80", // overlong
		"\xE0\x9F",
		"\xF0\x80", // overlong
		"\xF0\x8F",
		"\xF5", "\xF8", "\xFF",
		"\x80", "\xBF",
		"\xC2\x41", "\xC2\xC0",
		"\xE1\x80\x41", "\xE1\x41",
		"\xF1\x80\x80\x41", "\xF1\x80\x41",
		"abc\xED\xA0",
		strings.Repeat("a", 100) + "\xF4\x90",
	}
	for _, s := range invalid {
		var v wire.UTF8Validator
		if v.Write([]byte(s)) {
			t.Errorf("Write(%q) = true, want false", s)
		}
		v.Reset()
		for i := range len(s) {
			ok := v.Write([]byte{s[i]})
			if last := i == len(s)-1; ok == last {
				t.Errorf("%q byte by byte: Write of byte %d = %v, want %v", s, i, ok, !last)
				break
			}
		}
	}
	// The longest valid beginnings of the same characters are accepted,
	// as incomplete.
	incomplete := []string{"\xF4\x8F", "\xED\x9F", "\xE0\xA0", "\xF0\x90", "\xF0\x90\x80", "\xC2", "\xF3\xBF\xBF", "abc\xE2\x82"}
	for _, s := range incomplete {
		var v wire.UTF8Validator
		if !v.Write([]byte(s)) || v.Complete() {
			t.Errorf("Write(%q): want true and incomplete", s)
		}
	}
}

// TestUTF8Exhaustive compares the validator with the reference on every
// sequence of up to four bytes drawn from the bytes at the edges of the
// ranges of RFC 3629, fed byte by byte and as split in two: each Write must
// accept exactly the valid prefixes.
func TestUTF8Exhaustive(t *testing.T) {
	alphabet := []byte{0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
		0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF}
	maxLen := 4
	if testing.Short() {
		maxLen = 3
	}
	p := make([]byte, 0, maxLen)
	var rec func()
	rec = func() {
		var v wire.UTF8Validator
		for i := range p {
			if got, want := v.Write(p[i:i+1]), validPrefix(p[:i+1]); got != want {
				t.Fatalf("% x byte by byte: Write of byte %d = %v, want %v", p, i, got, want)
			} else if !got {
				break
			}
		}
		if got, want := validateChunks(p[:len(p)/2], p[len(p)/2:]), utf8.Valid(p); got != want {
			t.Fatalf("% x split in two: %v, want %v", p, got, want)
		}
		if len(p) == maxLen {
			return
		}
		for _, c := range alphabet {
			p = append(p, c)
			rec()
			p = p[:len(p)-1]
		}
	}
	rec()
}

func TestUTF8Reset(t *testing.T) {
	var v wire.UTF8Validator
	if !v.Write([]byte("\xE2\x82")) || v.Complete() {
		t.Fatal("want a valid, incomplete prefix")
	}
	v.Reset()
	if !v.Complete() || !v.Write([]byte("abc")) || !v.Complete() {
		t.Fatal("Reset did not forget the partial character")
	}
	if v.Write([]byte("\xFF")) {
		t.Fatal("want false")
	}
	v.Reset()
	if !v.Write([]byte("é")) || !v.Complete() {
		t.Fatal("Reset did not clear the failure")
	}
}

func TestValidUTF8(t *testing.T) {
	for _, s := range utf8Inputs {
		if got, want := wire.ValidUTF8([]byte(s)), utf8.ValidString(s); got != want {
			t.Errorf("ValidUTF8(%q) = %v, want %v", s, got, want)
		}
	}
}
