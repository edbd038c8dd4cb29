package codec

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// TestJSClient runs js/e2e.mjs, the browser client on Node's WebSocket,
// against a Router on a real runtime whose rooms keep history, once per
// codec of the client: requests, errors, room publishes (to a room holding
// a client of each codec), a reconnection that re-joins the room, and
// resumes after drops from either side, with events published meanwhile:
// recovered in one room, not in another whose history was trimmed, nor in
// one removed and made again (a new epoch); recovered while a room's
// publishes race with the reconnection, and in 20 rooms at once; and
// presence, with a grace period that hides the client's outage from the
// other members but not the departure of a member who does not come back.
// It needs Node.js 20 or later; without it the test is skipped (and fails
// when CI is set).
func TestJSClient(t *testing.T) {
	node, args := nodeWithWebSocket(t)
	script, err := filepath.Abs(filepath.Join("js", "e2e.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, codec := range []string{"json", "msgpack"} {
		t.Run(codec, func(t *testing.T) {
			// The Router's default is JSON: the MessagePack client gets
			// MessagePack only by offering its subprotocol.
			r := NewRouter(JSON)
			Handle(r, "echo", func(s *session.Session, v map[string]any) (map[string]any, error) { return v, nil })
			Handle(r, "subprotocol", func(s *session.Session, _ struct{}) (string, error) {
				return s.Subprotocol(), nil
			})
			// Room "small" keeps too little to cover an outage of e2e.mjs;
			// "race" enough for a stream that goes on meanwhile. Rooms
			// named "presence…" track who is in them, by the "user" of
			// the client's URL, and hide an absence shorter than 3 s.
			rt, url := serve(t, r,
				runtime.WithRoomHistory(func(room string) runtime.History {
					switch room {
					case "small":
						return runtime.History{Size: 2}
					case "race":
						return runtime.History{Size: maxStream}
					}
					return runtime.History{Size: 64}
				}),
				runtime.WithAdmit(func(req *http.Request) (runtime.Admission, error) {
					return runtime.Admission{Identity: req.URL.Query().Get("user")}, nil
				}),
				runtime.WithRoomPresence(func(room string) *runtime.Presence {
					if !strings.HasPrefix(room, "presence") {
						return nil
					}
					return &runtime.Presence{
						Who: func(s *session.Session) (string, any) {
							user, _ := session.Identity[string](s)
							return user, map[string]string{"name": strings.ToUpper(user)}
						},
						Grace:   3 * time.Second,
						Changed: r.PublishPresence,
					}
				}))
			r.HandleRooms(rt, Rooms{})
			On(r, "publish", func(s *session.Session, ev Event[map[string]any]) error {
				if room, ok := rt.Room(ev.Room); ok {
					_, err := r.Publish(room, "news", ev.Data)
					return err
				}
				return &Error{Code: "no_room", Message: ev.Room}
			})
			// burst publishes "tick" {n} to the envelope's room, for n
			// from From to From+N-1, and replies once they are all
			// published.
			type burst struct {
				From int `json:"from"`
				N    int `json:"n"`
			}
			Handle(r, "burst", func(s *session.Session, ev Event[burst]) (int, error) {
				room, ok := rt.Room(ev.Room)
				if !ok {
					return 0, &Error{Code: "no_room", Message: ev.Room}
				}
				for n := ev.Data.From; n < ev.Data.From+ev.Data.N; n++ {
					if _, err := r.Publish(room, "tick", map[string]int{"n": n}); err != nil {
						return 0, err
					}
				}
				return ev.Data.N, nil
			})
			On(r, "kick", func(s *session.Session, _ struct{}) error {
				s.Close(wire.StatusServiceRestart, "restart")
				return nil
			})
			// stream publishes "tick" {n} to the envelope's room, for n
			// from From to From+N-1, one every 5 ms, on a goroutine of
			// its own, and replies at once; the goroutine stops early
			// when the test ends (before the runtime shuts down).
			var streams sync.WaitGroup
			t.Cleanup(streams.Wait)
			ctx := t.Context()
			Handle(r, "stream", func(s *session.Session, ev Event[burst]) (int, error) {
				room, ok := rt.Room(ev.Room)
				if !ok {
					return 0, &Error{Code: "no_room", Message: ev.Room}
				}
				if ev.Data.N < 0 || ev.Data.N > maxStream {
					return 0, &Error{Code: "too_long", Message: strconv.Itoa(ev.Data.N)}
				}
				streams.Go(func() {
					tick := time.NewTicker(5 * time.Millisecond)
					defer tick.Stop()
					for n := ev.Data.From; n < ev.Data.From+ev.Data.N; n++ {
						select {
						case <-ctx.Done():
							return
						case <-tick.C:
						}
						if _, err := r.Publish(room, "tick", map[string]int{"n": n}); err != nil {
							t.Errorf("stream: %v", err)
							return
						}
					}
				})
				return ev.Data.N, nil
			})
			// exists says whether the envelope's room exists: it is
			// removed once its last member has left.
			Handle(r, "exists", func(s *session.Session, ev Event[struct{}]) (bool, error) {
				_, ok := rt.Room(ev.Room)
				return ok, nil
			})
			runNode(t, node, append(args, script, url, codec)...)
		})
	}
}

// maxStream bounds the events of TestJSClient's "stream", and is what its
// room "race" keeps.
const maxStream = 1000

// runNode runs node with args, bounded in time, and fails the test if it
// fails; it returns its standard output.
func runNode(t *testing.T, node string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr.String())
	}
	if testing.Verbose() {
		t.Logf("node %s:\n%s%s", strings.Join(args, " "), cut(string(out), 4000), stderr.String())
	}
	return out
}

