package codec

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"unicode/utf8"
)

// The envelope's keys (see docs/protocol.md).
const (
	keyEvent  = 'e' // event name (string)
	keyRoom   = 'r' // room (string)
	keyID     = 'i' // request id (non-negative integer)
	keyTrace  = 't' // W3C traceparent (string)
	keyData   = 'd' // payload (any value)
	keyError  = 'x' // error object {code, message}
	keyEpoch  = 'g' // the room history's epoch (integer), with keyOffset
	keyOffset = 'o' // the message's offset in its room's history (integer)
)

// maxDepth bounds the nesting of values the envelope parsers skip over, as
// encoding/json bounds its own.
const maxDepth = 10000

// inHeader is an envelope parsed from a client's message. The byte slices
// are views into the message (except for strings written with escapes,
// which are unescaped into new memory), valid during the callback only.
type inHeader struct {
	event, room, trace []byte
	hasEvent           bool
	id                 uint64
	hasID              bool
	data               []byte // the payload's encoding, nil when absent
	ctx                context.Context
	// epoch and offset are the position of a room's message ("g", "o"),
	// which only a server sends: zero when absent, or not a non-negative
	// integer (the server ignores them, so they are never an error).
	epoch, offset uint64
}

// outHeader is an envelope to encode. Empty strings are left out; the
// payload is passed beside it.
type outHeader struct {
	event, room, trace string
	id                 uint64
	hasID              bool
	epoch, offset      uint64 // the position in the room's history; none when offset is 0
	err                *Error
}

// envelopeCodec is a Codec that also reads and writes the envelope; the
// Router needs one.
type envelopeCodec interface {
	Codec
	// appendEnvelope appends an envelope holding h and, when v is not
	// nil, the payload v. On error it returns dst unchanged.
	appendEnvelope(dst []byte, h outHeader, v any) ([]byte, error)
	// parseEnvelope parses a whole message.
	parseEnvelope(data []byte) (inHeader, error)
	// decodeParsed decodes a payload that parseEnvelope has checked.
	decodeParsed(data []byte, v any) error
}

func (jsonCodec) decodeParsed(data []byte, v any) error    { return json.Unmarshal(data, v) }
func (msgpackCodec) decodeParsed(data []byte, v any) error { return decodeMsgpack(data, v) }

// Errors of envelope parsing. They go back to the client as the message of
// a bad_message error.
var (
	errNotEnvelope = errors.New("message is not an envelope object")
	errSyntax      = errors.New("syntax error")
	errTooDeep     = errors.New("value nested too deeply")
	errTrailingEnv = errors.New("data after the envelope")
	errFieldType   = errors.New("envelope field has the wrong type")
	errBadID       = errors.New("request id is not a non-negative integer")
)

// ---------------------------------------------------------------- JSON

func (c jsonCodec) appendEnvelope(dst []byte, h outHeader, v any) ([]byte, error) {
	start := len(dst)
	dst = append(dst, '{')
	if h.event != "" {
		dst = jsonString(jsonKey(dst, start, keyEvent), h.event)
	}
	if h.room != "" {
		dst = jsonString(jsonKey(dst, start, keyRoom), h.room)
	}
	if h.offset != 0 {
		dst = jsonPosition(dst, start, h.epoch, h.offset)
	}
	if h.hasID {
		dst = appendUint(jsonKey(dst, start, keyID), h.id)
	}
	if h.trace != "" {
		dst = jsonString(jsonKey(dst, start, keyTrace), h.trace)
	}
	if v != nil {
		var err error
		if dst, err = c.Append(jsonKey(dst, start, keyData), v); err != nil {
			return dst[:start], err
		}
	}
	if e := h.err; e != nil {
		dst = append(jsonKey(dst, start, keyError), `{"code":`...)
		dst = jsonString(dst, e.Code)
		dst = append(dst, `,"message":`...)
		dst = append(jsonString(dst, e.Message), '}')
	}
	return append(dst, '}'), nil
}

