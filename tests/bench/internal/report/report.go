// Package report aggregates the runs of the load matrix and writes them
// out: console tables, the Markdown of docs/benchmarks.md, the SVG chart.
package report

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/shockwave-go/shockwave/tests/bench/internal/chart"
	"github.com/shockwave-go/shockwave/tests/bench/internal/load"
)

// Case is one row of the matrix.
type Case struct {
	Name       string `json:"name"`
	Title      string `json:"title"`
	Scenario   string `json:"scenario"`
	Conns      int    `json:"conns"`
	Size       int    `json:"size"`
	Frag       int    `json:"frag,omitempty"`
	Window     int    `json:"window,omitempty"`
	Publishers int    `json:"publishers,omitempty"`
	Text       bool   `json:"text,omitempty"`    // text messages
	Payload    string `json:"payload,omitempty"` // wsraw.PayloadJSON, PayloadText, or the default pattern
	Deflate    bool   `json:"deflate,omitempty"` // permessage-deflate, on the servers and the generator
	Ref        string `json:"ref,omitempty"`     // the same case uncompressed, the reference for its CPU per message
}

// Cases are the rows of the matrix, as in the issue and BASELINES.md.
var Cases = []Case{
	{Name: "echo-32", Title: "echo 32 B, 1,000 conns", Scenario: "echo", Conns: 1000, Size: 32},
	{Name: "echo-1k", Title: "echo 1 KiB, 1,000 conns", Scenario: "echo", Conns: 1000, Size: 1 << 10},
	{Name: "echo-16k", Title: "echo 16 KiB, 1,000 conns", Scenario: "echo", Conns: 1000, Size: 16 << 10},
	{Name: "frag-64k", Title: "64 KiB in 4 KiB fragments, 200 conns", Scenario: "echo", Conns: 200, Size: 64 << 10, Frag: 4 << 10},
	{Name: "stream-1k", Title: "stream 1 KiB, 128 conns", Scenario: "stream", Conns: 128, Size: 1 << 10, Window: 256},
	{Name: "stream-64k", Title: "stream 64 KiB, 8 conns", Scenario: "stream", Conns: 8, Size: 64 << 10, Window: 8},
	{Name: "room-1000", Title: "room of 1,000, 128 B, 16 in flight", Scenario: "room", Conns: 1000, Size: 128, Publishers: 10, Window: 16},
	{Name: "room-1000-w64", Title: "room of 1,000, 128 B, 64 in flight", Scenario: "room", Conns: 1000, Size: 128, Publishers: 10, Window: 64},
	{Name: "idle-10k", Title: "10,000 idle connections", Scenario: "idle", Conns: 10000},
	// As many as a process's limit of 20,000 descriptors allows, the
	// generator being another process.
	{Name: "idle-19k", Title: "19,800 idle connections (the fd limit)", Scenario: "idle", Conns: 19800},
}

// DeflateCases are the permessage-deflate cases of issue 19, each with
// its reference uncompressed: a chat room's broadcast and echoes of
// realistic payloads (wsraw.JSON, wsraw.Text), compressed without context
// takeover. They run only when named (-cases, or -cases deflate for all of
// them), against the libraries whose bench servers compress: shockwave,
// shockwave-goroutine, gws, uws and uws-prepared.
var DeflateCases = []Case{
	{Name: "room-1000-json", Title: "room of 1,000, 1 KiB JSON, 16 in flight", Scenario: "room", Conns: 1000, Size: 1 << 10, Publishers: 10, Window: 16, Text: true, Payload: "json"},
	{Name: "room-1000-deflate", Title: "room of 1,000, 1 KiB JSON, 16 in flight, deflate", Scenario: "room", Conns: 1000, Size: 1 << 10, Publishers: 10, Window: 16, Text: true, Payload: "json", Deflate: true, Ref: "room-1000-json"},
	{Name: "echo-1k-json", Title: "echo 1 KiB JSON, 1,000 conns", Scenario: "echo", Conns: 1000, Size: 1 << 10, Text: true, Payload: "json"},
	{Name: "echo-1k-json-deflate", Title: "echo 1 KiB JSON, 1,000 conns, deflate", Scenario: "echo", Conns: 1000, Size: 1 << 10, Text: true, Payload: "json", Deflate: true, Ref: "echo-1k-json"},
	{Name: "echo-64k-text", Title: "echo 64 KiB text, 200 conns", Scenario: "echo", Conns: 200, Size: 64 << 10, Text: true, Payload: "text"},
	{Name: "echo-64k-deflate", Title: "echo 64 KiB text, 200 conns, deflate", Scenario: "echo", Conns: 200, Size: 64 << 10, Text: true, Payload: "text", Deflate: true, Ref: "echo-64k-text"},
}