// nodeWithWebSocket returns node and the flags that give it a global
// WebSocket, or skips (fails under CI) without Node.js 20+.
func nodeWithWebSocket(t *testing.T) (string, []string) {
	t.Helper()
	node, major := findNode(t)
	if major >= 22 {
		return node, nil
	}
	return node, []string{"--experimental-websocket"}
}

// findNode returns the path of Node.js 20 or later and its major version,
// or skips (fails under CI) without it.
func findNode(t *testing.T) (string, int) {
	t.Helper()
	missing := func(msg string) {
		t.Helper()
		msg += ": install Node.js 20 or later to run the browser client's checks"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	v, err := exec.Command(node, "--version").Output()
	if err != nil {
		missing("node --version: " + err.Error())
	}
	major, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(strings.TrimSpace(string(v)), ".", 2)[0], "v"))
	if major < 20 {
		missing("node " + strings.TrimSpace(string(v)) + " is too old")
	}
	return node, major
}

// mpCase is a value of the cross-check of js/msgpack.js with MsgPack.
type mpCase struct {
	name string
	v    any // encoded by MsgPack for node to decode
	// js is the value node must decode, as tagged JSON (see
	// js/crosscheck.mjs); empty means json.Marshal(v).
	js string
	// back is what node's encoding of its decoded value must decode to in
	// Go (into a value of back's type); nil means v.
	back any
	// differ says that node's encoding may differ from Go's bytes (they
	// are compared otherwise): Go maps have no order, Go encodes float32
	// as such, and JavaScript keeps milliseconds only.
	differ bool
}

// The tags of crosscheck.mjs for what JSON cannot say.
func jsBig(s string) string  { return `{"$bigint":"` + s + `"}` }
func jsBin(b []byte) string  { return `{"$bin":"` + hex.EncodeToString(b) + `"}` }
func jsDate(s string) string { return `{"$date":"` + s + `"}` }

// entity64 is Entity with float64 coordinates: what a float32 field
// becomes after a trip through JavaScript, whose numbers are all float64
// (and vmihailenco/msgpack does not decode a float64 into a float32).
type entity64 struct {
	ID    uint32  `json:"id"`
	Kind  uint8   `json:"k"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	VX    float64 `json:"vx"`
	VY    float64 `json:"vy"`
	Angle float64 `json:"a"`
	HP    uint16  `json:"hp"`
	Name  string  `json:"n"`
}

type snapshot64 struct {
	Tick     uint64     `json:"tick"`
	Entities []entity64 `json:"ents"`
}

// mixed is a struct with the kinds of fields payloads have.
type mixed struct {
	ID    uint64            `json:"id"`
	Name  string            `json:"name"`
	Score float64           `json:"score"`
	Pos   [2]int32          `json:"pos"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs"`
	Child *mixed            `json:"child"`
	OK    bool              `json:"ok"`
}

