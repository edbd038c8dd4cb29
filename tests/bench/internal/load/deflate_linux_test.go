package load

import (
	"bytes"
	"strings"
	"testing"

	"github.com/shockwave-go/shockwave/tests/bench/internal/wsraw"
	"github.com/shockwave-go/shockwave/wire"
)

// roomEngine is an engine with just what checking room messages of a
// JSON payload in text takes.
func roomEngine() *engine {
	e := &engine{expect: wsraw.JSON(1 << 10), stampOff: wsraw.StampOffset, stampLen: 2 * metaLen}
	e.z.init(4)
	return e
}

func stamped(e *engine, g byte) ([]byte, [metaLen]byte) {
	var meta [metaLen]byte
	meta[0], meta[16] = 0xab, g
	p := bytes.Clone(e.expect)
	e.putStamp(p[e.stampOff:], &meta)
	return p, meta
}

// TestCheckSplitsTheStamp feeds a stamped payload in pieces cut at every
// place around the stamp: the stamp is kept whole, the rest compared.
func TestCheckSplitsTheStamp(t *testing.T) {
	e := roomEngine()
	p, meta := stamped(e, 7)
	for cut := 1; cut < 100; cut++ {
		var stamp [2 * metaLen]byte
		if !e.check(stamp[:], 0, p[:cut]) || !e.check(stamp[:], cut, p[cut:]) {
			t.Fatalf("cut at %d: a good payload fails", cut)
		}
		var got [metaLen]byte
		if !e.getStamp(&got, stamp[:e.stampLen]) || got != meta {
			t.Fatalf("cut at %d: stamp %x, want %x", cut, got, meta)
		}
	}
	bad := bytes.Clone(p)
	bad[len(bad)-3]++
	var stamp [2 * metaLen]byte
	if e.check(stamp[:], 0, bad) {
		t.Error("a changed byte past the stamp passes")
	}
	bad = bytes.Clone(p)
	bad[e.stampOff-1] = 'x'
	if e.check(stamp[:], 0, bad) {
		t.Error("a changed byte before the stamp passes")
	}
	var got [metaLen]byte
	if e.getStamp(&got, []byte(strings.Repeat("z", 2*metaLen))) {
		t.Error("a stamp that is not hexadecimal is taken")
	}
}

// TestInflatedCaches checks compressed bodies: the first of each is
// inflated, the same bytes again are not, and a body that inflates to
// anything but what was sent fails.
func TestInflatedCaches(t *testing.T) {
	e := roomEngine()
	c := &conn{}
	p1, m1 := stamped(e, 1)
	p2, m2 := stamped(e, 2)
	z1, z2 := wire.AppendCompressed(nil, p1), wire.AppendCompressed(nil, p2)
	for i, tt := range []struct {
		body     []byte
		meta     [metaLen]byte
		inflated int64
	}{{z1, m1, 1}, {z1, m1, 1}, {z2, m2, 2}, {z1, m1, 2}, {z2, m2, 2}} {
		if err := e.inflated(c, bytes.Clone(tt.body)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		var got [metaLen]byte
		e.getStamp(&got, c.stamp[:e.stampLen])
		if got != tt.meta || e.z.stats.inflated != tt.inflated {
			t.Fatalf("message %d: stamp %x, %d inflated; want %x, %d", i, got, e.z.stats.inflated, tt.meta, tt.inflated)
		}
	}
	wrong := bytes.Clone(p1)
	wrong[len(wrong)-10] = '#'
	for name, body := range map[string][]byte{
		"changed":   wire.AppendCompressed(nil, wrong),
		"short":     wire.AppendCompressed(nil, p1[:len(p1)-1]),
		"long":      wire.AppendCompressed(nil, append(bytes.Clone(p1), ' ')),
		"truncated": z1[:len(z1)/2],
	} {
		if err := e.inflated(c, body); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
