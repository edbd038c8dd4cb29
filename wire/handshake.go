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
// of its lines, lists token (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// headerTokens calls f with each token of a comma-separated header field.
func headerTokens(h http.Header, name string, f func(string) bool) {
	for _, v := range h.Values(name) {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if t = strings.TrimSpace(t); t != "" && !f(t) {
				return
			}
		}
	}
}
