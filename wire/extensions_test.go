package wire

import (
	"net/http"
	"strings"
	"testing"
)

// Offers as clients send them, for the negotiation tables.
const (
	// Chrome, Firefox, Safari, Node's ws and gws's client by default.
	offerBrowser = "permessage-deflate; client_max_window_bits"
	// gws's client with context takeover off both ways, and Dial's
	// CompressionNoContextTakeover offer.
	offerGWSNoContext = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	// The Autobahn testsuite's default offer (cases 12.*, 13.1).
	offerAutobahn = "permessage-deflate; client_no_context_takeover; client_max_window_bits"
)

const (
	respNoContext = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	respTakeover  = "permessage-deflate"
)

// TestNegotiateDeflate runs the server's side of the negotiation (RFC
// 7692 section 7.1) over offers from browsers, libraries, the RFC's
// examples and broken ones: the answer is the first offer it can honour,
// and anything invalid or malformed is declined, never failed.
func TestNegotiateDeflate(t *testing.T) {
	full := CompressionParams{Enabled: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
	noContext := full
	noContext.ServerNoContextTakeover, noContext.ClientNoContextTakeover = true, true
	with := func(p CompressionParams, f func(*CompressionParams)) CompressionParams { f(&p); return p }
	nc, ct := CompressionNoContextTakeover, CompressionContextTakeover
	tests := []struct {
		name   string
		mode   CompressionMode
		offers []string // header lines
		resp   string   // "" for no compression
		params CompressionParams
	}{
		{"browser/no-context", nc, []string{offerBrowser}, respNoContext, noContext},
		{"browser/takeover", ct, []string{offerBrowser}, respTakeover, full},
		{"browser/disabled", CompressionDisabled, []string{offerBrowser}, "", CompressionParams{}},
		{"bare/no-context", nc, []string{"permessage-deflate"}, respNoContext, noContext},
		{"bare/takeover", ct, []string{"permessage-deflate"}, respTakeover, full},
		{"gws-no-context/takeover", ct, []string{offerGWSNoContext}, respNoContext, noContext},
		{"dial-no-context/takeover", ct, []string{deflateOffer(nc)}, respNoContext, noContext},
		{"dial-takeover/no-context", nc, []string{deflateOffer(ct)}, respNoContext, noContext},
		// The client's hint is echoed: the server keeps no window for it.
		{"autobahn/takeover", ct, []string{offerAutobahn}, "permessage-deflate; client_no_context_takeover",
			with(full, func(p *CompressionParams) { p.ClientNoContextTakeover = true })},
		{"autobahn-13.3/takeover", ct, []string{offerAutobahn + "; server_max_window_bits=9"},
			"permessage-deflate; client_no_context_takeover; server_max_window_bits=9",
			with(full, func(p *CompressionParams) { p.ClientNoContextTakeover, p.ServerMaxWindowBits = true, 9 })},
		{"autobahn-13.6/no-context", nc, []string{offerAutobahn + "; server_no_context_takeover; server_max_window_bits=15"},
			respNoContext + "; server_max_window_bits=15", noContext},
		{"window-8", nc, []string{"permessage-deflate; server_max_window_bits=8"}, respNoContext + "; server_max_window_bits=8",
			with(noContext, func(p *CompressionParams) { p.ServerMaxWindowBits = 8 })},
		// A client_max_window_bits with a value is what the client will
		// use; the answer leaves it out (the decompressor takes any).
		{"client-window-10", ct, []string{"permessage-deflate; client_max_window_bits=10"}, respTakeover,
			with(full, func(p *CompressionParams) { p.ClientMaxWindowBits = 10 })},
		{"client-window-quoted", ct, []string{`permessage-deflate; client_max_window_bits="10"`}, respTakeover,
			with(full, func(p *CompressionParams) { p.ClientMaxWindowBits = 10 })},
		{"quoted-escaped", ct, []string{`permessage-deflate; client_max_window_bits="1\0"`}, respTakeover,
			with(full, func(p *CompressionParams) { p.ClientMaxWindowBits = 10 })},
		// RFC 7692 section 7.1.3: a small window, with a fallback offer.
		{"rfc-fallback", ct, []string{"permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits"},
			"permessage-deflate; server_max_window_bits=10", with(full, func(p *CompressionParams) { p.ServerMaxWindowBits = 10 })},
		{"rfc-fallback-lines", ct, []string{"permessage-deflate; client_max_window_bits; server_max_window_bits=10", "permessage-deflate; client_max_window_bits"},
			"permessage-deflate; server_max_window_bits=10", with(full, func(p *CompressionParams) { p.ServerMaxWindowBits = 10 })},
		{"case", ct, []string{"Permessage-Deflate; Client_Max_Window_Bits; SERVER_NO_CONTEXT_TAKEOVER"}, "permessage-deflate; server_no_context_takeover",
			with(full, func(p *CompressionParams) { p.ServerNoContextTakeover = true })},
		{"spaces", ct, []string{" ,\tpermessage-deflate ;\tclient_max_window_bits = 12 , "}, respTakeover,
			with(full, func(p *CompressionParams) { p.ClientMaxWindowBits = 12 })},
		{"other-first", nc, []string{"x-webkit-deflate-frame; no_context_takeover, permessage-deflate"}, respNoContext, noContext},
		// Invalid offers are declined; the next one may be taken.
		{"window-7", nc, []string{"permessage-deflate; server_max_window_bits=7"}, "", CompressionParams{}},
		{"window-16", nc, []string{"permessage-deflate; server_max_window_bits=16"}, "", CompressionParams{}},
		{"window-leading-zero", nc, []string{"permessage-deflate; server_max_window_bits=09"}, "", CompressionParams{}},
		{"window-sign", nc, []string{"permessage-deflate; client_max_window_bits=+9"}, "", CompressionParams{}},
		{"window-no-value", nc, []string{"permessage-deflate; server_max_window_bits"}, "", CompressionParams{}},
		{"window-empty-quoted", nc, []string{`permessage-deflate; client_max_window_bits=""`}, "", CompressionParams{}},
		{"client-window-16", nc, []string{"permessage-deflate; client_max_window_bits=16"}, "", CompressionParams{}},
		{"duplicate", nc, []string{"permessage-deflate; client_max_window_bits; client_max_window_bits"}, "", CompressionParams{}},
		{"duplicate-case", nc, []string{"permessage-deflate; server_no_context_takeover; Server_No_Context_Takeover"}, "", CompressionParams{}},
		{"duplicate-window", nc, []string{"permessage-deflate; server_max_window_bits=10; server_max_window_bits=12"}, "", CompressionParams{}},
		{"flag-with-value", nc, []string{"permessage-deflate; server_no_context_takeover=1"}, "", CompressionParams{}},
		{"flag-with-quoted-value", nc, []string{`permessage-deflate; client_no_context_takeover=""`}, "", CompressionParams{}},
		{"unknown", nc, []string{"permessage-deflate; mem_level=8"}, "", CompressionParams{}},
		{"too-many", nc, []string{"permessage-deflate; a; b; c; d; e; f; g"}, "", CompressionParams{}},
		{"invalid-then-valid", ct, []string{"permessage-deflate; server_max_window_bits=7, permessage-deflate; server_no_context_takeover"},
			"permessage-deflate; server_no_context_takeover", with(full, func(p *CompressionParams) { p.ServerNoContextTakeover = true })},
		{"invalid-line-then-valid", nc, []string{"permessage-deflate; unknown", "permessage-deflate"}, respNoContext, noContext},
		{"not-deflate", nc, []string{"x-webkit-deflate-frame"}, "", CompressionParams{}},
		{"deflate-frame-prefix", nc, []string{"permessage-deflatex"}, "", CompressionParams{}},
		// A malformed field is ignored whole, even a valid offer in it.
		{"malformed-empty-param", nc, []string{"permessage-deflate; ;"}, "", CompressionParams{}},
		{"malformed-trailing-semicolon", nc, []string{"permessage-deflate;"}, "", CompressionParams{}},
		{"malformed-space-in-name", nc, []string{"permessage-deflate, x y"}, "", CompressionParams{}},
		{"malformed-unterminated", nc, []string{`permessage-deflate; client_max_window_bits="10`}, "", CompressionParams{}},
		{"malformed-no-value", nc, []string{"permessage-deflate; client_max_window_bits="}, "", CompressionParams{}},
		{"malformed-control", nc, []string{"permessage-deflate; client_max_window_bits=\"1\x000\""}, "", CompressionParams{}},
		{"malformed-other-line", nc, []string{"permessage-deflate", "x=;"}, "", CompressionParams{}},
		{"malformed-leading-semicolon", nc, []string{"; permessage-deflate"}, "", CompressionParams{}},
		{"empty", nc, []string{""}, "", CompressionParams{}},
		{"commas", nc, []string{",, ,"}, "", CompressionParams{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Sec-Websocket-Extensions": tt.offers}
			p, resp, ok := negotiateDeflate(h, tt.mode)
			if ok != (tt.resp != "") || resp != tt.resp || p != tt.params {
				t.Fatalf("negotiateDeflate(%q, %v) = %+v, %q, %v; want %+v, %q", tt.offers, tt.mode, p, resp, ok, tt.params, tt.resp)
			}
			if !ok {
				return
			}
			// Dial, had it made this offer, takes the answer as it was meant.
			rh := http.Header{"Sec-Websocket-Extensions": {resp}}
			cp, msg := acceptDeflate(rh, CompressionContextTakeover)
			if msg != "" {
				t.Fatalf("acceptDeflate(%q): %s", resp, msg)
			}
			want := p
			if !strings.Contains(resp, "client_max_window_bits") {
				want.ClientMaxWindowBits = 15
			}
			if cp != want {
				t.Fatalf("acceptDeflate(%q) = %+v, want %+v", resp, cp, want)
			}
		})
	}
}

// TestAcceptDeflate runs the client's side: the server's answer to Dial's
// offer is taken when it is a valid acceptance, and fails the handshake
// with a clear message otherwise, as RFC 7692 section 7.1 requires.
func TestAcceptDeflate(t *testing.T) {
	full := CompressionParams{Enabled: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
	with := func(f func(*CompressionParams)) CompressionParams { p := full; f(&p); return p }
	nc, ct := CompressionNoContextTakeover, CompressionContextTakeover
	tests := []struct {
		name   string
		mode   CompressionMode
		resp   []string // header lines; none for no header
		params CompressionParams
		err    string // part of the error, "" for none
	}{
		{"none", ct, nil, CompressionParams{}, ""},
		{"none/disabled", CompressionDisabled, nil, CompressionParams{}, ""},
		{"empty", ct, []string{""}, CompressionParams{}, ""},
		{"takeover", ct, []string{"permessage-deflate"}, full, ""},
		{"no-context-both", nc, []string{respNoContext}, with(func(p *CompressionParams) { p.ServerNoContextTakeover, p.ClientNoContextTakeover = true, true }), ""},
		{"no-context-server-only", nc, []string{"permessage-deflate; server_no_context_takeover"}, with(func(p *CompressionParams) { p.ServerNoContextTakeover, p.ClientNoContextTakeover = true, true }), ""},
		{"unasked-server-no-context", ct, []string{"permessage-deflate; server_no_context_takeover"}, with(func(p *CompressionParams) { p.ServerNoContextTakeover = true }), ""},
		{"client-no-context", ct, []string{"permessage-deflate; client_no_context_takeover"}, with(func(p *CompressionParams) { p.ClientNoContextTakeover = true }), ""},
		{"client-window", ct, []string{"permessage-deflate; client_max_window_bits=9"}, with(func(p *CompressionParams) { p.ClientMaxWindowBits = 9 }), ""},
		{"server-window", ct, []string{"permessage-deflate; server_max_window_bits=10"}, with(func(p *CompressionParams) { p.ServerMaxWindowBits = 10 }), ""},
		{"disabled", CompressionDisabled, []string{"permessage-deflate"}, CompressionParams{}, `extension "permessage-deflate", which was not offered`},
		{"other", ct, []string{"x-webkit-deflate-frame"}, CompressionParams{}, `extension "x-webkit-deflate-frame", which was not offered`},
		{"two", ct, []string{"permessage-deflate, permessage-deflate"}, CompressionParams{}, "more than one extension"},
		{"two-lines", ct, []string{"permessage-deflate", "permessage-deflate"}, CompressionParams{}, "more than one extension"},
		{"no-context-refused", nc, []string{"permessage-deflate; client_no_context_takeover"}, CompressionParams{}, "without server_no_context_takeover"},
		{"client-window-no-value", ct, []string{"permessage-deflate; client_max_window_bits"}, CompressionParams{}, "invalid permessage-deflate parameters"},
		{"server-window-no-value", ct, []string{"permessage-deflate; server_max_window_bits"}, CompressionParams{}, "invalid permessage-deflate parameters"},
		{"window-7", ct, []string{"permessage-deflate; client_max_window_bits=7"}, CompressionParams{}, "invalid permessage-deflate parameters"},
		{"unknown", ct, []string{"permessage-deflate; foo"}, CompressionParams{}, "invalid permessage-deflate parameters"},
		{"duplicate", ct, []string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, CompressionParams{}, "invalid permessage-deflate parameters"},
		{"malformed", ct, []string{"permessage-deflate;"}, CompressionParams{}, "malformed Sec-WebSocket-Extensions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.resp != nil {
				h["Sec-Websocket-Extensions"] = tt.resp
			}
			p, msg := acceptDeflate(h, tt.mode)
			if p != tt.params || (tt.err == "") != (msg == "") || !strings.Contains(msg, tt.err) {
				t.Fatalf("acceptDeflate(%q, %v) = %+v, %q; want %+v, %q", tt.resp, tt.mode, p, msg, tt.params, tt.err)
			}
		})
	}
}

