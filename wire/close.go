package wire

import "encoding/binary"

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
// not be sent is replaced by StatusInternalError, and a reason is cut to fit
// in a control frame (123 bytes) at a UTF-8 boundary, so the result is always
// a valid close payload.
func AppendClosePayload(dst []byte, code StatusCode, reason string) []byte {
	if code == StatusNoStatusRcvd {
		return dst
	}
	if !code.Sendable() {
		code = StatusInternalError
	}
	const max = MaxControlPayload - 2
	if len(reason) > max {
		n := max
		for n > 0 && reason[n]&0xC0 == 0x80 { // do not split a character
			n--
		}
		reason = reason[:n]
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(code))
	return append(dst, reason...)
}
