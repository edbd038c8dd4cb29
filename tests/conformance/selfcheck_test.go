package conformance

import (
	"testing"
)

// TestJudge checks the verdict logic on made-up outcomes, against what
// Autobahn's case.py gives for them.
func TestJudge(t *testing.T) {
	echo := echoCase("e", "echo", nil, msgText(str("hi")))
	fail := failCase("f", "fail", codeProtocol, nil, []event{msgText(str("hi"))}, []event{})
	utf := failFastCase("u", "utf8", nil, []event{timeoutEv("A")}, nil, nil)
	closeC := Case{ID: "c", OK: []event{}, ClosedByMe: true, Codes: []int{codeNormal}, RequireClean: true, WrongCodeFails: true}
	info := Case{ID: "i", OK: []event{}, ClosedByMe: true, Codes: []int{codeNormal}, Informational: true}
	type outcome struct {
		events                              []event
		closeSent, closedByMe, closeRecvd   bool
		code                                int
		droppedByMe                         bool
		wantBehavior, wantClose, wantRawBeh string
	}
	for _, tc := range []struct {
		name string
		c    Case
		o    outcome
	}{
		{"echo ok", echo, outcome{[]event{msgText(str("hi"))}, true, true, true, 1000, false, OK, OK, OK}},
		{"echo wrong payload", echo, outcome{[]event{msgText(str("ho"))}, true, true, true, 1000, false, Failed, OK, Failed}},
		{"echo as binary", echo, outcome{[]event{msgBinary(str("hi"))}, true, true, true, 1000, false, Failed, OK, Failed}},
		{"echo then server closes first", echo, outcome{[]event{msgText(str("hi"))}, true, false, true, 1000, false, OK, Failed, OK}},
		{"echo, no close reply", echo, outcome{[]event{msgText(str("hi"))}, true, true, false, -1, true, OK, Unclean, OK}},
		{"echo, wrong code", echo, outcome{[]event{msgText(str("hi"))}, true, true, true, 1001, false, OK, WrongCode, OK}},
		{"echo, empty close", echo, outcome{[]event{msgText(str("hi"))}, true, true, true, -1, false, OK, OK, OK}},
		{"fail ok", fail, outcome{[]event{msgText(str("hi"))}, true, false, true, 1002, false, OK, OK, OK}},
		{"fail before echo", fail, outcome{[]event{}, true, false, true, 1002, false, NonStrict, OK, NonStrict}},
		{"fail with 1007", fail, outcome{[]event{msgText(str("hi"))}, true, false, true, 1007, false, OK, WrongCode, OK}},
		{"fail, bare drop", fail, outcome{[]event{msgText(str("hi"))}, false, false, false, -1, false, OK, OK, OK}},
		{"never fails", fail, outcome{[]event{msgText(str("hi"))}, true, true, false, -1, true, OK, Failed, OK}},
		{"utf8 fail fast", utf, outcome{[]event{timeoutEv("A")}, true, false, true, 1007, false, OK, OK, OK}},
		{"utf8 late", utf, outcome{[]event{timeoutEv("A"), timeoutEv("B")}, true, false, true, 1007, false, NonStrict, OK, NonStrict}},
		{"utf8 wrong endpoint", utf, outcome{[]event{timeoutEv("A")}, true, true, true, 1000, false, Failed, Failed, Failed}},
		{"close wrong code", closeC, outcome{[]event{}, true, true, true, 1002, false, Failed, WrongCode, Failed}},
		{"informational", info, outcome{[]event{msgText(str("x"))}, true, true, true, 1000, false, Informational, Informational, Failed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			s := &session{events: o.events, closeSent: o.closeSent, closedByMe: o.closedByMe,
				closeRecvd: o.closeRecvd, remoteCode: o.code, droppedByMe: o.droppedByMe, serverGone: !o.droppedByMe}
			r := tc.c.judge(s)
			if r.Behavior != o.wantBehavior || r.BehaviorClose != o.wantClose || r.RawBehavior != o.wantRawBeh {
				t.Errorf("got %s/%s (raw %s), want %s/%s (raw %s)", r.Behavior, r.BehaviorClose, r.RawBehavior,
					o.wantBehavior, o.wantClose, o.wantRawBeh)
			}
		})
	}
}

// TestFirstInvalid checks where the fail-fast cases expect the server to
// fail.
func TestFirstInvalid(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"hello", 5},
		{"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited", 12}, // 6.4.1: on 0x90
		{"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", 12},     // 6.3.1: on 0xa0
		{"\xce\xba\xe1", 3},             // a valid prefix: only its end is wrong
		{"\x80", 0},                     // lone continuation
		{"\xc0\xaf", 0},                 // C0 is never valid
		{"\xe0\x80\xaf", 1},             // overlong: E0 needs A0-BF next
		{"\xf0\x8f\xbf\xbf", 1},         // overlong: F0 needs 90-BF next
		{"\xf4\x8f\xbf\xbf", 4},         // U+10FFFF is valid
		{"\xf7\xbf\xbf\xbf", 0},         // F5-FF are never valid
		{"\xed\x9f\xbf", 3},             // U+D7FF
		{"\xed\xbf\xbf", 1},             // surrogate
		{"\xc2\x20", 1},                 // lead byte followed by ASCII
		{"\xef\xbf\xbf", 3},             // non-character, valid
		{"\xe0\xa0\x80\xc2\xa2\x80", 5}, // a stray continuation after two characters
	} {
		if got := firstInvalid([]byte(tc.in)); got != tc.want {
			t.Errorf("firstInvalid(%x) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
