package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/shockwave-go/shockwave/wire"
)

// Codec turns values into message payloads and back.
//
// Append encodes v at the end of dst and returns the extended slice, so a
// caller can encode into a buffer it reuses; on error it returns dst
// unchanged. Decode decodes data into v, which must be a pointer; it never
// keeps a reference to data, so data may be a message buffer that is
// reused after the call. Decoding bytes that are not a valid encoding
// returns an error, never panics.
//
// The codecs of this package are safe for concurrent use.
type Codec interface {
	// Name is the codec's short name, such as "json". A Router offers
	// each codec as the subprotocol "shockwave." + Name().
	Name() string
	// Opcode is the message type the encoding travels in: wire.OpText for
	// text encodings (JSON), wire.OpBinary for the others.
	Opcode() wire.Opcode
	// Append appends the encoding of v to dst.
	Append(dst []byte, v any) ([]byte, error)
	// Decode decodes data into the value v points to.
	Decode(data []byte, v any) error
}

// The codecs of this package.
var (
	// Raw passes bytes through: Append takes a []byte, *[]byte, string or
	// *string and appends its bytes; Decode fills a *[]byte (reusing its
	// capacity) or a *string with a copy of data. It travels in binary
	// messages and carries no event envelope, so a Router does not use
	// it: it is for handlers that speak their own format.
	Raw Codec = rawCodec{}
	// JSON is encoding/json, in text messages. Append does not escape
	// HTML characters (<, >, &), which a WebSocket message has no need
	// of, and leaves no trailing newline.
	JSON Codec = jsonCodec{}
	// MsgPack is MessagePack (github.com/vmihailenco/msgpack/v5), in
	// binary messages. Struct fields use their msgpack tag, or else their
	// json tag, so one set of tags serves both codecs. Integers and
	// floats take their most compact encoding. Encoders and decoders are
	// pooled: a call allocates only what the decoded value itself needs.
	MsgPack Codec = msgpackCodec{}
)

// ErrUnsupportedType is returned by Raw for a value that is not bytes or a
// string.
var ErrUnsupportedType = errors.New("codec: raw codec takes []byte or string values")

// appendWriter is an io.Writer (and io.ByteWriter) that appends to b. The
// encoders of the pools below write through one, straight into the
// caller's buffer.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

func (w *appendWriter) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

// Raw

type rawCodec struct{}

func (rawCodec) Name() string        { return "raw" }
func (rawCodec) Opcode() wire.Opcode { return wire.OpBinary }

func (rawCodec) Append(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case []byte:
		return append(dst, v...), nil
	case string:
		return append(dst, v...), nil
	case *[]byte:
		if v != nil {
			return append(dst, *v...), nil
		}
	case *string:
		if v != nil {
			return append(dst, *v...), nil
		}
	}
	return dst, fmt.Errorf("%w, not %T", ErrUnsupportedType, v)
}

func (rawCodec) Decode(data []byte, v any) error {
	switch v := v.(type) {
	case *[]byte:
		if v != nil {
			*v = append((*v)[:0], data...)
			return nil
		}
	case *string:
		if v != nil {
			*v = string(data)
			return nil
		}
	}
	return fmt.Errorf("%w, not %T", ErrUnsupportedType, v)
}

// JSON

type jsonCodec struct{}

func (jsonCodec) Name() string        { return "json" }
func (jsonCodec) Opcode() wire.Opcode { return wire.OpText }

// jsonEncoder is a pooled json.Encoder writing into an appendWriter.
type jsonEncoder struct {
	w   appendWriter
	enc *json.Encoder
}

var jsonEncoders = sync.Pool{New: func() any {
	e := new(jsonEncoder)
	e.enc = json.NewEncoder(&e.w)
	e.enc.SetEscapeHTML(false)
	return e
}}

func (jsonCodec) Append(dst []byte, v any) ([]byte, error) {
	e := jsonEncoders.Get().(*jsonEncoder)
	e.w.b = dst
	err := e.enc.Encode(v) // marshals fully before writing: nothing is written on error
	out := e.w.b
	e.w.b = nil
	jsonEncoders.Put(e)
	if err != nil {
		return dst, err
	}
	return out[:len(out)-1], nil // Encode ends with a newline
}

func (jsonCodec) Decode(data []byte, v any) error { return json.Unmarshal(data, v) }

// MessagePack

type msgpackCodec struct{}

func (msgpackCodec) Name() string        { return "msgpack" }
func (msgpackCodec) Opcode() wire.Opcode { return wire.OpBinary }

// msgpackEncoder is a pooled msgpack.Encoder writing into an appendWriter.
type msgpackEncoder struct {
	w   appendWriter
	enc *msgpack.Encoder
}

var msgpackEncoders = sync.Pool{New: func() any {
	e := new(msgpackEncoder)
	e.enc = msgpack.NewEncoder(&e.w)
	e.enc.SetCustomStructTag("json")
	e.enc.UseCompactInts(true)
	e.enc.UseCompactFloats(true)
	return e
}}

// msgpackDecoder is a pooled msgpack.Decoder reading from a bytes.Reader,
// which it reads without buffering of its own.
type msgpackDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var msgpackDecoders = sync.Pool{New: func() any {
	d := new(msgpackDecoder)
	d.dec = msgpack.NewDecoder(&d.r)
	d.dec.SetCustomStructTag("json")
	return d
}}

func (msgpackCodec) Append(dst []byte, v any) ([]byte, error) {
	e := msgpackEncoders.Get().(*msgpackEncoder)
	e.w.b = dst
	err := e.enc.Encode(v)
	out := e.w.b
	e.w.b = nil
	msgpackEncoders.Put(e)
	if err != nil {
		return dst, err // the encoder may have written part of v
	}
	return out, nil
}

func (msgpackCodec) Decode(data []byte, v any) error {
	// Check the structure first: the library trusts the lengths it reads
	// and would allocate what a 5-byte message claims (an array of 4G
	// elements). After the check, every length fits in data.
	end, err := mpSkip(data, 0, 0)
	if err != nil {
		return fmt.Errorf("codec: msgpack: %w", err)
	}
	if end != len(data) {
		return errors.New("codec: msgpack: data after the value")
	}
	return decodeMsgpack(data, v)
}

// decodeMsgpack decodes data, one well-formed value as mpSkip checks it,
// into v.
func decodeMsgpack(data []byte, v any) error {
	d := msgpackDecoders.Get().(*msgpackDecoder)
	d.r.Reset(data)
	err := d.dec.Decode(v)
	d.r.Reset(nil)
	// The decoder keeps the buffer it read its longest string or bin
	// into (up to len(data) bytes): one that read a large message is
	// dropped, so that the pool does not pin a buffer of any size.
	if len(data) <= maxKeptBuf {
		msgpackDecoders.Put(d)
	}
	return err
}
