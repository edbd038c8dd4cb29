package conformance

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/shockwave-go/shockwave/runtime"
	swsession "github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Target is a server under test: Start serves an echo endpoint (every
// message sent back with its opcode, messages up to 16 MiB) for the
// duration of the test and returns its ws:// URL.
type Target struct {
	Name  string
	Start func(tb testing.TB) string
}

// targets are the servers the table runs against: Shockwave's wire.Conn,
// the runtime (sessions, as examples/echo serves them) on each of its
// transports, and the server at $CONFORMANCE_URL when it is set.
func targets() []Target {
	ts := []Target{
		{Name: "wire", Start: startWireEcho(wire.CompressionDisabled)},
		{Name: "runtime", Start: startRuntimeEcho(runtime.TransportAuto)},
		{Name: "runtime-goroutine", Start: startRuntimeEcho(runtime.TransportGoroutine)},
	}
	if u := os.Getenv("CONFORMANCE_URL"); u != "" {
		ts = append(ts, Target{Name: "url", Start: func(testing.TB) string { return u }})
	}
	return ts
}

// deflateTargets are the servers the compression table runs against, each
// with permessage-deflate on: wire.Conn as examples/echo -deflate serves it,
// in both modes; the runtime; and the server at $CONFORMANCE_DEFLATE_URL
// when it is set.
func deflateTargets() []Target {
	ts := []Target{
		{Name: "wire-no-context-takeover", Start: startWireEcho(wire.CompressionNoContextTakeover)},
		{Name: "wire-context-takeover", Start: startWireEcho(wire.CompressionContextTakeover)},
		{Name: "runtime-no-context-takeover", Start: startRuntimeEcho(runtime.TransportAuto,
			runtime.WithCompression(wire.CompressionNoContextTakeover, wire.DefaultCompressionThreshold))},
	}
	if u := os.Getenv("CONFORMANCE_DEFLATE_URL"); u != "" {
		ts = append(ts, Target{Name: "url", Start: func(testing.TB) string { return u }})
	}
	return ts
}

// startRuntimeEcho serves examples/echo's handler on a Runtime in process,
// on the transport tr, with opts.
func startRuntimeEcho(tr runtime.Transport, opts ...runtime.Option) func(tb testing.TB) string {
	return func(tb testing.TB) string {
		echo := swsession.HandlerFunc(func(s *swsession.Session, m swsession.Message) error {
			return s.Send(m.Op, m.Data)
		})
		all := append([]runtime.Option{runtime.WithMaxMessageSize(maxMessage), runtime.WithTransport(tr)}, opts...)
		rt, err := runtime.New(echo, all...)
		if err != nil {
			tb.Fatal(err)
		}
		srv := httptest.NewServer(rt)
		tb.Cleanup(func() {
			srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			rt.Shutdown(ctx)
		})
		return "ws" + strings.TrimPrefix(srv.URL, "http") + "/echo"
	}
}

// startWireEcho serves an echo loop on wire.Conn in process, as
// examples/echo -deflate does, with permessage-deflate in mode.
func startWireEcho(mode wire.CompressionMode) func(tb testing.TB) string {
	return func(tb testing.TB) string {
		opts := &wire.AcceptOptions{Options: wire.Options{MaxMessageSize: maxMessage, Compression: mode}}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := wire.Accept(w, r, opts)
			if err != nil {
				return
			}
			defer c.CloseNow()
			for {
				op, p, err := c.ReadMessage()
				if err != nil {
					return
				}
				if err := c.WriteMessage(op, p); err != nil {
					return
				}
			}
		}))
		tb.Cleanup(srv.Close)
		return "ws" + strings.TrimPrefix(srv.URL, "http") + "/echo"
	}
}

// TestAutobahn runs the case table against every target. Each case must be
// OK in Autobahn's terms and meet the strict requirements on top. With
// $AUTOBAHN_REPORTS set to the reports directory of a run of the real
// suite (see the package documentation), every case's verdicts and
// observations must also agree with the real suite's, for the target of
// reportsTarget.
func TestAutobahn(t *testing.T) {
	runTable(t, allCases(), targets(), reportsTarget(false))
}

// TestAutobahnDeflate runs the compression table (Autobahn's 12.x and
// 13.x, and the extra xd.x) against every target with permessage-deflate
// on, as TestAutobahn does the rest.
func TestAutobahnDeflate(t *testing.T) {
	runTable(t, deflateCases(), deflateTargets(), reportsTarget(true))
}