// FuzzNegotiateDeflate feeds arbitrary Sec-WebSocket-Extensions fields to
// both sides of the negotiation: neither panics, and an answer the server
// gives is one the client takes, meaning the same parameters.
func FuzzNegotiateDeflate(f *testing.F) {
	for _, s := range []string{offerBrowser, offerGWSNoContext, offerAutobahn, "permessage-deflate; client_max_window_bits=\"1\\0\"",
		"permessage-deflate; server_max_window_bits=10, permessage-deflate", "a; b=\"c, d\"; e, permessage-deflate", ";", "\"", "permessage-deflate; x=\"\\"} {
		f.Add(s, "")
		f.Add(s, "permessage-deflate")
	}
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		h := http.Header{"Sec-Websocket-Extensions": {line1, line2}}
		for _, mode := range []CompressionMode{CompressionNoContextTakeover, CompressionContextTakeover} {
			p, resp, ok := negotiateDeflate(h, mode)
			acceptDeflate(h, mode)
			if !ok {
				if p != (CompressionParams{}) || resp != "" {
					t.Fatalf("declined with %+v, %q", p, resp)
				}
				continue
			}
			cp, msg := acceptDeflate(http.Header{"Sec-Websocket-Extensions": {resp}}, CompressionContextTakeover)
			switch {
			case msg != "":
				t.Fatalf("answer %q to %q: %s", resp, h.Values("Sec-Websocket-Extensions"), msg)
			case mode == CompressionNoContextTakeover && !(p.ServerNoContextTakeover && p.ClientNoContextTakeover):
				t.Fatalf("answer %q in no-context-takeover mode", resp)
			case cp.ServerNoContextTakeover != p.ServerNoContextTakeover || cp.ClientNoContextTakeover != p.ClientNoContextTakeover ||
				cp.ServerMaxWindowBits != p.ServerMaxWindowBits || p.ClientMaxWindowBits < 8 || p.ClientMaxWindowBits > 15:
				t.Fatalf("answer %q means %+v, the server took %+v", resp, cp, p)
			}
		}
	})
}
