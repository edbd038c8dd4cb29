package wire

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
)

// StatusCode is a close code (RFC 6455 section 7.4).
type StatusCode int

// Close codes registered with IANA. Codes 1005, 1006 and 1015 are never sent
// on the wire: they only report what happened locally.
const (
	StatusNormalClosure           StatusCode = 1000
	StatusGoingAway               StatusCode = 1001
	StatusProtocolError           StatusCode = 1002
	StatusUnsupportedData         StatusCode = 1003
	StatusNoStatusRcvd            StatusCode = 1005 // never sent: the close frame had no code
	StatusAbnormalClosure         StatusCode = 1006 // never sent: the connection dropped without a close frame
	StatusInvalidFramePayloadData StatusCode = 1007
	StatusPolicyViolation         StatusCode = 1008
	StatusMessageTooBig           StatusCode = 1009
	StatusMandatoryExtension      StatusCode = 1010
	StatusInternalError           StatusCode = 1011
	StatusServiceRestart          StatusCode = 1012
	StatusTryAgainLater           StatusCode = 1013
	StatusBadGateway              StatusCode = 1014
	StatusTLSHandshake            StatusCode = 1015 // never sent

	// StatusUnauthorized (3000, registered with IANA for this use): the
	// endpoint was not, or is no longer, authorized: its credentials
	// expired or were revoked. A client should get new ones before it
	// reconnects.
	StatusUnauthorized StatusCode = 3000
)

// Sendable reports whether c may stand in a close frame: the registered codes
// other than 1004 (reserved), 1005, 1006 and 1015, and the codes 3000-4999
// left to libraries and applications.
func (c StatusCode) Sendable() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

func (c StatusCode) String() string {
	var s string
	switch c {
	case StatusNormalClosure:
		s = "normal closure"
	case StatusGoingAway:
		s = "going away"
	case StatusProtocolError:
		s = "protocol error"
	case StatusUnsupportedData:
		s = "unsupported data"
	case StatusNoStatusRcvd:
		s = "no status"
	case StatusAbnormalClosure:
		s = "abnormal closure"
	case StatusInvalidFramePayloadData:
		s = "invalid payload data"
	case StatusPolicyViolation:
		s = "policy violation"
	case StatusMessageTooBig:
		s = "message too big"
	case StatusMandatoryExtension:
		s = "mandatory extension"
	case StatusInternalError:
		s = "internal error"
	case StatusServiceRestart:
		s = "service restart"
	case StatusTryAgainLater:
		s = "try again later"
	case StatusBadGateway:
		s = "bad gateway"
	case StatusTLSHandshake:
		s = "TLS handshake"
	case StatusUnauthorized:
		s = "unauthorized"
	default:
		return strconv.Itoa(int(c))
	}
	return strconv.Itoa(int(c)) + " (" + s + ")"
}

// CloseError is the close frame a peer sent, or the one this side sent when
// it failed the connection. It is a value: compare codes, not pointers.
// errors.As fills a *CloseError target as well as a CloseError one, for
// code written against gorilla/websocket, whose CloseError is a pointer.
type CloseError struct {
	Code   StatusCode
	Reason string
}

// As lets errors.As find a CloseError for a **CloseError target (a
// variable of type *CloseError), which a value in the chain would not
// match by type, and a *CloseError in the chain for a CloseError target.
func (e CloseError) As(target any) bool {
	switch t := target.(type) {
	case **CloseError:
		*t = &e
		return true
	case *CloseError:
		*t = e
		return true
	}
	return false
}

func (e CloseError) Error() string {
	if e.Reason == "" {
		return "websocket: closed: " + e.Code.String()
	}
	return "websocket: closed: " + e.Code.String() + ": " + e.Reason
}

