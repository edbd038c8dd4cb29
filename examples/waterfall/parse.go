package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Span is one span as the stdouttrace exporter wrote it, reduced to what a
// waterfall shows.
type Span struct {
	Name         string
	TraceID      string // 32 lower-case hex digits
	SpanID       string // 16 lower-case hex digits
	ParentID     string // "" for a root
	ParentRemote bool   // the parent came from another process
	Kind         int    // trace.SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer
	Start, End   time.Time
	Attrs        []Attr
	Events       []Event
	Links        []Link
	Error        bool   // status Error
	Status       string // the status description
}

// Attr is an attribute with its value as text: a string as it is, any
// other value as its JSON (1008, true, ["a","b"]).
type Attr struct{ Key, Value string }

// Event is a span event.
type Event struct {
	Name  string
	Time  time.Time
	Attrs []Attr
}

// Link is a span link.
type Link struct {
	TraceID, SpanID string
	Attrs           []Attr
}

// Attr returns the value of the attribute key, and whether the span has it.
func (s *Span) Attr(key string) (string, bool) {
	for _, a := range s.Attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// The JSON of tracetest.SpanStub, which stdouttrace encodes: SpanKind is a
// bare number, Status.Code a name ("Unset", "Error", "Ok"), an attribute a
// {"Key", "Value": {"Type", "Value"}} pair. Kind and code are kept raw, so
// that a number or a name is read either way.
type jsonSpan struct {
	Name        string
	SpanContext jsonContext
	Parent      jsonContext
	SpanKind    json.RawMessage
	StartTime   time.Time
	EndTime     time.Time
	Attributes  []jsonAttr
	Events      []struct {
		Name       string
		Attributes []jsonAttr
		Time       time.Time
	}
	Links []struct {
		SpanContext jsonContext
		Attributes  []jsonAttr
	}
	Status struct {
		Code        json.RawMessage
		Description string
	}
}

type jsonContext struct {
	TraceID, SpanID string
	Remote          bool
}

type jsonAttr struct {
	Key   string
	Value struct {
		Type  string
		Value json.RawMessage
	}
}

// Parse reads the spans of a stream of JSON objects, as stdouttrace writes
// them, pretty-printed or not, in the order they come (which is the order
// the spans ended in). Objects that are not spans, such as stdoutmetric's,
// are skipped, and so is a span met a second time. At something that is
// not JSON, such as a log line or an object cut short, Parse stops and
// returns the spans before it with an error that says where.
func Parse(r io.Reader) ([]Span, error) {
	dec := json.NewDecoder(r)
	var spans []Span
	seen := map[string]bool{}
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return spans, nil
		} else if err != nil {
			return spans, fmt.Errorf("byte %d, after %d spans: %w", dec.InputOffset(), len(spans), err)
		}
		var js jsonSpan
		if json.Unmarshal(raw, &js) != nil {
			continue
		}
		s, ok := js.span()
		if !ok || seen[s.TraceID+s.SpanID] {
			continue
		}
		seen[s.TraceID+s.SpanID] = true
		spans = append(spans, s)
	}
}

// span converts js, and says whether it is a span at all.
func (js *jsonSpan) span() (Span, bool) {
	tid, sid := strings.ToLower(js.SpanContext.TraceID), strings.ToLower(js.SpanContext.SpanID)
	if !validID(tid, 32) || !validID(sid, 16) {
		return Span{}, false
	}
	s := Span{
		Name:    js.Name,
		TraceID: tid,
		SpanID:  sid,
		Kind:    kind(js.SpanKind),
		Start:   js.StartTime,
		End:     js.EndTime,
		Attrs:   attrs(js.Attributes),
		Status:  js.Status.Description,
	}
	// A root's parent is written as zeros, not left out.
	if p := strings.ToLower(js.Parent.SpanID); validID(p, 16) {
		s.ParentID, s.ParentRemote = p, js.Parent.Remote
	}
	switch code := strings.Trim(string(js.Status.Code), `"`); code {
	case "Error", "1":
		s.Error = true
	}
	for _, e := range js.Events {
		s.Events = append(s.Events, Event{Name: e.Name, Time: e.Time, Attrs: attrs(e.Attributes)})
	}
	for _, l := range js.Links {
		s.Links = append(s.Links, Link{
			TraceID: strings.ToLower(l.SpanContext.TraceID),
			SpanID:  strings.ToLower(l.SpanContext.SpanID),
			Attrs:   attrs(l.Attributes),
		})
	}
	return s, true
}

// validID says whether id is n hex digits, not all zero.
func validID(id string, n int) bool {
	if len(id) != n || strings.Trim(id, "0") == "" {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// kinds are the names of trace.SpanKind's values, which it numbers 0 to 5.
var kinds = []string{"unspecified", "internal", "server", "client", "producer", "consumer"}

// kind reads a span kind written as a number or as a name.
func kind(raw json.RawMessage) int {
	if n, err := strconv.Atoi(string(raw)); err == nil && 0 <= n && n < len(kinds) {
		return n
	}
	name := strings.ToLower(strings.Trim(string(raw), `"`))
	for i, k := range kinds {
		if k == name {
			return i
		}
	}
	return 0
}

func attrs(in []jsonAttr) []Attr {
	if len(in) == 0 {
		return nil
	}
	out := make([]Attr, 0, len(in))
	for _, a := range in {
		v := string(a.Value.Value)
		var str string
		if json.Unmarshal(a.Value.Value, &str) == nil {
			v = str
		} else {
			// Compact, since a pretty-printed slice spans lines.
			var b bytes.Buffer
			if json.Compact(&b, a.Value.Value) == nil {
				v = b.String()
			}
		}
		out = append(out, Attr{Key: a.Key, Value: v})
	}
	return out
}
