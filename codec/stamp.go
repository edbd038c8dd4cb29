package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

// maxStampGrowth is the most bytes Stamp's output is longer than its
// input: in JSON, the position's two keys, two 20-digit numbers and two
// commas; in MessagePack less (22 bytes of position, 4 of a map32 header
// for a header of 1).
const maxStampGrowth = 50

// Stamp appends to dst the room message v, an envelope as a Router's
// publish encodes it (JSON in a wire.OpText variant, MessagePack in a
// wire.OpBinary one), with its position set to pos, and returns the
// extended slice. It is for the rooms a runtime.Log carries between
// nodes: a message goes into the log encoded once, without a position,
// and each node writes in the position the log gave it as it comes back.
//
// For an envelope the Router encoded, the result is byte for byte what
// the Router would have encoded had it been given pos: the epoch "g" and
// offset "o" after the event and the room, or, when pos.Offset is 0, no
// position at all. A position v already has is replaced. The other fields
// are copied as they are, the payload included, never decoded. v.Key is
// not read: v.Op says which codec v is in.
//
// v.Data must be a well-formed envelope in that codec, one the Router's
// parser accepts (with or without an event name); anything else (truncated, not an object, a field of the
// wrong type, data after the envelope) is an error, and dst is returned
// unchanged. Stamp reads v.Data with the parser the Router reads
// clients' messages with: it never panics, nor trusts a length v.Data
// announces, and the bytes it appends are at most 50 more than
// len(v.Data).
//
// Allocation budget: none, beyond growing dst; with a dst of enough
// capacity, none at all.
func Stamp(dst []byte, v runtime.Variant, pos runtime.Position) ([]byte, error) {
	var err error
	switch v.Op {
	case wire.OpText:
		if dst, err = stampJSON(dst, v.Data, pos); err != nil {
			return dst, fmt.Errorf("codec: cannot stamp a JSON room message: %w", err)
		}
	case wire.OpBinary:
		if dst, err = stampMsgpack(dst, v.Data, pos); err != nil {
			return dst, fmt.Errorf("codec: cannot stamp a MessagePack room message: %w", err)
		}
	default:
		return dst, fmt.Errorf("codec: cannot stamp a room message in a %v frame: envelopes travel in text or binary messages", v.Op)
	}
	return dst, nil
}

// stampJSON is Stamp for JSON: the envelope's members but the position
// are copied in their order, without the spaces around them, the position
// before the first that appendEnvelope writes after it.
func stampJSON(dst, data []byte, pos runtime.Position) ([]byte, error) {
	orig, start := dst, len(dst)
	dst = append(dst, '{')
	stamped := pos.Offset == 0 // or else, not yet
	err := jsonFields(data, func(key []byte, ks, vs, ve int) error {
		if len(key) == 1 {
			if err := checkJSON(key[0], data[vs:ve]); err != nil {
				return err
			}
		}
		if isPosition(key) {
			return nil
		}
		if !stamped && !beforePosition(key) {
			dst, stamped = jsonPosition(dst, start, pos.Epoch, pos.Offset), true
		}
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, data[ks:ve]...)
		return nil
	})
	if err != nil {
		return orig, err
	}
	if !stamped {
		dst = jsonPosition(dst, start, pos.Epoch, pos.Offset)
	}
	return append(dst, '}'), nil
}

// stampMsgpack is Stamp for MessagePack, as stampJSON is for JSON. The
// map's header is the shortest for its pairs, as appendEnvelope's.
func stampMsgpack(dst, data []byte, pos runtime.Position) ([]byte, error) {
	orig, start := dst, len(dst)
	dst = append(dst, 0x80) // a fixmap, until the pairs are counted
	pairs := 0
	stamped := pos.Offset == 0
	var h inHeader // checks the header's fields as parseMsgpack does
	err := mpFields(data, func(key []byte, ks, vs, ve int) error {
		if len(key) == 1 {
			if err := h.setMsgpack(key[0], data[vs:ve]); err != nil {
				return err
			}
		}
		if isPosition(key) {
			return nil
		}
		if !stamped && !beforePosition(key) {
			dst, stamped = mpPosition(dst, pos.Epoch, pos.Offset), true
			pairs += 2
		}
		dst = append(dst, data[ks:ve]...)
		pairs++
		return nil
	})
	if err == nil && !stamped {
		dst = mpPosition(dst, pos.Epoch, pos.Offset)
		pairs += 2
	}
	if err == nil && uint64(pairs) > math.MaxUint32 {
		err = errTooManyPairs // from a map32 of 2^32-1 pairs, 8 GiB of them
	}
	if err != nil {
		return orig, err
	}
	return mpSetMapLen(dst, start, pairs), nil
}

var errTooManyPairs = errors.New("envelope has too many fields")

// mpSetMapLen turns dst[start], the fixmap header of a map whose pairs
// follow up to the end of dst, into the shortest header of its n pairs.
func mpSetMapLen(dst []byte, start, n int) []byte {
	if n < 16 {
		dst[start] = 0x80 | byte(n)
		return dst
	}
	var hdr [5]byte
	size := 5
	if n <= math.MaxUint16 {
		hdr[0] = 0xde
		binary.BigEndian.PutUint16(hdr[1:], uint16(n))
		size = 3
	} else {
		hdr[0] = 0xdf
		binary.BigEndian.PutUint32(hdr[1:], uint32(n))
	}
	dst = append(dst, hdr[:size-1]...) // room for the longer header
	copy(dst[start+size:], dst[start+1:len(dst)-(size-1)])
	copy(dst[start:], hdr[:size])
	return dst
}
