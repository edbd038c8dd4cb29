package wsraw

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shockwave-go/shockwave/wire"
)

func TestPayloads(t *testing.T) {
	for _, kind := range []string{PayloadPattern, PayloadJSON, PayloadText} {
		sizes := []int{1 << 10, 4 << 10, 64 << 10}
		for n := JSONMin; n < 2<<10; n += 7 {
			sizes = append(sizes, n)
		}
		for _, n := range sizes {
			p := Payload(kind, n)
			if len(p) != n || !utf8.Valid(p) || !bytes.Equal(p, Payload(kind, n)) {
				t.Fatalf("%q of %d: %d bytes, valid UTF-8 %v, or not the same twice", kind, n, len(p), utf8.Valid(p))
			}
			if kind != PayloadJSON {
				continue
			}
			if !json.Valid(p) {
				t.Fatalf("JSON(%d) is not JSON:\n%s", n, p)
			}
			if !bytes.HasPrefix(p, []byte(StampField+strings.Repeat("0", 2*StampLen)+`"`)) {
				t.Fatalf("JSON(%d) has no room for the stamp:\n%.100s", n, p)
			}
		}
	}
}

// TestPayloadRatios pins down how much the realistic payloads shrink
// with deflate at level 1 (wire.AppendCompressed): JSON as chat JSON does,
// text as English prose does, the pattern far more than either.
func TestPayloadRatios(t *testing.T) {
	stamped := JSON(1 << 10)
	copy(stamped[StampOffset:], "9c8f2e1a06000000030000001a0000004b010000") // as the load generator stamps it
	for _, tt := range []struct {
		name     string
		p        []byte
		min, max float64
	}{
		{"json 1 KiB", JSON(1 << 10), 2.5, 3.5},
		{"json 1 KiB stamped", stamped, 2.4, 3.5},
		{"text 64 KiB", Text(64 << 10), 2, 3},
		{"pattern 1 KiB", Pattern(1 << 10), 5, 1e9},
	} {
		r := float64(len(tt.p)) / float64(len(wire.AppendCompressed(nil, tt.p)))
		t.Logf("%s: %.2fx", tt.name, r)
		if r < tt.min || r > tt.max {
			t.Errorf("%s shrinks %.2fx, want %.1f-%.1fx", tt.name, r, tt.min, tt.max)
		}
	}
}
