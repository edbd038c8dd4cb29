package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shockwave-go/shockwave/wire"
)

// sendableRef is the rule of RFC 6455 section 7.4 and the IANA registry:
// the registered codes other than the reserved 1004 and the local-only 1005,
// 1006 and 1015, and the range 3000-4999.
func sendableRef(c int) bool {
	return c >= 1000 && c <= 1003 || c >= 1007 && c <= 1014 || c >= 3000 && c <= 4999
}

func closeBody(code uint16, reason string) []byte {
	return append([]byte{byte(code >> 8), byte(code)}, reason...)
}

func TestStatusCodeSendable(t *testing.T) {
	tests := []struct {
		code wire.StatusCode
		want bool
	}{
		{0, false}, {1, false}, {999, false},
		{1000, true}, {1001, true}, {1002, true}, {1003, true},
		{1004, false}, {1005, false}, {1006, false},
		{1007, true}, {1008, true}, {1009, true}, {1010, true}, {1011, true}, {1012, true}, {1013, true}, {1014, true},
		{1015, false}, {1016, false}, {2000, false}, {2999, false},
		{3000, true}, {3999, true}, {4000, true}, {4999, true},
		{5000, false}, {65535, false}, {-1, false},
	}
	for _, tt := range tests {
		if got := tt.code.Sendable(); got != tt.want {
			t.Errorf("StatusCode(%d).Sendable() = %v, want %v", int(tt.code), got, tt.want)
		}
	}
}

// TestParseClosePayloadCodes tries every 16-bit code.
func TestParseClosePayloadCodes(t *testing.T) {
	for c := range 1 << 16 {
		code, reason, err := wire.ParseClosePayload(closeBody(uint16(c), "bye"))
		if sendableRef(c) {
			if err != nil || code != wire.StatusCode(c) || string(reason) != "bye" {
				t.Fatalf("code %d: got %d %q %v, want it accepted", c, code, reason, err)
			}
		} else if !errors.Is(err, wire.ErrBadCloseCode) {
			t.Fatalf("code %d: err = %v, want ErrBadCloseCode", c, err)
		}
	}
}

func TestParseClosePayload(t *testing.T) {
	tests := []struct {
		name       string
		p          []byte
		wantCode   wire.StatusCode
		wantReason string
		wantErr    error
	}{
		{"empty", nil, wire.StatusNoStatusRcvd, "", nil},
		{"one byte", []byte{0x03}, 0, "", wire.ErrBadClosePayload},
		{"code only", []byte{0x03, 0xe8}, 1000, "", nil},
		{"reason", closeBody(1001, "going away"), 1001, "going away", nil},
		{"UTF-8 reason", closeBody(4000, "κόσμε 🎉"), 4000, "κόσμε 🎉", nil},
		{"longest reason", closeBody(1000, strings.Repeat("r", 123)), 1000, strings.Repeat("r", 123), nil},
		{"invalid UTF-8 reason", closeBody(1000, "bad \xff"), 0, "", wire.ErrInvalidCloseReason},
		{"surrogate in reason", closeBody(1000, "\xed\xa0\x80"), 0, "", wire.ErrInvalidCloseReason},
		{"truncated character in reason", closeBody(1000, "\xe2\x82"), 0, "", wire.ErrInvalidCloseReason},
		{"code 0", closeBody(0, ""), 0, "", wire.ErrBadCloseCode},
		{"code 999", closeBody(999, ""), 0, "", wire.ErrBadCloseCode},
		{"code 1004", closeBody(1004, ""), 0, "", wire.ErrBadCloseCode},
		{"code 1005", closeBody(1005, ""), 0, "", wire.ErrBadCloseCode},
		{"code 1006", closeBody(1006, ""), 0, "", wire.ErrBadCloseCode},
		{"code 1015", closeBody(1015, ""), 0, "", wire.ErrBadCloseCode},
		{"code 1016", closeBody(1016, ""), 0, "", wire.ErrBadCloseCode},
		{"code 2999", closeBody(2999, ""), 0, "", wire.ErrBadCloseCode},
		{"code 5000", closeBody(5000, ""), 0, "", wire.ErrBadCloseCode},
		{"code 65535", closeBody(65535, ""), 0, "", wire.ErrBadCloseCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, reason, err := wire.ParseClosePayload(tt.p)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || code != tt.wantCode || string(reason) != tt.wantReason {
				t.Fatalf("got %d %q %v, want %d %q", code, reason, err, tt.wantCode, tt.wantReason)
			}
		})
	}
}

