package chart

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
)

func TestSVGIsWellFormed(t *testing.T) {
	svg := SVG(
		Panel{Title: "Throughput <relative>", Series: []string{"a", "b&c"}, Ref: 1, Suffix: "x",
			Rows: []Row{{"echo 32 B", []float64{1.2, 1}}, {"room", []float64{math.NaN(), 3}}}},
		Panel{Title: "Memory", Series: []string{"a"}, Format: "%.1f", Suffix: " KiB",
			Rows: []Row{{"idle", []float64{5.5}}}},
	)
	d := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
	}
	for _, want := range []string{"Throughput &lt;relative&gt;", "b&amp;c", "1.20x", "n/a", "5.5 KiB"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}