// Select returns the cases named in names (comma-separated; "deflate"
// stands for all of DeflateCases), or Cases if names is empty.
func Select(names string) ([]Case, error) {
	if names == "" {
		return Cases, nil
	}
	var out []Case
	for _, n := range strings.Split(names, ",") {
		if n == "deflate" {
			out = append(out, DeflateCases...)
			continue
		}
		i := slices.IndexFunc(Cases, func(c Case) bool { return c.Name == n })
		j := slices.IndexFunc(DeflateCases, func(c Case) bool { return c.Name == n })
		switch {
		case i >= 0:
			out = append(out, Cases[i])
		case j >= 0:
			out = append(out, DeflateCases[j])
		default:
			return nil, fmt.Errorf("report: no case %q", n)
		}
	}
	return out, nil
}

// Run is one measurement: a case against a library in a round.
type Run struct {
	Case   string       `json:"case"`
	Lib    string       `json:"lib"`
	Round  int          `json:"round"`
	Result *load.Result `json:"result,omitempty"`
	Error  string       `json:"error,omitempty"`
}

// Env describes where and how the matrix ran.
type Env struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
	Rounds     int    `json:"rounds"`
	Warmup     string `json:"warmup"`
	Duration   string `json:"duration"`
	ServerCPU  string `json:"server_cpu"`
	LoadCPU    string `json:"load_cpu"`
	Command    string `json:"command"`
	Revision   string `json:"revision"` // git commit of the code measured, "+changes" if the work tree differed
}

// Matrix is a whole run of the matrix.
type Matrix struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Env      Env       `json:"env"`
	Libs     []string  `json:"libs"`
	Cases    []Case    `json:"cases"`
	Runs     []Run     `json:"runs"`
	// NotBuilt are the libraries of Libs that were not run because their
	// server was not built (uWebSockets, built apart from the project):
	// the report says so in their columns.
	NotBuilt []string `json:"not_built,omitempty"`
}

// notBuilt is the cell of a library in NotBuilt.
const notBuilt = "not built"

// built reports whether lib was run.
func (m *Matrix) built(lib string) bool { return !slices.Contains(m.NotBuilt, lib) }