// jsonPosition appends a room message's position, its epoch and offset,
// to the object opened at start.
func jsonPosition(dst []byte, start int, epoch, offset uint64) []byte {
	dst = appendUint(jsonKey(dst, start, keyEpoch), epoch)
	return appendUint(jsonKey(dst, start, keyOffset), offset)
}

// beforePosition reports whether the field of key comes before the
// position in the envelopes appendEnvelope writes: the event and the room.
func beforePosition(key []byte) bool {
	return len(key) == 1 && (key[0] == keyEvent || key[0] == keyRoom)
}

// isPosition reports whether key is the position's, the epoch's or the
// offset's.
func isPosition(key []byte) bool {
	return len(key) == 1 && (key[0] == keyEpoch || key[0] == keyOffset)
}

// jsonKey appends a one-letter key, after a comma unless it is the first
// of the object opened at start.
func jsonKey(dst []byte, start int, k byte) []byte {
	if len(dst) > start+1 {
		dst = append(dst, ',')
	}
	return append(dst, '"', k, '"', ':')
}

func appendUint(dst []byte, n uint64) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

// jsonString appends s as a JSON string, escaping what JSON requires (and
// U+2028, U+2029, which JavaScript source cannot hold), and replacing
// invalid UTF-8 with U+FFFD, as encoding/json does. HTML characters are
// not escaped.
func jsonString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	from := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[from:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			from = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(append(dst, s[from:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(append(dst, s[from:i]...), '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		from = i
	}
	return append(append(dst, s[from:]...), '"')
}

func (jsonCodec) parseEnvelope(data []byte) (h inHeader, err error) {
	err = parseJSON(data, &h)
	return h, err
}

func parseJSON(data []byte, h *inHeader) error {
	return jsonFields(data, func(key []byte, _, vs, ve int) error {
		if len(key) == 1 {
			return h.setJSON(key[0], data[vs:ve])
		}
		return nil
	})
}

// jsonFields walks the JSON envelope data, checking it against the JSON
// grammar, and calls field with each of its members, in order: the key's
// bytes as written between its quotes, the position of its opening quote,
// and the value's range data[vs:ve]. It stops at field's first error.
func jsonFields(data []byte, field func(key []byte, ks, vs, ve int) error) error {
	p := skipSpace(data, 0)
	if p >= len(data) || data[p] != '{' {
		return errNotEnvelope
	}
	p = skipSpace(data, p+1)
	if p < len(data) && data[p] == '}' {
		p++
	} else {
		for {
			if p >= len(data) || data[p] != '"' {
				return errSyntax
			}
			ks := p
			var err error
			if p, err = skipString(data, p); err != nil {
				return err
			}
			key := data[ks+1 : p-1]
			if p = skipSpace(data, p); p >= len(data) || data[p] != ':' {
				return errSyntax
			}
			vs := skipSpace(data, p+1)
			// The envelope is the first level, as encoding/json counts
			// levels: a message it finds nested too deeply is refused.
			if p, err = skipValue(data, vs, 1); err != nil {
				return err
			}
			if err := field(key, ks, vs, p); err != nil {
				return err
			}
			if p = skipSpace(data, p); p >= len(data) {
				return errSyntax
			}
			if data[p] == '}' {
				p++
				break
			}
			if data[p] != ',' {
				return errSyntax
			}
			p = skipSpace(data, p+1)
		}
	}
	if skipSpace(data, p) != len(data) {
		return errTrailingEnv
	}
	return nil
}

// checkJSON returns the error of the field of key k whose value is v, a
// valid JSON value, if it has the wrong type: what setJSON refuses,
// found without unescaping strings, which may allocate.
func checkJSON(k byte, v []byte) error {
	switch k {
	case keyEvent:
		if v[0] != '"' {
			return errFieldType
		}
	case keyRoom, keyTrace:
		if v[0] != '"' && string(v) != "null" {
			return errFieldType
		}
	case keyID:
		if _, ok := jsonUint(v); !ok && string(v) != "null" {
			return errBadID
		}
	}
	return nil
}

// setJSON sets the field of key k from its value v, a valid JSON value.
func (h *inHeader) setJSON(k byte, v []byte) error {
	if err := checkJSON(k, v); err != nil {
		return err
	}
	var err error
	switch k {
	case keyEvent:
		h.event, err = jsonStringValue(v)
		h.hasEvent = err == nil
	case keyRoom:
		h.room, err = jsonStringValue(v)
	case keyTrace:
		h.trace, err = jsonStringValue(v)
	case keyID:
		h.id, h.hasID = jsonUint(v) // null: none
	case keyEpoch:
		h.epoch, _ = jsonUint(v)
	case keyOffset:
		h.offset, _ = jsonUint(v)
	case keyData:
		h.data = v
	}
	return err
}

// jsonUint returns the value of v, a JSON number written as a
// non-negative integer without fraction or exponent that fits 64 bits.
func jsonUint(v []byte) (uint64, bool) {
	var n uint64
	for _, c := range v {
		d := uint64(c - '0')
		if c < '0' || c > '9' || n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, len(v) > 0
}

// jsonStringValue returns the contents of v, a valid JSON string or null
// (nil): a view of v when it has no escapes.
func jsonStringValue(v []byte) ([]byte, error) {
	if string(v) == "null" {
		return nil, nil
	}
	s := v[1 : len(v)-1]
	for _, c := range s {
		if c == '\\' {
			var u string
			if err := json.Unmarshal(v, &u); err != nil {
				return nil, errSyntax
			}
			return []byte(u), nil
		}
	}
	return s, nil
}

func skipSpace(data []byte, p int) int {
	for p < len(data) {
		switch data[p] {
		case ' ', '\t', '\n', '\r':
			p++
		default:
			return p
		}
	}
	return p
}

// skipString returns the position after the JSON string starting at
// data[p] (a quote), checking its escapes.
func skipString(data []byte, p int) (int, error) {
	for p++; p < len(data); p++ {
		switch c := data[p]; {
		case c == '"':
			return p + 1, nil
		case c == '\\':
			p++
			if p >= len(data) {
				return 0, errSyntax
			}
			switch data[p] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if p+4 >= len(data) {
					return 0, errSyntax
				}
				for _, h := range data[p+1 : p+5] {
					if !isHex(h) {
						return 0, errSyntax
					}
				}
				p += 4
			default:
				return 0, errSyntax
			}
		case c < 0x20:
			return 0, errSyntax
		}
	}
	return 0, errSyntax
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skipValue returns the position after the JSON value starting at data[p],
// checking it against the JSON grammar.
func skipValue(data []byte, p, depth int) (int, error) {
	if p >= len(data) {
		return 0, errSyntax
	}
	switch c := data[p]; c {
	case '"':
		return skipString(data, p)
	case '{', '[':
		if depth++; depth > maxDepth {
			return 0, errTooDeep
		}
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		p = skipSpace(data, p+1)
		if p < len(data) && data[p] == end {
			return p + 1, nil
		}
		for {
			var err error
			if end == '}' {
				if p >= len(data) || data[p] != '"' {
					return 0, errSyntax
				}
				if p, err = skipString(data, p); err != nil {
					return 0, err
				}
				if p = skipSpace(data, p); p >= len(data) || data[p] != ':' {
					return 0, errSyntax
				}
				p = skipSpace(data, p+1)
			}
			if p, err = skipValue(data, p, depth); err != nil {
				return 0, err
			}
			if p = skipSpace(data, p); p >= len(data) {
				return 0, errSyntax
			}
			if data[p] == end {
				return p + 1, nil
			}
			if data[p] != ',' {
				return 0, errSyntax
			}
			p = skipSpace(data, p+1)
		}
	case 't':
		return skipLiteral(data, p, "true")
	case 'f':
		return skipLiteral(data, p, "false")
	case 'n':
		return skipLiteral(data, p, "null")
	}
	return skipNumber(data, p)
}

func skipLiteral(data []byte, p int, lit string) (int, error) {
	if len(data)-p < len(lit) || string(data[p:p+len(lit)]) != lit {
		return 0, errSyntax
	}
	return p + len(lit), nil
}

// skipNumber skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(data []byte, p int) (int, error) {
	if p < len(data) && data[p] == '-' {
		p++
	}
	switch {
	case p >= len(data):
		return 0, errSyntax
	case data[p] == '0':
		p++
	case isDigit(data[p]):
		for p < len(data) && isDigit(data[p]) {
			p++
		}
	default:
		return 0, errSyntax
	}
	if p < len(data) && data[p] == '.' {
		p++
		if p >= len(data) || !isDigit(data[p]) {
			return 0, errSyntax
		}
		for p < len(data) && isDigit(data[p]) {
			p++
		}
	}
	if p < len(data) && (data[p] == 'e' || data[p] == 'E') {
		p++
		if p < len(data) && (data[p] == '+' || data[p] == '-') {
			p++
		}
		if p >= len(data) || !isDigit(data[p]) {
			return 0, errSyntax
		}
		for p < len(data) && isDigit(data[p]) {
			p++
		}
	}
	return p, nil
}

// ---------------------------------------------------------- MessagePack

func (c msgpackCodec) appendEnvelope(dst []byte, h outHeader, v any) ([]byte, error) {
	start := len(dst)
	n := 0
	for _, set := range [...]bool{h.event != "", h.room != "", h.offset != 0, h.offset != 0, h.hasID, h.trace != "", v != nil, h.err != nil} {
		if set {
			n++
		}
	}
	dst = append(dst, 0x80|byte(n)) // fixmap
	if h.event != "" {
		dst = mpString(append(dst, 0xa1, keyEvent), h.event)
	}
	if h.room != "" {
		dst = mpString(append(dst, 0xa1, keyRoom), h.room)
	}
	if h.offset != 0 {
		dst = mpPosition(dst, h.epoch, h.offset)
	}
	if h.hasID {
		dst = mpUint(append(dst, 0xa1, keyID), h.id)
	}
	if h.trace != "" {
		dst = mpString(append(dst, 0xa1, keyTrace), h.trace)
	}
	if v != nil {
		var err error
		if dst, err = c.Append(append(dst, 0xa1, keyData), v); err != nil {
			return dst[:start], err
		}
	}
	if e := h.err; e != nil {
		dst = append(dst, 0xa1, keyError, 0x82, 0xa4, 'c', 'o', 'd', 'e')
		dst = mpString(dst, e.Code)
		dst = append(dst, 0xa7, 'm', 'e', 's', 's', 'a', 'g', 'e')
		dst = mpString(dst, e.Message)
	}
	return dst, nil
}

// mpPosition appends a room message's position, its epoch and offset, as
// two pairs of a map.
func mpPosition(dst []byte, epoch, offset uint64) []byte {
	dst = mpUint(append(dst, 0xa1, keyEpoch), epoch)
	return mpUint(append(dst, 0xa1, keyOffset), offset)
}

// mpString appends s as a MessagePack str.
func mpString(dst []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		dst = append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
	}
	return append(dst, s...)
}

// mpUint appends n as the shortest MessagePack unsigned integer.
func mpUint(dst []byte, n uint64) []byte {
	switch {
	case n < 128:
		return append(dst, byte(n))
	case n <= math.MaxUint8:
		return append(dst, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), n)
}

func (msgpackCodec) parseEnvelope(data []byte) (h inHeader, err error) {
	err = parseMsgpack(data, &h)
	return h, err
}

func parseMsgpack(data []byte, h *inHeader) error {
	return mpFields(data, func(key []byte, _, vs, ve int) error {
		if len(key) == 1 {
			return h.setMsgpack(key[0], data[vs:ve])
		}
		return nil
	})
}

// mpFields walks the MessagePack envelope data, checking its values, and
// calls field with each of its pairs, in order: the key's bytes, the
// position of the key's first byte, and the value's range data[vs:ve]. It
// stops at field's first error.
func mpFields(data []byte, field func(key []byte, ks, vs, ve int) error) error {
	n, p, err := mpMapHeader(data, 0)
	if err != nil {
		return err
	}
	for range n {
		ks := p
		var key []byte
		if key, p, err = mpStr(data, p); err != nil {
			return err
		}
		vs := p
		if p, err = mpSkip(data, p, 0); err != nil {
			return err
		}
		if err := field(key, ks, vs, p); err != nil {
			return err
		}
	}
	if p != len(data) {
		return errTrailingEnv
	}
	return nil
}

// setMsgpack sets the field of key k from its value v, one whole
// MessagePack value.
func (h *inHeader) setMsgpack(k byte, v []byte) error {
	var err error
	switch k {
	case keyEvent:
		h.event, _, err = mpStr(v, 0)
		h.hasEvent = err == nil
	case keyRoom:
		if v[0] != 0xc0 {
			h.room, _, err = mpStr(v, 0)
		}
	case keyTrace:
		if v[0] != 0xc0 {
			h.trace, _, err = mpStr(v, 0)
		}
	case keyID:
		h.hasID = v[0] != 0xc0
		if h.hasID {
			h.id, err = mpUintValue(v)
		}
	case keyEpoch:
		h.epoch, _ = mpUintValue(v)
	case keyOffset:
		h.offset, _ = mpUintValue(v)
	case keyData:
		h.data = v
	}
	if err == errSyntax {
		err = errFieldType
	}
	return err
}

// mpMapHeader reads a map header at data[p]: the number of pairs and the
// position after the header.
func mpMapHeader(data []byte, p int) (int, int, error) {
	if p >= len(data) {
		return 0, 0, errNotEnvelope
	}
	c := data[p]
	var n uint64
	var err error
	switch {
	case c&0xf0 == 0x80:
		n, p = uint64(c&0x0f), p+1
	case c == 0xde:
		n, p, err = mpLen(data, p+1, 2)
	case c == 0xdf:
		n, p, err = mpLen(data, p+1, 4)
	default:
		return 0, 0, errNotEnvelope
	}
	if err != nil || n > uint64(len(data)-p)/2 {
		return 0, 0, errSyntax
	}
	return int(n), p, nil
}

// mpLen reads a big-endian length of size bytes at data[p].
func mpLen(data []byte, p, size int) (uint64, int, error) {
	if len(data)-p < size {
		return 0, 0, errSyntax
	}
	var n uint64
	for _, b := range data[p : p+size] {
		n = n<<8 | uint64(b)
	}
	return n, p + size, nil
}

// mpStr reads the str at data[p]: its bytes (a view) and the position
// after it.
func mpStr(data []byte, p int) ([]byte, int, error) {
	if p >= len(data) {
		return nil, 0, errSyntax
	}
	c := data[p]
	var n uint64
	var err error
	switch {
	case c&0xe0 == 0xa0:
		n, p = uint64(c&0x1f), p+1
	case c == 0xd9:
		n, p, err = mpLen(data, p+1, 1)
	case c == 0xda:
		n, p, err = mpLen(data, p+1, 2)
	case c == 0xdb:
		n, p, err = mpLen(data, p+1, 4)
	default:
		return nil, 0, errSyntax
	}
	if err != nil || n > uint64(len(data)-p) {
		return nil, 0, errSyntax
	}
	return data[p : p+int(n)], p + int(n), nil
}

// mpUintValue reads a non-negative integer from v.
func mpUintValue(v []byte) (uint64, error) {
	c := v[0]
	if c < 0x80 {
		return uint64(c), nil
	}
	var size int
	signed := false
	switch c {
	case 0xcc, 0xcd, 0xce, 0xcf:
		size = 1 << (c - 0xcc)
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size, signed = 1<<(c-0xd0), true
	default:
		return 0, errBadID
	}
	n, _, err := mpLen(v, 1, size)
	if err != nil {
		return 0, errBadID
	}
	if signed && n>>(size*8-1) != 0 {
		return 0, errBadID // negative
	}
	return n, nil
}

// mpSkip returns the position after the MessagePack value at data[p].
func mpSkip(data []byte, p, depth int) (int, error) {
	if p >= len(data) {
		return 0, errSyntax
	}
	c := data[p]
	p++
	var n uint64 // bytes to skip, or elements for arrays and maps
	var err error
	elems := 0 // values per element: 1 for arrays, 2 for maps
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return p, nil // fixints, nil, booleans
	case c&0xf0 == 0x80:
		n, elems = uint64(c&0x0f), 2
	case c&0xf0 == 0x90:
		n, elems = uint64(c&0x0f), 1
	case c&0xe0 == 0xa0:
		n = uint64(c & 0x1f)
	case c == 0xc4 || c == 0xd9: // bin8, str8
		n, p, err = mpLen(data, p, 1)
	case c == 0xc5 || c == 0xda:
		n, p, err = mpLen(data, p, 2)
	case c == 0xc6 || c == 0xdb:
		n, p, err = mpLen(data, p, 4)
	case c == 0xc7, c == 0xc8, c == 0xc9: // ext8/16/32: length, type, data
		n, p, err = mpLen(data, p, 1<<(c-0xc7))
		n++
	case c == 0xca:
		n = 4
	case c == 0xcb:
		n = 8
	case c >= 0xcc && c <= 0xcf:
		n = 1 << (c - 0xcc)
	case c >= 0xd0 && c <= 0xd3:
		n = 1 << (c - 0xd0)
	case c >= 0xd4 && c <= 0xd8: // fixext: type and 1..16 bytes
		n = 1 + 1<<(c-0xd4)
	case c == 0xdc:
		n, p, err = mpLen(data, p, 2)
		elems = 1
	case c == 0xdd:
		n, p, err = mpLen(data, p, 4)
		elems = 1
	case c == 0xde:
		n, p, err = mpLen(data, p, 2)
		elems = 2
	case c == 0xdf:
		n, p, err = mpLen(data, p, 4)
		elems = 2
	default: // 0xc1, never used
		return 0, errSyntax
	}
	if err != nil {
		return 0, err
	}
	if elems == 0 {
		if n > uint64(len(data)-p) {
			return 0, errSyntax
		}
		if isExt := c >= 0xc7 && c <= 0xc9 || c >= 0xd4 && c <= 0xd8; isExt && n > 1 {
			// The library decodes a map or an array wrapped in an
			// extension when the target is one, and allocates for what
			// its header announces: check that value as any other.
			if h := data[p+1]; h&0xe0 == 0x80 || h >= 0xdc && h <= 0xdf {
				payload := data[p+1 : p+int(n)]
				if _, err := mpSkip(payload, 0, depth+1); err != nil {
					return 0, err
				}
			}
		}
		return p + int(n), nil
	}
	// Every element takes at least a byte: a count past the data is a lie.
	if n > uint64(len(data)-p)/uint64(elems) {
		return 0, errSyntax
	}
	if depth++; depth > maxDepth {
		return 0, errTooDeep
	}
	for range int(n) * elems {
		if p, err = mpSkip(data, p, depth); err != nil {
			return 0, err
		}
	}
	return p, nil
}