// CloseStatus returns the code of the CloseError in err's chain, or -1 when
// there is none.
func CloseStatus(err error) StatusCode {
	var ce CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// ProtocolError is a violation of RFC 6455 by the peer, or a limit it
// exceeded. Code is the close code the connection is failed with.
type ProtocolError struct {
	Code StatusCode
	Msg  string
}

func (e *ProtocolError) Error() string { return "websocket: " + e.Msg }

// The ways a peer can break the protocol. Each is a *ProtocolError; test
// with errors.Is.
var (
	ErrReservedBits       = &ProtocolError{StatusProtocolError, "reserved bits set without an extension"}
	ErrReservedOpcode     = &ProtocolError{StatusProtocolError, "reserved opcode"}
	ErrFragmentedControl  = &ProtocolError{StatusProtocolError, "fragmented control frame"}
	ErrControlTooLong     = &ProtocolError{StatusProtocolError, "control frame payload longer than 125 bytes"}
	ErrUnexpectedContinue = &ProtocolError{StatusProtocolError, "continuation frame without a message to continue"}
	ErrExpectedContinue   = &ProtocolError{StatusProtocolError, "new data frame while a fragmented message is unfinished"}
	ErrUnmasked           = &ProtocolError{StatusProtocolError, "client frame not masked"}
	ErrMasked             = &ProtocolError{StatusProtocolError, "server frame masked"}
	ErrLengthOverflow     = &ProtocolError{StatusProtocolError, "64-bit payload length with the most significant bit set"}
	ErrBadClosePayload    = &ProtocolError{StatusProtocolError, "close frame payload of 1 byte"}
	ErrBadCloseCode       = &ProtocolError{StatusProtocolError, "close code not allowed on the wire"}
	ErrInvalidUTF8        = &ProtocolError{StatusInvalidFramePayloadData, "invalid UTF-8 in text message"}
	ErrInvalidCloseReason = &ProtocolError{StatusInvalidFramePayloadData, "invalid UTF-8 in close reason"}
	ErrMessageTooBig      = &ProtocolError{StatusMessageTooBig, "message exceeds the size limit"}
	ErrFrameTooBig        = &ProtocolError{StatusMessageTooBig, "frame exceeds the size limit"}
	ErrCompressedFrame    = &ProtocolError{StatusProtocolError, "compressed bit (RSV1) on a control or continuation frame"}
	// ErrInvalidDeflate is a compressed message that does not inflate:
	// its payload does not match its type, as for invalid UTF-8 (1007,
	// as Node's ws and others answer).
	ErrInvalidDeflate = &ProtocolError{StatusInvalidFramePayloadData, "invalid deflate data in a compressed message"}
)

// ErrClosed is returned by writes after the close frame was sent, and by
// every call on a connection whose transport is closed. It is net.ErrClosed.
var ErrClosed = net.ErrClosed

// UsageError is a frame the caller asked to send that RFC 6455 forbids: the
// caller's mistake, not the peer's, so it is not a *ProtocolError. Nothing
// was sent and the connection is still usable. Test with errors.Is and the
// ErrWrite values below; errors.Is also matches a UsageError with the
// *ProtocolError of the same rule broken by a peer (ErrWriteControlTooLong
// with ErrControlTooLong, and so on), for code that checks either.
type UsageError struct {
	Msg  string
	rule *ProtocolError // the same rule broken by a peer, if there is one
}

func (e *UsageError) Error() string { return "websocket: cannot send: " + e.Msg }

// Is reports whether target is the *ProtocolError of the same rule.
func (e *UsageError) Is(target error) bool { return e.rule != nil && target == e.rule }

// The frames a write refuses to send. Each is a *UsageError.
var (
	ErrWriteReservedOpcode     = &UsageError{"reserved opcode", ErrReservedOpcode}
	ErrWriteControlTooLong     = &UsageError{"control frame payload longer than 125 bytes", ErrControlTooLong}
	ErrWriteFragmentedControl  = &UsageError{"control frame without fin", ErrFragmentedControl}
	ErrWriteUnexpectedContinue = &UsageError{"continuation frame without a fragmented message begun", ErrUnexpectedContinue}
	ErrWriteExpectedContinue   = &UsageError{"new message while a fragmented one is unfinished", ErrExpectedContinue}
	ErrWriteNotData            = &UsageError{"WriteMessage takes OpText or OpBinary; Ping, Pong and Close send the others", nil}
	ErrWriteClose              = &UsageError{"close frames are sent by Close, which does the closing handshake", nil}
)

// cutError is what a write returns when its deadline or context ended it
// after part of its frame went out: the peer waits for the rest of a frame
// that will never come, so the connection is closed. It is ErrClosed for
// errors.Is, and deliberately not a deadline or context error: those mean
// the connection is still usable.
//
// With compressed set, the write failed after its message went into a
// compressor whose state outlives it (context takeover, or a message in
// fragments): the peer's decompressor would be out of step from then on,
// whether or not any byte went out.
type cutError struct {
	cause      error
	compressed bool
}

func (e *cutError) Error() string {
	if e.compressed {
		return "websocket: compressed frame not sent (" + e.cause.Error() + "); connection closed"
	}
	return "websocket: frame cut short by " + e.cause.Error() + "; connection closed"
}

func (e *cutError) Unwrap() error { return net.ErrClosed }

// CodeOf maps err to the close code that reports it on the wire (for a
// ProtocolError or CloseError) or locally (StatusAbnormalClosure for a
// transport error). A nil err is StatusNormalClosure; any other error is
// StatusInternalError. It is the one place that makes this mapping.
func CodeOf(err error) StatusCode {
	var pe *ProtocolError
	var ce CloseError
	switch {
	case err == nil:
		return StatusNormalClosure
	case errors.As(err, &pe):
		return pe.Code
	case errors.As(err, &ce):
		return ce.Code
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return StatusAbnormalClosure
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return StatusAbnormalClosure
	}
	return StatusInternalError
}

// HandshakeError is an opening handshake that failed. Status is the HTTP
// status the server answered (or, on the server, the one it sent).
type HandshakeError struct {
	Status int
	Msg    string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("websocket: handshake failed (HTTP %d): %s", e.Status, e.Msg)
}
