package report

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shockwave-go/shockwave/tests/bench/internal/load"
)

func sample() *Matrix {
	idle := slices.IndexFunc(Cases, func(c Case) bool { return c.Name == "idle-10k" })
	m := &Matrix{Libs: []string{"shockwave", "gws"}, Cases: []Case{Cases[0], Cases[idle]}}
	for round, f := range []float64{1, 3, 2} {
		m.Runs = append(m.Runs,
			Run{Case: "echo-32", Lib: "shockwave", Round: round, Result: &load.Result{MsgsPerSec: 100 * f, ServerCPUPerMsgUs: 5 * f}},
			Run{Case: "echo-32", Lib: "gws", Round: round, Result: &load.Result{MsgsPerSec: 50 * f, ServerCPUPerMsgUs: 10 * f}},
			Run{Case: "idle-10k", Lib: "shockwave", Round: round, Result: &load.Result{RSSPerConn: 1024 * f}},
			Run{Case: "idle-10k", Lib: "gws", Round: round, Error: "boom"},
		)
	}
	return m
}

func TestSummaryTakesMedians(t *testing.T) {
	m := sample()
	s := m.Summary("echo-32", "shockwave")
	if s.N != 3 || s.MsgsPerSec != 200 || s.CPUPerMsg != 10 {
		t.Errorf("summary = %+v, want 3 runs, 200 msgs/s, 10 µs", s)
	}
	if s := m.Summary("idle-10k", "gws"); s.Failed != 3 || !math.IsNaN(s.RSSPerConn) || s.FirstError != "boom" {
		t.Errorf("failed summary = %+v", s)
	}
}

func TestMarkdownHasRatiosAndProblems(t *testing.T) {
	md := sample().Markdown("chart.svg")
	for _, want := range []string{"thr 2.00x, cpu/msg 0.50x", "200 ", "![", "(!)", "boom", "| case |"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestUpdateMarkdownKeepsHandWrittenText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.md")
	if err := UpdateMarkdown(path, "first\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	s := strings.Replace(string(b), "# Benchmarks\n", "# Benchmarks\n\nintro\n", 1) + "\nclosing notes\n"
	os.WriteFile(path, []byte(s), 0o644)
	if err := UpdateMarkdown(path, "second\n"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	got := string(b)
	for _, want := range []string{"intro", "second", "closing notes"} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "first") {
		t.Errorf("old generated text kept:\n%s", got)
	}
}

func TestSelect(t *testing.T) {
	all, err := Select("")
	if err != nil || len(all) != len(Cases) {
		t.Errorf("Select(\"\") = %d cases, %v; want Cases", len(all), err)
	}
	d, err := Select("deflate,echo-32")
	if err != nil || len(d) != len(DeflateCases)+1 || d[len(d)-1].Name != "echo-32" {
		t.Errorf("Select(deflate,echo-32) = %v, %v", d, err)
	}
	if _, err := Select("nope"); err == nil {
		t.Error("an unknown case is taken")
	}
	for _, c := range DeflateCases {
		if c.Ref != "" && !slices.ContainsFunc(DeflateCases, func(r Case) bool { return r.Name == c.Ref && !r.Deflate && r.Payload == c.Payload && r.Size == c.Size }) {
			t.Errorf("%s: its reference %q is not the same case uncompressed", c.Name, c.Ref)
		}
	}
}

func TestMarkdownHasDeflateTables(t *testing.T) {
	cs, _ := Select("echo-1k-json,echo-1k-json-deflate")
	m := &Matrix{Libs: []string{"shockwave", "gws"}, Cases: cs}
	for _, lib := range m.Libs {
		m.Runs = append(m.Runs,
			Run{Case: "echo-1k-json", Lib: lib, Result: &load.Result{MsgsPerSec: 100, ServerCPUPerMsgUs: 10, WireInPerMsg: 1028, WireOutPerMsg: 1032}},
			Run{Case: "echo-1k-json-deflate", Lib: lib, Result: &load.Result{MsgsPerSec: 50, ServerCPUPerMsgUs: 12, WireInPerMsg: 368, WireOutPerMsg: 372}})
	}
	m.Runs[3].Result.ServerCPUPerMsgUs = 26 // gws compressed
	md := m.Markdown("")
	for _, want := range []string{"Bytes on the wire", "368 B / 372 B", "1028 B / 1032 B", "| 1.20x (1.20x) | 2.60x (2.60x) |", "permessage-deflate"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestNotBuilt: a library whose server was not built (uWebSockets
// without -uws) has "not built" in its columns and ratios, and is not
// listed among the problems.
func TestNotBuilt(t *testing.T) {
	m := sample()
	m.Libs = append(m.Libs, "uws")
	m.NotBuilt = []string{"uws"}
	md := m.Markdown("chart.svg")
	if n := strings.Count(md, "not built"); n < 2*len(m.Cases) {
		t.Errorf("%d cells say not built, want one per case in each table at least:\n%s", n, md)
	}
	if strings.Contains(md, "uws: ") || strings.Contains(md, ", uws, ") {
		t.Errorf("uws among the problems:\n%s", md)
	}
}
