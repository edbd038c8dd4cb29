package conformance

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Autobahn's verdicts (autobahntestsuite/case/case.py).
const (
	OK            = "OK"
	NonStrict     = "NON-STRICT"
	Failed        = "FAILED"
	WrongCode     = "WRONG CODE"
	Unclean       = "UNCLEAN"
	Informational = "INFORMATIONAL"
	Unimplemented = "UNIMPLEMENTED" // the server declined permessage-deflate (12.x, 13.x)
)

// Case is one test case: the script the client plays and what Autobahn
// expects, in its own terms, plus the stricter things RFC 6455 requires that
// Autobahn lets pass.
type Case struct {
	ID   string // Autobahn's case id, such as "6.4.1"; extra cases have a suffix or an "x." prefix
	Desc string
	// Extra marks a case Autobahn does not have.
	Extra bool
	// Large marks the cases of 8 and 16 MiB: go test -short leaves them
	// out, and they run one at a time, not in parallel with the others.
	Large bool

	Steps []step

	// Offer is the client's permessage-deflate offers (RFC 7692), in its
	// order, or none. The server's answer must accept one of them (RFC
	// 7692 section 7.1), or, when Declines is set, none: the offers are
	// invalid and must be declined, not failed (section 5).
	Offer    []string
	Declines bool
	// OwnVerdict: the script gives the behaviour verdict itself, as the
	// onMessage of Autobahn's 12.x and 13.x does; the events are the
	// echoes' SHA-1 sums, and OK is not looked at.
	OwnVerdict bool

	// OK and NonStrict are the event sequences that earn these verdicts
	// (Autobahn's expected[Case.OK] and expected[Case.NON_STRICT]). With
	// neither matching, the case fails. NonStrict nil means there is none.
	OK, NonStrict []event

	// The closing behaviour (Autobahn's expectedClose): who must send the
	// first close frame, which codes the server's close frame may carry
	// (an empty close frame is accepted, as Autobahn does), whether the
	// closing handshake must complete.
	ClosedByMe   bool
	Codes        []int
	RequireClean bool
	// WrongEndpointFatal fails the case when the wrong side closed
	// (Autobahn's closedByWrongEndpointIsFatal: the UTF-8 cases).
	WrongEndpointFatal bool
	// WrongCodeFails fails the case on a wrong close code (the 7.x cases).
	WrongCodeFails bool
	// Informational cases get INFORMATIONAL from Autobahn whatever happens
	// (7.1.6, 7.13.x). We still judge them: strictly, against Want.
	Informational bool

	// Strict requirements beyond Autobahn's.
	// Want, if not nil, is the exact event sequence required (default OK).
	Want []event
	// CodeRequired requires the server's close frame to carry a code, from
	// StrictCodes (default Codes). It is implied when the server must
	// fail the connection (ClosedByMe false): RFC 6455 section 7.1.7 says to
	// fail it with a close frame, and 7.4.1 gives the code to use.
	CodeRequired bool
	StrictCodes  []int

	// Wait bounds each wait for something the server must do (default
	// defaultWait). A correct server never makes the test wait this long.
	Wait time.Duration
}

// defaultWait bounds every wait for the server. It only matters when the
// server under test is broken (or the machine is stalled); it is not a
// performance assertion.
const defaultWait = 10 * time.Second

// Result is the outcome of a case: Autobahn's verdicts and the strict
// violations.
type Result struct {
	Behavior      string
	BehaviorClose string
	// RawBehavior and RawBehaviorClose are the verdicts before the
	// informational override.
	RawBehavior, RawBehaviorClose string
	Events                        []event
	ClosedByMe                    bool
	WasClean                      bool
	DroppedByMe                   bool
	RemoteCode                    int
	Strict                        []string
	// Answer is the server's Sec-WebSocket-Extensions, Note why the
	// script gave its verdict, HandshakeFailed why Autobahn's client
	// would have failed the opening handshake.
	Answer, Note, HandshakeFailed string
	// Compressed counts the messages from the server that came
	// compressed.
	Compressed int
}

func (r *Result) String() string {
	code := "none"
	if r.RemoteCode >= 0 {
		code = fmt.Sprint(r.RemoteCode)
	}
	str := fmt.Sprintf("behavior %s, close %s (closedByMe=%v wasClean=%v droppedByMe=%v remoteCloseCode=%s), %d events",
		r.Behavior, r.BehaviorClose, r.ClosedByMe, r.WasClean, r.DroppedByMe, code, len(r.Events))
	if r.Answer != "" {
		str += fmt.Sprintf("; answer %q, %d messages compressed", r.Answer, r.Compressed)
	}
	if r.Note != "" {
		str += "; " + r.Note
	}
	if r.HandshakeFailed != "" {
		str += "; handshake failed: " + r.HandshakeFailed
	}
	return str
}

