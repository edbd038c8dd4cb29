package wire

import (
	"encoding/binary"
	"unicode/utf8"
)

// ParseClosePayload parses the payload of a close frame. An empty payload
// yields StatusNoStatusRcvd. A payload of one byte, a code that may not be
// sent, or a reason that is not valid UTF-8 is a *ProtocolError. The reason
// aliases p.
func ParseClosePayload(p []byte) (code StatusCode, reason []byte, err error) {
	switch {
	case len(p) == 0:
		return StatusNoStatusRcvd, nil, nil
	case len(p) == 1:
		return 0, nil, ErrBadClosePayload
	}
	code = StatusCode(binary.BigEndian.Uint16(p))
	if !code.Sendable() {
		return code, nil, ErrBadCloseCode
	}
	reason = p[2:]
	if !ValidUTF8(reason) {
		return code, nil, ErrInvalidCloseReason
	}
	return code, reason, nil
}

// AppendClosePayload appends the payload of a close frame carrying code and
// reason to dst. StatusNoStatusRcvd gives an empty payload. A code that may
// not be sent is replaced by StatusInternalError, each byte of reason that
// is not part of valid UTF-8 by U+FFFD, and the reason is cut to fit in a
// control frame (123 bytes) at a character boundary, so the result is
// always a valid close payload: a peer fails a connection whose close
// reason is not UTF-8. It does not allocate.
func AppendClosePayload(dst []byte, code StatusCode, reason string) []byte {
	if code == StatusNoStatusRcvd {
		return dst
	}
	if !code.Sendable() {
		code = StatusInternalError
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	room := MaxControlPayload - 2
	if len(reason) <= room && utf8.ValidString(reason) {
		return append(dst, reason...)
	}
	for len(reason) > 0 {
		r, n := utf8.DecodeRuneInString(reason)
		char := reason[:n]
		if r == utf8.RuneError && n == 1 {
			char = string(utf8.RuneError)
		}
		if len(char) > room {
			break
		}
		dst = append(dst, char...)
		room -= len(char)
		reason = reason[n:]
	}
	return dst
}
