package wire

import "unicode/utf8"

// UTF8Validator checks UTF-8 that arrives in pieces, such as the fragments of
// a text message. It fails at the first byte that cannot be part of valid
// UTF-8, even when the character it belongs to is split across pieces, so a
// connection can be failed before the rest of a bad message arrives.
// The zero value is ready to use.
type UTF8Validator struct {
	need   uint8 // continuation bytes still expected
	lo, hi uint8 // range allowed for the next continuation byte
}

// Reset forgets any partial character.
func (v *UTF8Validator) Reset() { *v = UTF8Validator{} }

// Complete reports whether the input so far ends on a character boundary.
func (v *UTF8Validator) Complete() bool { return v.need == 0 }

// Write validates p as the continuation of the input so far and reports
// whether it is still valid UTF-8, or a valid prefix of it. After false the
// validator's state is undefined until Reset. Runs of ASCII and of whole
// characters are checked by unicode/utf8 at its word-at-a-time speed; only
// the characters split at the edges of p take the byte-wise path.
// It does not allocate.
func (v *UTF8Validator) Write(p []byte) bool {
	i := 0
	for v.need > 0 && i < len(p) {
		if !v.step(p[i]) {
			return false
		}
		i++
	}
	p = p[i:]
	if len(p) == 0 {
		return true
	}
	cut := len(p) - partialTail(p)
	if !utf8.Valid(p[:cut]) {
		return false
	}
	for _, c := range p[cut:] {
		if !v.step(c) {
			return false
		}
	}
	return true
}

// step advances the byte-wise state machine by one byte.
func (v *UTF8Validator) step(c byte) bool {
	if v.need > 0 {
		if c < v.lo || c > v.hi {
			return false
		}
		v.need--
		v.lo, v.hi = 0x80, 0xBF
		return true
	}
	switch {
	case c < 0x80:
		return true
	case c >= 0xC2 && c <= 0xDF:
		v.need, v.lo, v.hi = 1, 0x80, 0xBF
	case c == 0xE0:
		v.need, v.lo, v.hi = 2, 0xA0, 0xBF
	case c == 0xED:
		v.need, v.lo, v.hi = 2, 0x80, 0x9F // no surrogates
	case c >= 0xE1 && c <= 0xEF:
		v.need, v.lo, v.hi = 2, 0x80, 0xBF
	case c == 0xF0:
		v.need, v.lo, v.hi = 3, 0x90, 0xBF
	case c >= 0xF1 && c <= 0xF3:
		v.need, v.lo, v.hi = 3, 0x80, 0xBF
	case c == 0xF4:
		v.need, v.lo, v.hi = 3, 0x80, 0x8F // nothing above U+10FFFF
	default:
		return false
	}
	return true
}

// partialTail returns the length of the possibly unfinished character at the
// end of p: the bytes from the last lead byte on, when the character it
// starts needs more bytes than p has left. It returns 0 otherwise.
func partialTail(p []byte) int {
	for n := 1; n <= 3 && n <= len(p); n++ {
		c := p[len(p)-n]
		if c < 0x80 {
			return 0
		}
		if c >= 0xC0 {
			if seqLen(c) > n {
				return n
			}
			return 0
		}
	}
	return 0
}

func seqLen(c byte) int {
	switch {
	case c >= 0xF0:
		return 4
	case c >= 0xE0:
		return 3
	}
	return 2
}

// ValidUTF8 reports whether p is entirely valid UTF-8.
func ValidUTF8(p []byte) bool { return utf8.Valid(p) }
