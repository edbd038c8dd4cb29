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

// fields is a header as the opening handshake reads it: the http.Header of
// a net/http request or response, or a Request parsed in place by the
// event loop. The checks are written once over it, as generic functions
// rather than over an interface, so that a *Request does not escape and the
// raw path allocates nothing.
type fields interface{ http.Header | *Request }

// eachValue calls f with each value of the fields of h named name (in any
// case), in order, until f returns false. A value from a *Request is a
// view of its bytes (Request.view): the handshake's functions use it
// during their call and keep only copies.
func eachValue[F fields](h F, name string, f func(v string) bool) {
	switch h := any(h).(type) {
	case http.Header:
		for _, v := range h.Values(name) {
			if !f(v) {
				return
			}
		}
	case *Request:
		for i := h.next(name, 0); i >= 0; i = h.next(name, i+1) {
			if !f(h.view(h.fields[i].value)) {
				return
			}
		}
	}
}

// firstValue returns the first value of the fields of h named name, or "",
// as http.Header.Get does.
func firstValue[F fields](h F, name string) string {
	var first string
	eachValue(h, name, func(v string) bool {
		first = v
		return false
	})
	return first
}

// headerHasToken reports whether a comma-separated header field of h, in any
// of its lines, lists token, which must be lower-case ASCII.
func headerHasToken[F fields](h F, name, token string) bool {
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
func headerTokens[F fields](h F, name string, f func(string) bool) {
	eachValue(h, name, func(v string) bool {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if t = strings.Trim(t, " \t"); t != "" && !f(t) {
				return false
			}
		}
		return true
	})
}

// asciiEqualFold reports whether s and t are equal ignoring ASCII case
// only: header names and tokens are ASCII, and strings.EqualFold would take
// "webſocket" (U+017F) for "websocket".
func asciiEqualFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range len(s) {
		if lowerASCII(s[i]) != lowerASCII(t[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		c += 'a' - 'A'
	}
	return c
}