// Summary is the median over rounds of one case and library.
type Summary struct {
	N, Failed  int
	Errors     int64 // verification errors, over all rounds
	FirstError string
	MsgsPerSec float64
	MBPerSec   float64
	CPUPerMsg  float64 // µs
	CPUPct     float64
	GenPct     float64
	P50, P99   float64 // µs
	RSSPeak    float64 // bytes
	RSSPerConn float64 // bytes
	WireIn     float64 // bytes received per message (echo, delivery)
	WireOut    float64 // bytes sent per message (echoed, published)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Summary returns the medians of case c for library lib.
func (m *Matrix) Summary(c, lib string) Summary {
	var s Summary
	var thr, mb, cpu, pct, gen, p50, p99, rss, per, win, wout []float64
	for _, r := range m.Runs {
		if r.Case != c || r.Lib != lib {
			continue
		}
		if r.Result == nil {
			s.Failed++
			if s.FirstError == "" {
				s.FirstError = r.Error
			}
			continue
		}
		x := r.Result
		s.N++
		s.Errors += x.Errors
		if s.FirstError == "" {
			s.FirstError = x.FirstError
		}
		thr, mb, cpu = append(thr, x.MsgsPerSec), append(mb, x.MBPerSec), append(cpu, x.ServerCPUPerMsgUs)
		pct, gen = append(pct, x.ServerCPUPct), append(gen, x.GenCPUPct)
		p50, p99 = append(p50, x.P50Us), append(p99, x.P99Us)
		rss, per = append(rss, float64(x.RSSPeak)), append(per, x.RSSPerConn)
		win, wout = append(win, x.WireInPerMsg), append(wout, x.WireOutPerMsg)
	}
	s.MsgsPerSec, s.MBPerSec, s.CPUPerMsg = median(thr), median(mb), median(cpu)
	s.CPUPct, s.GenPct, s.P50, s.P99 = median(pct), median(gen), median(p50), median(p99)
	s.RSSPeak, s.RSSPerConn = median(rss), median(per)
	s.WireIn, s.WireOut = median(win), median(wout)
	return s
}

// Headline returns the figure the case is judged by, and whether higher
// is better: msgs/s, MB/s for streams, deliveries/s for rooms, bytes per
// connection when idle.
func Headline(c Case, s Summary) (float64, bool) {
	switch c.Scenario {
	case "stream":
		return s.MBPerSec, true
	case "idle":
		return s.RSSPerConn, false
	}
	return s.MsgsPerSec, true
}

// Cost returns the per-unit cost the case is judged by (lower is better):
// server CPU per message, or memory per idle connection.
func Cost(c Case, s Summary) float64 {
	if c.Scenario == "idle" {
		return s.RSSPerConn
	}
	return s.CPUPerMsg
}

func (m *Matrix) caseByName(name string) Case {
	for _, c := range m.Cases {
		if c.Name == name {
			return c
		}
	}
	return Case{}
}

// fmtHeadline formats a headline figure the way BASELINES.md does.
func fmtHeadline(c Case, v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	switch c.Scenario {
	case "stream":
		return fmt.Sprintf("%.0f MB/s", v)
	case "idle":
		return fmt.Sprintf("%.1f KiB", v/1024)
	}
	return fmtCount(v)
}

// fmtCount formats 123456 as 123k and 1234567 as 1.23M.
func fmtCount(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtFloat(v float64, verb string) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf(verb, v)
}

func fmtLatency(us float64) string {
	switch {
	case math.IsNaN(us) || us == 0:
		return "—"
	case us >= 1000:
		return fmt.Sprintf("%.1f ms", us/1000)
	}
	return fmt.Sprintf("%.0f µs", us)
}

// peers returns the libraries other than the first (Shockwave).
func (m *Matrix) peers() []string {
	if len(m.Libs) < 2 {
		return nil
	}
	return m.Libs[1:]
}

// best returns the best value among the other libraries for case c, and
// which library it is.
func (m *Matrix) best(c Case, value func(Case, Summary) (float64, bool)) (float64, string) {
	bv, bl := math.NaN(), ""
	for _, lib := range m.peers() {
		v, higher := value(c, m.Summary(c.Name, lib))
		if math.IsNaN(v) || v == 0 {
			continue
		}
		if math.IsNaN(bv) || higher && v > bv || !higher && v < bv {
			bv, bl = v, lib
		}
	}
	return bv, bl
}

func costValue(c Case, s Summary) (float64, bool) { return Cost(c, s), false }

// table is a simple Markdown table builder.
type table struct {
	head  []string
	align []string
	rows  [][]string
}

func (t *table) markdown(b *strings.Builder) {
	b.WriteString("| " + strings.Join(t.head, " | ") + " |\n|")
	for i := range t.head {
		if i < len(t.align) && t.align[i] == "r" {
			b.WriteString("---:|")
		} else {
			b.WriteString("---|")
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
}

func (t *table) text(b *strings.Builder) {
	w := make([]int, len(t.head))
	for i, h := range t.head {
		w[i] = len([]rune(h))
	}
	for _, r := range t.rows {
		for i, c := range r {
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	line := func(r []string) {
		for i, c := range r {
			pad := strings.Repeat(" ", w[i]-len([]rune(c)))
			if i > 0 {
				b.WriteString("  " + pad + c)
			} else {
				b.WriteString(c + pad)
			}
		}
		b.WriteString("\n")
	}
	line(t.head)
	for _, r := range t.rows {
		line(r)
	}
}

func (m *Matrix) libHead(first string) []string { return append([]string{first}, m.Libs...) }

func right(n int) []string {
	a := make([]string, n)
	for i := 1; i < n; i++ {
		a[i] = "r"
	}
	return a
}

// Tables returns the tables of the report, titled.
func (m *Matrix) Tables() (titles []string, tables []*table) {
	add := func(title string, t *table) {
		titles, tables = append(titles, title), append(tables, t)
	}

	head := &table{head: m.libHead("case"), align: right(len(m.Libs) + 1)}
	cpu := &table{head: m.libHead("case"), align: right(len(m.Libs) + 1)}
	lat := &table{head: m.libHead("case (p50 / p99)"), align: right(len(m.Libs) + 1)}
	mem := &table{head: m.libHead("case"), align: right(len(m.Libs) + 1)}
	util := &table{head: m.libHead("case (server / generator)"), align: right(len(m.Libs) + 1)}
	for _, c := range m.Cases {
		r1, r2, r3, r4, r5 := []string{c.Title}, []string{c.Title}, []string{c.Title}, []string{c.Title}, []string{c.Title}
		for _, lib := range m.Libs {
			if !m.built(lib) {
				r1, r2, r3 = append(r1, notBuilt), append(r2, notBuilt), append(r3, notBuilt)
				r4, r5 = append(r4, notBuilt), append(r5, notBuilt)
				continue
			}
			s := m.Summary(c.Name, lib)
			v, _ := Headline(c, s)
			cell := fmtHeadline(c, v)
			if s.Errors > 0 || s.Failed > 0 {
				cell += " (!)"
			}
			r1 = append(r1, cell)
			if c.Scenario == "idle" {
				r2 = append(r2, fmtHeadline(c, s.RSSPerConn)+"/conn")
				r3 = append(r3, "—")
				r5 = append(r5, "—")
			} else {
				r2 = append(r2, fmtFloat(s.CPUPerMsg, "%.2f µs")+" ("+fmtFloat(s.CPUPct, "%.0f%%")+")")
				r3 = append(r3, fmtLatency(s.P50)+" / "+fmtLatency(s.P99))
				r5 = append(r5, fmtFloat(s.CPUPct, "%.0f%%")+" / "+fmtFloat(s.GenPct, "%.0f%%"))
			}
			r4 = append(r4, fmtFloat(s.RSSPeak/(1<<20), "%.1f MiB"))
		}
		head.rows, cpu.rows, lat.rows = append(head.rows, r1), append(cpu.rows, r2), append(lat.rows, r3)
		mem.rows, util.rows = append(mem.rows, r4), append(util.rows, r5)
	}
	add("Headline: messages/s (echo, fragments), MB/s echoed (stream), deliveries/s (room), server memory per idle connection (shockwave's idle cases serve the listener with Runtime.Serve, on the event loop; shockwave-goroutine's go through net/http)", head)
	add("Server CPU per message (µs of utime+stime, from /proc) and server CPU use (% of its core)", cpu)

	if len(m.Libs) > 1 {
		ratio := &table{head: []string{"case"}, align: right(len(m.Libs))}
		for _, p := range m.peers() {
			ratio.head = append(ratio.head, "vs "+p)
		}
		for _, c := range m.Cases {
			row := []string{c.Title}
			sw := m.Summary(c.Name, m.Libs[0])
			for _, p := range m.peers() {
				ps := m.Summary(c.Name, p)
				if !m.built(p) {
					row = append(row, notBuilt)
					continue
				}
				if c.Scenario == "idle" {
					row = append(row, "mem "+fmtFloat(sw.RSSPerConn/ps.RSSPerConn, "%.2fx"))
					continue
				}
				sv, _ := Headline(c, sw)
				pv, _ := Headline(c, ps)
				row = append(row, "thr "+fmtFloat(sv/pv, "%.2fx")+", cpu/msg "+fmtFloat(sw.CPUPerMsg/ps.CPUPerMsg, "%.2fx"))
			}
			ratio.rows = append(ratio.rows, row)
		}
		add("Ratios, "+m.Libs[0]+" / peer, same run: throughput (higher is better) and server CPU per message or memory (lower is better)", ratio)
	}
	if t := m.wireTable(); t != nil {
		add("Bytes on the wire per message, frame headers and all: received by the generator per echo or delivery / sent per message (echoed or published)", t)
	}
	if t := m.refTable(); t != nil {
		add("Server CPU per message compressed / uncompressed (the case's reference, same payload): against "+m.Libs[0]+"'s uncompressed, and in parentheses against the library's own", t)
	}
	add("Latency: echo round trip, stream send-to-echo, room publish-to-delivery (p50 / p99)", lat)
	add("Server CPU / generator CPU (% of one core each): a server below 100% with the generator near 100% is not the bottleneck", util)
	add("Server peak RSS (VmHWM) during the case", mem)
	return titles, tables
}

// wireTable returns the table of bytes on the wire, if the matrix has
// cases with realistic payloads.
func (m *Matrix) wireTable() *table {
	if !slices.ContainsFunc(m.Cases, func(c Case) bool { return c.Payload != "" || c.Deflate }) {
		return nil
	}
	t := &table{head: m.libHead("case (in / out)"), align: right(len(m.Libs) + 1)}
	for _, c := range m.Cases {
		if c.Scenario == "idle" {
			continue
		}
		row := []string{c.Title}
		for _, lib := range m.Libs {
			s := m.Summary(c.Name, lib)
			row = append(row, fmtFloat(s.WireIn, "%.0f B")+" / "+fmtFloat(s.WireOut, "%.0f B"))
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// refTable returns the table of the compressed cases' CPU per message
// against their uncompressed references, if the matrix has both.
func (m *Matrix) refTable() *table {
	t := &table{head: m.libHead("case"), align: right(len(m.Libs) + 1)}
	for _, c := range m.Cases {
		if c.Ref == "" || m.caseByName(c.Ref).Name == "" {
			continue
		}
		base := m.Summary(c.Ref, m.Libs[0]).CPUPerMsg
		row := []string{c.Title}
		for _, lib := range m.Libs {
			cpu := m.Summary(c.Name, lib).CPUPerMsg
			row = append(row, fmtFloat(cpu/base, "%.2fx")+" ("+fmtFloat(cpu/m.Summary(c.Ref, lib).CPUPerMsg, "%.2fx")+")")
		}
		t.rows = append(t.rows, row)
	}
	if len(t.rows) == 0 {
		return nil
	}
	return t
}

// Text renders the tables for the console.
func (m *Matrix) Text() string {
	var b strings.Builder
	titles, tables := m.Tables()
	for i, t := range tables {
		b.WriteString("\n" + titles[i] + "\n")
		t.text(&b)
	}
	b.WriteString(m.problems())
	return b.String()
}

func (m *Matrix) problems() string {
	var b strings.Builder
	for _, c := range m.Cases {
		for _, lib := range m.Libs {
			s := m.Summary(c.Name, lib)
			if m.built(lib) && (s.Errors > 0 || s.Failed > 0) {
				fmt.Fprintf(&b, "- %s, %s: %d of %d runs failed, %d verification errors; first: %s\n",
					c.Title, lib, s.Failed, s.N+s.Failed, s.Errors, s.FirstError)
			}
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "\nProblems (marked (!) above):\n" + b.String()
}

// Markdown renders the generated part of docs/benchmarks.md.
func (m *Matrix) Markdown(chartFile string) string {
	var b strings.Builder
	e := m.Env
	fmt.Fprintf(&b, "Measured %s at %s on %s (%d cores), Linux %s, %s. ", m.Started.UTC().Format("2006-01-02 15:04 MST"), e.Revision, e.CPU, e.Cores, e.Kernel, e.Go)
	fmt.Fprintf(&b, "Each server pinned to CPU %s with GOMAXPROCS=1, the load generator pinned to CPU %s; %s of warm-up then %s measured per run; %d rounds, libraries interleaved within each case; medians shown. ",
		e.ServerCPU, e.LoadCPU, e.Warmup, e.Duration, e.Rounds)
	fmt.Fprintf(&b, "Load average before: %s; after: %s. The matrix took %s.\n\n", e.LoadBefore, e.LoadAfter, m.Finished.Sub(m.Started).Round(time.Second))
	if chartFile != "" {
		fmt.Fprintf(&b, "![Throughput and server CPU per message relative to the best other library, and idle memory](%s)\n\n", chartFile)
	}
	titles, tables := m.Tables()
	for i, t := range tables {
		b.WriteString("**" + titles[i] + "**\n\n")
		t.markdown(&b)
		b.WriteString("\n")
	}
	if p := m.problems(); p != "" {
		b.WriteString(p + "\n")
	}
	b.WriteString("Cases: ")
	for i, c := range m.Cases {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "`%s` %s conns x %d B", c.Name, fmtCount(float64(c.Conns)), c.Size)
		if c.Frag > 0 {
			fmt.Fprintf(&b, " in %d B fragments", c.Frag)
		}
		if c.Scenario == "stream" {
			fmt.Fprintf(&b, ", window %d messages per conn", c.Window)
		}
		if c.Scenario == "room" {
			fmt.Fprintf(&b, ", %d publishers, window %d messages in flight", c.Publishers, c.Window)
		}
		if c.Payload != "" {
			fmt.Fprintf(&b, ", %s", c.Payload)
		}
		if c.Text {
			b.WriteString(" in text messages")
		}
		if c.Deflate {
			b.WriteString(", permessage-deflate without context takeover")
		}
	}
	b.WriteString(".\n")
	return b.String()
}

// Chart draws the report's chart: throughput and server CPU per message
// relative to the best other library in the same run, and idle memory.
func (m *Matrix) Chart() []byte {
	var thr, cost, idle []chart.Row
	for _, c := range m.Cases {
		if c.Scenario == "idle" {
			row := chart.Row{Label: c.Title}
			for _, lib := range m.Libs {
				row.Values = append(row.Values, m.Summary(c.Name, lib).RSSPerConn/1024)
			}
			idle = append(idle, row)
			continue
		}
		bt, _ := m.best(c, Headline)
		bc, _ := m.best(c, costValue)
		rt, rc := chart.Row{Label: c.Title}, chart.Row{Label: c.Title}
		for _, lib := range m.Libs {
			s := m.Summary(c.Name, lib)
			v, _ := Headline(c, s)
			rt.Values = append(rt.Values, v/bt)
			rc.Values = append(rc.Values, Cost(c, s)/bc)
		}
		thr, cost = append(thr, rt), append(cost, rc)
	}
	panels := []chart.Panel{
		{Title: "Throughput relative to the best other library (higher is better)",
			Note:   "messages/s for echo, MB/s for streams, deliveries/s for the room; 1 = the best of " + strings.Join(m.peers(), ", "),
			Series: m.Libs, Rows: thr, Ref: 1, Suffix: "x"},
		{Title: "Server CPU per message relative to the best other library (lower is better)",
			Note:   "utime+stime of the server process over the measured window, divided by messages (deliveries for the room)",
			Series: m.Libs, Rows: cost, Ref: 1, Suffix: "x"},
	}
	if len(idle) > 0 {
		panels = append(panels, chart.Panel{Title: "Server memory per idle connection (lower is better)",
			Note:   "VmRSS growth of the server process over the open, idle connections, divided by their number",
			Series: m.Libs, Rows: idle, Format: "%.1f", Suffix: " KiB"})
	}
	return chart.SVG(panels...)
}