// runTable runs the cases against the targets, and compares the verdicts
// of the target named against with the real suite's reports, if any.
func runTable(t *testing.T, cases []Case, targets []Target, against string) {
	reports := loadReports(t)
	for _, tg := range targets {
		var mu sync.Mutex
		counts := map[string]int{}
		var failed []string
		t.Run(tg.Name, func(t *testing.T) {
			url := tg.Start(t)
			for _, c := range cases {
				t.Run(c.ID, func(t *testing.T) {
					if c.Large && testing.Short() {
						t.Skip("-short leaves out the messages of 8 and 16 MiB")
					}
					if !c.Large {
						t.Parallel()
					}
					r, err := c.Run(url)
					if err != nil {
						t.Fatalf("%s: %v", c.Desc, err)
					}
					t.Logf("%s: %v", c.Desc, r)
					fs := c.Failures(r)
					for _, f := range fs {
						t.Errorf("%s: %s", c.Desc, f)
					}
					if rep, ok := reports[c.ID]; ok && !c.Extra && tg.Name == against {
						for _, d := range rep.disagreements(c, r) {
							t.Errorf("the real Autobahn suite disagrees: %s", d)
						}
					}
					mu.Lock()
					defer mu.Unlock()
					if !c.Extra {
						counts[r.Behavior]++
					}
					if len(fs) > 0 {
						failed = append(failed, c.ID)
					}
				})
			}
		})
		t.Logf("%s: Autobahn verdicts of the Autobahn cases: %v; strict failures: %d %v", tg.Name, counts, len(failed), failed)
	}
}

// reportsTarget is the target the reports of $AUTOBAHN_REPORTS are compared
// with: the one $AUTOBAHN_TARGET names; else the server at
// $CONFORMANCE_URL (or $CONFORMANCE_DEFLATE_URL for the compression
// table) if there is one; else wire (wire-no-context-takeover, as
// examples/echo -deflate serves it).
func reportsTarget(deflate bool) string {
	if t := os.Getenv("AUTOBAHN_TARGET"); t != "" {
		return t
	}
	switch {
	case !deflate && os.Getenv("CONFORMANCE_URL") != "":
		return "url"
	case deflate && os.Getenv("CONFORMANCE_DEFLATE_URL") != "":
		return "url"
	case deflate:
		return "wire-no-context-takeover"
	}
	return "wire"
}

// report is a case's entry in Autobahn's reports (the case's own JSON file,
// which index.json summarises).
type report struct {
	Behavior        string            `json:"behavior"`
	BehaviorClose   string            `json:"behaviorClose"`
	ClosedByMe      bool              `json:"closedByMe"`
	WasClean        bool              `json:"wasClean"`
	DroppedByMe     bool              `json:"droppedByMe"`
	RemoteCloseCode *int              `json:"remoteCloseCode"`
	Received        []json.RawMessage `json:"received"`
}

// disagreements lists where r differs from what the real suite reported.
func (rep *report) disagreements(c Case, r *Result) []string {
	var d []string
	diff := func(what string, ours, theirs any) {
		if fmt.Sprint(ours) != fmt.Sprint(theirs) {
			d = append(d, fmt.Sprintf("%s: ours %v, Autobahn's %v", what, ours, theirs))
		}
	}
	diff("behavior", r.Behavior, rep.Behavior)
	diff("behaviorClose", r.BehaviorClose, rep.BehaviorClose)
	diff("closedByMe", r.ClosedByMe, rep.ClosedByMe)
	diff("wasClean", r.WasClean, rep.WasClean)
	diff("droppedByMe", r.DroppedByMe, rep.DroppedByMe)
	code := -1
	if rep.RemoteCloseCode != nil {
		code = *rep.RemoteCloseCode
	}
	diff("remoteCloseCode", r.RemoteCode, code)
	// The 9.x, 12.x and 13.x cases record their messages their own way,
	// not in received.
	if !strings.HasPrefix(c.ID, "9.") && !c.OwnVerdict {
		var theirs []string
		for _, e := range rep.Received {
			var v any
			json.Unmarshal(e, &v)
			b, _ := json.Marshal(v) // the same escaping as ours
			theirs = append(theirs, string(b))
		}
		var ours []string
		for _, e := range r.Events {
			ours = append(ours, e.autobahnJSON())
		}
		diff("received", ours, theirs)
	}
	return d
}