// Failures lists why the server is not strictly conformant on this case.
func (c *Case) Failures(r *Result) []string {
	var f []string
	if c.Informational {
		if r.RawBehaviorClose != OK {
			f = append(f, "closing behaviour "+r.RawBehaviorClose)
		}
	} else {
		if r.Behavior != OK {
			f = append(f, "Autobahn verdict "+r.Behavior+", want OK")
		}
		if r.BehaviorClose != OK {
			f = append(f, "Autobahn closing verdict "+r.BehaviorClose+", want OK")
		}
	}
	want := c.OK
	if c.Want != nil {
		want = c.Want
	}
	if !c.OwnVerdict && !eventsEqual(want, r.Events) {
		f = append(f, "events "+describeEvents(r.Events)+", want "+describeEvents(want))
	}
	switch {
	case c.Declines && r.Answer != "":
		f = append(f, fmt.Sprintf("the server accepted %q with %q: it must decline it", c.Offer, r.Answer))
	case c.Offer != nil && !c.Declines && r.Answer == "" && r.HandshakeFailed == "":
		f = append(f, fmt.Sprintf("the server declined the offers %q", c.Offer))
	}
	if r.RemoteCode == -1 && (c.CodeRequired || !c.ClosedByMe) {
		f = append(f, "the server's close frame has no code (or there was none)")
	}
	if codes := c.strictCodes(); r.RemoteCode >= 0 && !slices.Contains(codes, r.RemoteCode) {
		f = append(f, fmt.Sprintf("close code %d, want one of %v", r.RemoteCode, codes))
	}
	if !r.WasClean {
		f = append(f, "no clean closing handshake: the server must send a close frame and then close the TCP connection")
	}
	return append(f, r.Strict...)
}

func (c *Case) strictCodes() []int {
	if c.StrictCodes != nil {
		return c.StrictCodes
	}
	return c.Codes
}

func describeEvents(evs []event) string {
	if len(evs) == 0 {
		return "[]"
	}
	if len(evs) > 4 {
		return fmt.Sprintf("[%v %v ... %v] (%d events)", evs[0], evs[1], evs[len(evs)-1], len(evs))
	}
	s := make([]string, len(evs))
	for i, e := range evs {
		s[i] = e.String()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// Run plays the case against the ws:// URL and judges the outcome.
func (c *Case) Run(url string) (*Result, error) {
	wait := c.Wait
	if wait == 0 {
		wait = defaultWait
	}
	s, err := dialRaw(url, wait, dialOptions{offers: c.Offer, digests: c.OwnVerdict, autobahn: !c.Extra})
	if err != nil {
		return nil, err
	}
	defer s.nc.Close()
	if s.handshakeFail != "" {
		// Autobahn's client fails the handshake: both verdicts are
		// FAILED (the connection was never open).
		return &Result{Behavior: Failed, BehaviorClose: Failed, RawBehavior: Failed, RawBehaviorClose: Failed,
			RemoteCode: -1, Strict: s.strict, Answer: s.answer, HandshakeFailed: s.handshakeFail}, nil
	}
	for _, st := range c.Steps {
		if !st.run(s) {
			break
		}
	}
	// Autobahn's finishWhenDone: once the events are the expected ones,
	// the client starts the closing handshake, unless it has already (the
	// cases that send their own close frame). With a broken server that
	// never gets there, it closes after the wait, as closeAfter does.
	if c.ClosedByMe {
		s.waitUntil(wait, func() bool { return !s.openLocked() || c.OwnVerdict || eventsEqual(c.OK, s.events) })
		s.sendClose(c.closeCode())
	}
	// Wait for the server to close the TCP connection, after its close
	// frame (the server must close it: RFC 6455 section 7.1.1), and drop it
	// ourselves when it does not (Autobahn's killAfter), unless the client
	// has failed the connection already.
	if !s.waitUntil(wait, func() bool { return s.serverGone || s.droppedByMe }) {
		s.drop()
	}
	<-s.readDone
	return c.judge(s), nil
}

func (c *Case) closeCode() int {
	if len(c.Codes) > 0 {
		return c.Codes[0]
	}
	return 1000
}

// judge computes the verdicts as Autobahn's Case.onConnectionLost does.
func (c *Case) judge(s *session) *Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Result{
		Events:      s.events,
		ClosedByMe:  s.closedByMe,
		DroppedByMe: s.droppedByMe,
		// wasClean: close frames went both ways (the client answers every
		// close frame) and the server dropped the TCP connection.
		WasClean:   s.closeRecvd && s.closeSent && !s.droppedByMe,
		RemoteCode: s.remoteCode,
		Strict:     slices.Clone(s.strict),
	}
	r.Answer, r.Compressed = s.answer, s.zmsgs
	r.Behavior = Failed
	switch {
	case c.OwnVerdict:
		r.Note = s.note
		if s.verdict != "" {
			r.Behavior = s.verdict
		}
	case eventsEqual(c.OK, r.Events):
		r.Behavior = OK
	case c.NonStrict != nil && eventsEqual(c.NonStrict, r.Events):
		r.Behavior = NonStrict
	}
	switch {
	case c.ClosedByMe != r.ClosedByMe:
		r.BehaviorClose = Failed
	case c.RequireClean && !r.WasClean:
		r.BehaviorClose = Unclean
	case r.RemoteCode >= 0 && !slices.Contains(c.Codes, r.RemoteCode):
		r.BehaviorClose = WrongCode
	default:
		r.BehaviorClose = OK
	}
	if c.WrongEndpointFatal && c.ClosedByMe != r.ClosedByMe {
		r.Behavior = Failed
	}
	if c.WrongCodeFails && r.BehaviorClose == WrongCode {
		r.Behavior = Failed
	}
	r.RawBehavior, r.RawBehaviorClose = r.Behavior, r.BehaviorClose
	if c.Informational {
		r.Behavior, r.BehaviorClose = Informational, Informational
	}
	return r
}