func mpCases() []mpCase {
	// A snapshot's float32 fields, as JavaScript sees them.
	var snap64 snapshot64
	snapJSON, _ := json.Marshal(snapshot(50))
	if err := json.Unmarshal(snapJSON, &snap64); err != nil {
		panic(err)
	}
	for i, e := range snapshot(50).Entities {
		x := &snap64.Entities[i]
		x.X, x.Y, x.VX, x.VY, x.Angle = float64(e.X), float64(e.Y), float64(e.VX), float64(e.VY), float64(e.Angle)
	}
	snap64JSON, _ := json.Marshal(snap64)

	var cs []mpCase
	for _, n := range []int64{
		0, 1, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<53 - 1, 1 << 53, math.MaxInt64,
		-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, -(1<<53 - 1), -1 << 53, math.MinInt64,
	} {
		c := mpCase{name: "int " + strconv.FormatInt(n, 10), v: n}
		if n > 1<<53-1 || n < -(1<<53-1) {
			c.js = jsBig(strconv.FormatInt(n, 10))
		}
		cs = append(cs, c)
	}
	cs = append(cs,
		mpCase{name: "uint64 max", v: uint64(math.MaxUint64), js: jsBig("18446744073709551615")},
		mpCase{name: "uint8", v: uint8(200)},
		mpCase{name: "int8", v: int8(-5)},
		mpCase{name: "int16", v: int16(-300)},
		mpCase{name: "uint16", v: uint16(60000)},
		mpCase{name: "int32", v: int32(-100000)},
		mpCase{name: "uint32", v: uint32(4000000000)},
		mpCase{name: "float64", v: 1.5},
		mpCase{name: "float64 0.1", v: 0.1},
		mpCase{name: "float64 tiny", v: -2.5e-300},
		mpCase{name: "float64 max", v: math.MaxFloat64},
		mpCase{name: "float64 integral", v: 3.0}, // Go writes an int
		mpCase{name: "float64 2^60", v: float64(1 << 60), js: jsBig("1152921504606846976")},
		mpCase{name: "float64 +Inf", v: math.Inf(1), js: `{"$num":"Infinity"}`},
		mpCase{name: "float64 -Inf", v: math.Inf(-1), js: `{"$num":"-Infinity"}`},
		mpCase{name: "float32", v: float32(0.1), js: "0.10000000149011612", back: float64(float32(0.1)), differ: true},
		mpCase{name: "nil", v: nil, js: "null"},
		mpCase{name: "true", v: true},
		mpCase{name: "false", v: false},
		mpCase{name: "string unicode", v: "héllo, 世界 😀 \x00\n"},
		mpCase{name: "string invalid UTF-8", v: "a\xffb", js: `"a\ufffdb"`, back: "a\ufffdb", differ: true},
	)
	for _, n := range []int{0, 31, 32, 255, 256, 65535, 65536} {
		cs = append(cs, mpCase{name: "str " + strconv.Itoa(n), v: strings.Repeat("s", n)})
	}
	cs = append(cs, mpCase{name: "str 2-byte runes 256", v: strings.Repeat("é", 128)})
	for _, n := range []int{0, 1, 255, 256, 65535, 65536} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		cs = append(cs, mpCase{name: "bin " + strconv.Itoa(n), v: b, js: jsBin(b)})
	}
	for _, n := range []int{0, 15, 16, 65535, 65536} {
		a := make([]int8, n)
		for i := range a {
			a[i] = int8(i%200 - 100)
		}
		cs = append(cs, mpCase{name: "array " + strconv.Itoa(n), v: a})
	}
	for _, n := range []int{0, 15, 16, 65536} { // 65535 is left to msgpack.test.js: big maps are slow under -race
		m := make(map[string]int, n)
		for i := range n {
			m[strconv.Itoa(i)] = i
		}
		cs = append(cs, mpCase{name: "map " + strconv.Itoa(n), v: m, differ: n > 1})
	}
	cs = append(cs,
		mpCase{name: "map of 1", v: map[string]bool{"yes": true}},
		mpCase{name: "nested any", v: map[string]any{"a": []any{1, "x", nil, true, 1.5, []any{}, map[string]any{}}}},
		mpCase{name: "int keys", v: map[int]string{1: "a"}, js: `{"1":"a"}`, back: map[string]string{"1": "a"}, differ: true},
		mpCase{name: "struct", v: mixed{
			ID: 1 << 40, Name: "ada", Score: -12.75, Pos: [2]int32{-3, 70000}, Tags: []string{"a", ""},
			Attrs: map[string]string{"k": "v"}, Child: &mixed{Name: "kid"}, OK: true,
		}},
		mpCase{name: "chat", v: chatMessage()},
		mpCase{name: "snapshot", v: snapshot(50), js: string(snap64JSON), back: snap64, differ: true},
		mpCase{name: "envelope", v: map[string]any{"e": "chat.msg", "r": "lobby", "i": uint64(7), "d": chatMessage()}, differ: true},
	)
	for _, tc := range []struct {
		name string
		t    time.Time
		js   string
	}{
		{"time 0", time.Unix(0, 0), "1970-01-01T00:00:00.000Z"},
		{"time 32-bit max", time.Unix(1<<32-1, 0), "2106-02-07T06:28:15.000Z"},
		{"time ms", time.UnixMilli(1732600000123), "2024-11-26T05:46:40.123Z"},
		{"time 34-bit", time.Unix(1<<32, 0), "2106-02-07T06:28:16.000Z"},
		{"time 34-bit max ms", time.Unix(1<<34-1, 999000000), "2514-05-30T01:53:03.999Z"},
		{"time 2^34", time.Unix(1<<34, 0), "2514-05-30T01:53:04.000Z"},
		{"time before 1970", time.UnixMilli(-1), "1969-12-31T23:59:59.999Z"},
		{"time 1900", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), "1900-01-01T00:00:00.000Z"},
	} {
		cs = append(cs, mpCase{name: tc.name, v: tc.t.UTC(), js: jsDate(tc.js)})
	}
	cs = append(cs, mpCase{name: "time ns", v: time.Unix(5, 123456789).UTC(), js: jsDate("1970-01-01T00:00:05.123Z"),
		back: time.Unix(5, 123000000), differ: true})
	for _, tc := range []struct {
		name string
		raw  string // hex
		js   string
	}{
		{"fixext1", "d40501", `{"$ext":5,"data":"01"}`},
		{"fixext2", "d5fe0102", `{"$ext":-2,"data":"0102"}`},
		{"fixext4", "d67f01020304", `{"$ext":127,"data":"01020304"}`},
		{"fixext8", "d780" + strings.Repeat("ab", 8), `{"$ext":-128,"data":"` + strings.Repeat("ab", 8) + `"}`},
		{"fixext16", "d801" + strings.Repeat("cd", 16), `{"$ext":1,"data":"` + strings.Repeat("cd", 16) + `"}`},
		{"ext8", "c7030a010203", `{"$ext":10,"data":"010203"}`},
		{"ext8 empty", "c7000a", `{"$ext":10,"data":""}`},
		{"ext16", "c801000a" + strings.Repeat("ee", 256), `{"$ext":10,"data":"` + strings.Repeat("ee", 256) + `"}`},
	} {
		b, err := hex.DecodeString(tc.raw)
		if err != nil {
			panic(err)
		}
		cs = append(cs, mpCase{name: tc.name, v: msgpack.RawMessage(b), js: tc.js})
	}
	return cs
}