// TestCloseErrorCodes checks the close codes the close-payload errors fail
// a connection with: 1002 for framing, 1007 for bad UTF-8.
func TestCloseErrorCodes(t *testing.T) {
	tests := []struct {
		err  error
		want wire.StatusCode
	}{
		{wire.ErrBadClosePayload, wire.StatusProtocolError},
		{wire.ErrBadCloseCode, wire.StatusProtocolError},
		{wire.ErrInvalidCloseReason, wire.StatusInvalidFramePayloadData},
	}
	for _, tt := range tests {
		if got := wire.CodeOf(tt.err); got != tt.want {
			t.Errorf("CodeOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestAppendClosePayload(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct {
		name   string
		code   wire.StatusCode
		reason string
		want   []byte
	}{
		{"normal", 1000, "", closeBody(1000, "")},
		{"reason", 4001, "go away", closeBody(4001, "go away")},
		{"no status gives an empty payload", wire.StatusNoStatusRcvd, "ignored", nil},
		{"1006 is replaced", wire.StatusAbnormalClosure, "x", closeBody(1011, "x")},
		{"1015 is replaced", wire.StatusTLSHandshake, "", closeBody(1011, "")},
		{"1004 is replaced", 1004, "", closeBody(1011, "")},
		{"0 is replaced", 0, "", closeBody(1011, "")},
		{"5000 is replaced", 5000, "", closeBody(1011, "")},
		{"reason of 123 bytes is kept", 1000, long[:123], closeBody(1000, long[:123])},
		{"long reason is cut to 123 bytes", 1000, long, closeBody(1000, long[:123])},
		// "é" is 2 bytes; one straddling byte 123 is dropped whole.
		{"cut before a 2-byte character", 1000, long[:122] + "é", closeBody(1000, long[:122])},
		{"2-byte character ending at 123", 1000, long[:121] + "é" + "z", closeBody(1000, long[:121]+"é")},
		{"cut before a 3-byte character", 1000, long[:121] + "€", closeBody(1000, long[:121])},
		{"cut before a 4-byte character", 1000, long[:120] + "🎉", closeBody(1000, long[:120])},
		{"cut after a 4-byte character", 1000, long[:119] + "🎉" + "🎉", closeBody(1000, long[:119]+"🎉")},
		{"only 4-byte characters", 1000, strings.Repeat("🎉", 40), closeBody(1000, strings.Repeat("🎉", 30))},
		// A peer fails a connection whose close reason is not UTF-8.
		{"invalid byte is replaced", 1000, "bad \xff end", closeBody(1000, "bad \uFFFD end")},
		{"surrogate is replaced", 1000, "\xed\xa0\x80", closeBody(1000, "\uFFFD\uFFFD\uFFFD")},
		{"truncated character is replaced", 1000, "x\xe2\x82", closeBody(1000, "x\uFFFD\uFFFD")},
		{"replacement that does not fit is cut", 1000, long[:121] + "\xff", closeBody(1000, long[:121])},
		{"long reason with an invalid byte", 1000, "\xff" + long, closeBody(1000, "\uFFFD"+long[:120])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wire.AppendClosePayload([]byte("pre"), tt.code, tt.reason)
			if !bytes.Equal(got, append([]byte("pre"), tt.want...)) {
				t.Fatalf("AppendClosePayload = %q, want pre + %q", got, tt.want)
			}
			got = got[3:]
			if len(got) > wire.MaxControlPayload {
				t.Fatalf("payload of %d bytes does not fit a control frame", len(got))
			}
			code, reason, err := wire.ParseClosePayload(got)
			if err != nil {
				t.Fatalf("result does not parse: %v", err)
			}
			// Ranging over a string yields U+FFFD for each invalid byte.
			var valid strings.Builder
			for _, r := range tt.reason {
				valid.WriteRune(r)
			}
			if !strings.HasPrefix(valid.String(), string(reason)) || !utf8.Valid(reason) {
				t.Fatalf("reason %q is not a valid prefix of %q", reason, tt.reason)
			}
			if tt.code.Sendable() && code != tt.code {
				t.Fatalf("code %d, want %d", code, tt.code)
			}
		})
	}
}

func TestAppendClosePayloadAllocs(t *testing.T) {
	buf := make([]byte, 0, wire.MaxControlPayload)
	for _, reason := range []string{"bye", strings.Repeat("x", 200), "bad \xff " + strings.Repeat("é", 100)} {
		if n := testing.AllocsPerRun(100, func() { wire.AppendClosePayload(buf[:0], 1000, reason) }); n != 0 {
			t.Errorf("AppendClosePayload(%.10q...): %v allocs per run, want 0", reason, n)
		}
	}
}

// TestCloseErrorAs: errors.As finds a CloseError, value or pointer, for a
// target of either kind (gorilla/websocket's users write *CloseError), and
// CloseStatus and CodeOf see it.
func TestCloseErrorAs(t *testing.T) {
	want := wire.CloseError{Code: 4001, Reason: "bye"}
	errs := map[string]error{
		"value":           want,
		"wrapped value":   fmt.Errorf("read: %w", want),
		"pointer":         &want,
		"wrapped pointer": fmt.Errorf("read: %w", &want),
		"joined":          errors.Join(errors.New("x"), want),
	}
	for name, err := range errs {
		var v wire.CloseError
		if !errors.As(err, &v) || v != want {
			t.Errorf("%s: errors.As into a CloseError = %v", name, v)
		}
		var p *wire.CloseError
		if !errors.As(err, &p) || p == nil || *p != want {
			t.Errorf("%s: errors.As into a *CloseError = %v", name, p)
		}
		if got := wire.CloseStatus(err); got != want.Code {
			t.Errorf("%s: CloseStatus = %v", name, got)
		}
		if got := wire.CodeOf(err); got != want.Code {
			t.Errorf("%s: CodeOf = %v", name, got)
		}
	}
	var p *wire.CloseError
	if errors.As(errors.New("x"), &p) || errors.As(wire.ErrMessageTooBig, &p) {
		t.Error("errors.As found a CloseError in another error")
	}
}

func TestCloseErrorAndStatus(t *testing.T) {
	ce := wire.CloseError{Code: 4000, Reason: "bye"}
	if got := wire.CloseStatus(ce); got != 4000 {
		t.Errorf("CloseStatus = %d, want 4000", got)
	}
	if got := wire.CloseStatus(errors.Join(errors.New("x"), ce)); got != 4000 {
		t.Errorf("CloseStatus of a wrapped CloseError = %d, want 4000", got)
	}
	if got := wire.CloseStatus(errors.New("x")); got != -1 {
		t.Errorf("CloseStatus of another error = %d, want -1", got)
	}
	if got := ce.Error(); !strings.Contains(got, "4000") || !strings.Contains(got, "bye") {
		t.Errorf("Error() = %q", got)
	}
}
