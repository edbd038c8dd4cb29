package wsraw

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shockwave-go/shockwave/wire"
)

// DeflateOffer is the permessage-deflate offer (RFC 7692) of the bench
// clients: each side compresses every message on its own, so that a
// server may compress a broadcast once for all its members, and need keep
// no window of what a client sent. Every server of the bench accepts it as
// it is.
const DeflateOffer = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"

// RequestDeflate returns the opening handshake for ws://host/path with
// DeflateOffer.
func RequestDeflate(host, path string) []byte {
	r := Request(host, path)
	return append(r[:len(r)-2:len(r)-2], "Sec-WebSocket-Extensions: "+DeflateOffer+"\r\n\r\n"...)
}

// DeflateResponse is Response for a request that offered DeflateOffer: it
// also checks that the server took the offer, with server_no_context_takeover,
// and lets the client compress with a window of 32 KiB, as
// AppendCompressedMessage does.
func DeflateResponse(b []byte) (int, error) {
	n, err := Response(b)
	if err != nil {
		return n, err
	}
	var ext []string
	for _, line := range strings.Split(string(b[:n]), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), "Sec-WebSocket-Extensions") {
			ext = append(ext, strings.TrimSpace(v))
		}
	}
	if len(ext) != 1 || strings.Contains(ext[0], ",") {
		return 0, fmt.Errorf("wsraw: the server answered permessage-deflate with extensions %q", ext)
	}
	params := strings.Split(ext[0], ";")
	if strings.TrimSpace(params[0]) != "permessage-deflate" {
		return 0, fmt.Errorf("wsraw: the server did not take permessage-deflate: %q", ext[0])
	}
	noTakeover := false
	for _, p := range params[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch k = strings.TrimSpace(k); k {
		case "server_no_context_takeover":
			noTakeover = true
		case "client_no_context_takeover", "server_max_window_bits":
		case "client_max_window_bits":
			if bits, err := strconv.Atoi(strings.Trim(strings.TrimSpace(v), `"`)); err != nil || bits != 15 {
				return 0, fmt.Errorf("wsraw: the server limits the client's window: %q", ext[0])
			}
		default:
			return 0, fmt.Errorf("wsraw: unknown permessage-deflate parameter %q", k)
		}
	}
	if !noTakeover {
		return 0, fmt.Errorf("wsraw: the server keeps its context: %q", ext[0])
	}
	return n, nil
}

// AppendCompressedMessage is AppendMessage for a connection with
// permessage-deflate: payload is compressed on its own (wire.AppendCompressed)
// and the frames of the body carry RSV1 on the first.
func AppendCompressedMessage(dst []byte, op wire.Opcode, payload []byte, frag int) []byte {
	body := wire.AppendCompressed(nil, payload)
	if frag <= 0 || len(body) <= frag {
		return wire.AppendFrame(dst, wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: op, Masked: true, Key: MaskKey}, body)
	}
	start := len(dst)
	dst = AppendMessage(dst, op, body, frag)
	dst[start] |= wire.RSV1 // on the first frame only
	return dst
}

// deflateTail ends the body of a message (RFC 7692 section 7.2.2) and
// adds an empty final block, so that the inflater reports io.EOF.
var deflateTail = []byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}

// ErrTooLong reports an inflated message longer than its limit.
var ErrTooLong = errors.New("wsraw: inflated message longer than its limit")

// Inflater inflates the bodies of messages compressed without context
// takeover. It uses the standard library's compress/flate, which no
// server under test does. The zero value is ready; it is not safe for
// concurrent use.
type Inflater struct {
	in  []byte
	src bytes.Reader
	fr  io.ReadCloser
}

// Inflate appends body inflated to dst; it fails with ErrTooLong if that
// comes to more than limit bytes.
func (f *Inflater) Inflate(dst, body []byte, limit int) ([]byte, error) {
	f.in = append(append(f.in[:0], body...), deflateTail...)
	f.src.Reset(f.in)
	if f.fr == nil {
		f.fr = flate.NewReader(&f.src)
	} else if err := f.fr.(flate.Resetter).Reset(&f.src, nil); err != nil {
		return dst, err
	}
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := f.fr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > limit {
			return dst, ErrTooLong
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, fmt.Errorf("wsraw: inflating: %w", err)
		}
	}
}
