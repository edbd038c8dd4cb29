package wire

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"strings"
)

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for a Sec-WebSocket-Key,
// written into dst, which it returns. It does not allocate.
func AcceptKey(dst *[28]byte, key string) []byte {
	var buf [64 + len(acceptGUID)]byte
	n := copy(buf[:], key)
	n += copy(buf[n:], acceptGUID)
	sum := sha1.Sum(buf[:n])
	base64.StdEncoding.Encode(dst[:], sum[:])
	return dst[:]
}

// validKey reports whether key is the base64 form of 16 bytes.
func validKey(key string) bool {
	if len(key) != 24 || key[22] != '=' || key[23] != '=' {
		return false
	}
	var b [18]byte
	n, err := base64.StdEncoding.Decode(b[:], []byte(key))
	return err == nil && n == 16
}

// headerHasToken reports whether a comma-separated header field of h, in any
// of its lines, lists token, which must be lower-case ASCII.
func headerHasToken(h http.Header, name, token string) bool {
	found := false
	headerTokens(h, name, func(t string) bool {
		found = asciiEqualFold(t, token)
		return !found
	})
	return found
}

// headerTokens calls f with each token of a comma-separated header field,
// until f returns false. Tokens are trimmed of spaces and tabs only, as
// RFC 9110 section 5.6.1 reads lists (strings.TrimSpace would also take
// U+0085 and U+00A0, which are part of a value).
func headerTokens(h http.Header, name string, f func(string) bool) {
	for _, v := range h.Values(name) {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if t = strings.Trim(t, " \t"); t != "" && !f(t) {
				return
			}
		}
	}
}

// asciiEqualFold reports whether s equals the lower-case ASCII lower,
// ignoring ASCII case only: header tokens are ASCII, and strings.EqualFold
// would take "webſocket" (U+017F) for "websocket".
func asciiEqualFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
