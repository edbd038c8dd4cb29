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
	default:
		return strconv.Itoa(int(c))
	}
	return strconv.Itoa(int(c)) + " (" + s + ")"
}

// CloseError is the close frame a peer sent, or the one this side sent when
// it failed the connection. It is a value: compare codes, not pointers.
type CloseError struct {
	Code   StatusCode
	Reason string
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
)

// ErrClosed is returned by writes after the close frame was sent, and by
// every call on a connection whose transport is closed. It is net.ErrClosed.
var ErrClosed = net.ErrClosed

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