// autobahnJSON renders e as Autobahn's reports do in "received".
func (e event) autobahnJSON() string {
	var v []any
	switch e.kind {
	case evTimeout:
		v = []any{e.kind, e.tag}
	case evMessage:
		v = []any{e.kind, asciiLogData(e.p.bytes()), e.op == wire.OpBinary}
	default:
		v = []any{e.kind, asciiLogData(e.p.bytes())}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// asciiLogData is Autobahn's rendering of a payload (fuzzing.py): the first
// 64 bytes (and " ..." if there are more than 60) as text when that is valid
// UTF-8, else "0x" and the bytes in hex.
func asciiLogData(b []byte) string {
	const maxlen, ellipsis = 64, " ..."
	d := b
	if len(b) > maxlen-len(ellipsis) {
		d = append(b[:min(len(b), maxlen):min(len(b), maxlen)], ellipsis...)
	}
	if utf8.Valid(d) {
		return string(d)
	}
	if len(b) > maxlen-len(ellipsis) {
		return "0x" + hex.EncodeToString(b[:min(len(b), maxlen)]) + ellipsis
	}
	return "0x" + hex.EncodeToString(b)
}

// loadReports reads the reports of a run of the real suite from
// $AUTOBAHN_REPORTS, if it is set: index.json, which maps agents to cases
// and their report files ($AUTOBAHN_AGENT picks the agent when there are
// several), and the report file of each case.
func loadReports(t *testing.T) map[string]*report {
	dir := os.Getenv("AUTOBAHN_REPORTS")
	if dir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx map[string]map[string]struct {
		ReportFile string `json:"reportfile"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	agent := os.Getenv("AUTOBAHN_AGENT")
	if agent == "" {
		if len(idx) != 1 {
			t.Fatalf("%s has the agents %v: set AUTOBAHN_AGENT", dir, slices.Sorted(maps.Keys(idx)))
		}
		for a := range idx {
			agent = a
		}
	}
	entries, ok := idx[agent]
	if !ok {
		t.Fatalf("no agent %q in %s", agent, dir)
	}
	ids := map[string]bool{}
	for _, c := range append(allCases(), deflateCases()...) {
		ids[c.ID] = true
	}
	reps := map[string]*report{}
	var missing []string
	for id, e := range entries {
		if !ids[id] {
			missing = append(missing, id)
		}
		b, err := os.ReadFile(filepath.Join(dir, e.ReportFile))
		if err != nil {
			t.Fatal(err)
		}
		rep := new(report)
		if err := json.Unmarshal(b, rep); err != nil {
			t.Fatalf("%s: %v", e.ReportFile, err)
		}
		reps[id] = rep
	}
	if len(missing) > 0 {
		t.Errorf("the real suite ran cases the table lacks: %v", missing)
	}
	t.Logf("comparing with the %d case reports of agent %q in %s", len(reps), agent, dir)
	return reps
}

// TestTable checks the tables themselves: unique ids, all of Autobahn's
// cases 1-7, 9, 10, 12 and 13 present.
func TestTable(t *testing.T) {
	seen := map[string]bool{}
	n, nd, groups := 0, 0, map[string]int{} // cases 1-10; 12 and 13, and their groups
	for _, c := range append(allCases(), deflateCases()...) {
		if seen[c.ID] {
			t.Errorf("duplicate case id %s", c.ID)
		}
		seen[c.ID] = true
		switch {
		case c.Extra:
		case strings.HasPrefix(c.ID, "12.") || strings.HasPrefix(c.ID, "13."):
			nd++
			groups[c.ID[:strings.LastIndexByte(c.ID, '.')]]++
		default:
			n++
		}
	}
	// Autobahn's cases 1-10 (301 of them): 16 + 11 + 7 + 10 + 20 +
	// (3 + 4 + 2 + 4 + 6.5-6.23) + (6 + 6 + 1 + 13 + 9 + 2) + (6 + 6 + 9 +
	// 9 + 6 + 6 + 6 + 6) + 1.
	n6 := 0
	for _, g := range utf8Groups() {
		n6 += len(g.seqs)
	}
	if want := 16 + 11 + 7 + 10 + 20 + 13 + n6 + 37 + 54 + 1; n != want {
		t.Errorf("%d Autobahn cases, want %d", n, want)
	}
	// Spot checks against the ids Autobahn gives its generated cases.
	for id, want := range map[string]string{
		"6.5.5":   "ceba",
		"6.6.11":  "ceba",
		"6.12.8":  "808182",
		"6.22.34": "f4",
		"6.23.7":  "efbfbf",
		"7.7.13":  "4999",
		"7.9.9":   "2999",
	} {
		found := false
		for _, c := range allCases() {
			if c.ID == id {
				found = strings.Contains(c.Desc, want)
			}
		}
		if !found {
			t.Errorf("case %s missing or not the expected one (%q in its description)", id, want)
		}
	}
	if n6 != 132 {
		t.Errorf("6.5-6.23 have %d cases, want 132", n6)
	}
	// The compression table: Autobahn's 12.x (5 data sets) and 13.x (7
	// offers), 18 message sizes each: 216 cases.
	if nd != 216 || len(groups) != 12 {
		t.Errorf("%d compression cases in %d groups, want 216 in 12", nd, len(groups))
	}
	for g, k := range groups {
		if k != 18 {
			t.Errorf("group %s has %d cases, want 18", g, k)
		}
	}
	t.Logf("%d Autobahn cases, %d in all", n+nd, len(seen))
}