// TestJSMsgPack cross-checks js/msgpack.js with MsgPack both ways: node
// (js/crosscheck.mjs) decodes what MsgPack encodes, to the values of the
// table, and encodes them again, to bytes that MsgPack decodes to the
// table's values, and that are Go's own bytes unless the case says
// otherwise.
func TestJSMsgPack(t *testing.T) {
	node, _ := findNode(t)
	cases := mpCases()
	type in struct {
		Name string `json:"name"`
		Hex  string `json:"hex"`
	}
	ins := make([]in, len(cases))
	goBytes := make([][]byte, len(cases))
	for i, c := range cases {
		b, err := MsgPack.Append(nil, c.v)
		if err != nil {
			t.Fatalf("%s: MsgPack: %v", c.name, err)
		}
		goBytes[i] = b
		ins[i] = in{c.name, hex.EncodeToString(b)}
	}
	file := filepath.Join(t.TempDir(), "cases.json")
	b, err := json.Marshal(ins)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("js", "crosscheck.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	var outs []struct {
		Name  string          `json:"name"`
		Value json.RawMessage `json:"value"`
		Hex   string          `json:"hex"`
		Error string          `json:"error"`
	}
	if err := json.Unmarshal(runNode(t, node, script, file), &outs); err != nil {
		t.Fatalf("crosscheck.mjs output: %v", err)
	}
	if len(outs) != len(cases) {
		t.Fatalf("crosscheck.mjs answered %d cases of %d", len(outs), len(cases))
	}
	for i, c := range cases {
		out := outs[i]
		t.Run(c.name, func(t *testing.T) {
			if out.Name != c.name || out.Error != "" {
				t.Fatalf("node: %q: %s", out.Name, out.Error)
			}
			want := c.js
			if want == "" {
				b, err := json.Marshal(c.v)
				if err != nil {
					t.Fatal(err)
				}
				want = string(b)
			}
			if !sameJSON(t, out.Value, []byte(want)) {
				t.Errorf("node decoded Go's %s\n to %s\nwant %s", short(hex.EncodeToString(goBytes[i])), shortValue(string(out.Value)), shortValue(want))
			}
			nb, err := hex.DecodeString(out.Hex)
			if err != nil {
				t.Fatal(err)
			}
			if !c.differ && out.Hex != hex.EncodeToString(goBytes[i]) {
				t.Errorf("node encoded %s\n       Go %s", short(out.Hex), short(hex.EncodeToString(goBytes[i])))
			}
			back := c.back
			if back == nil {
				back = c.v
			}
			if back == nil {
				var got any
				if err := MsgPack.Decode(nb, &got); err != nil || got != nil {
					t.Errorf("Go decoded node's %s to %v, %v; want nil", out.Hex, got, err)
				}
				return
			}
			got := reflect.New(reflect.TypeOf(back))
			if err := MsgPack.Decode(nb, got.Interface()); err != nil {
				t.Fatalf("Go cannot decode node's %s: %v", short(out.Hex), err)
			}
			if !sameValue(back, got.Elem().Interface()) {
				t.Errorf("Go decoded node's %s\n to %s\nwant %s", short(out.Hex), shortValue(got.Elem().Interface()), shortValue(back))
			}
		})
	}
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// sameValue compares what Go decoded with what it should be: times by
// instant, values holding interfaces (whose integers decode to the type
// of their encoding, int8 and the like) by their JSON, others exactly.
func sameValue(want, got any) bool {
	if w, ok := want.(time.Time); ok {
		return w.Equal(got.(time.Time))
	}
	if hasInterface(reflect.TypeOf(want), 0) {
		a, err1 := json.Marshal(want)
		b, err2 := json.Marshal(got)
		if err1 != nil || err2 != nil {
			return false
		}
		var va, vb any
		return json.Unmarshal(a, &va) == nil && json.Unmarshal(b, &vb) == nil && reflect.DeepEqual(va, vb)
	}
	return reflect.DeepEqual(want, got)
}

func hasInterface(t reflect.Type, depth int) bool {
	if depth > 10 {
		return false
	}
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return hasInterface(t.Elem(), depth+1)
	case reflect.Map:
		return hasInterface(t.Key(), depth+1) || hasInterface(t.Elem(), depth+1)
	case reflect.Struct:
		for i := range t.NumField() {
			if hasInterface(t.Field(i).Type, depth+1) {
				return true
			}
		}
	}
	return false
}

// shortValue prints v for messages, cut when long.
func shortValue(v any) string { return cut(fmt.Sprint(v), 300) }

// cut cuts s to n bytes.
func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// short cuts a long hex string for messages.
func short(s string) string {
	if len(s) > 120 {
		return s[:120] + "…(" + strconv.Itoa(len(s)/2) + " bytes)"
	}
	return s
}
