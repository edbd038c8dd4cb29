package wire_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/shockwave-go/shockwave/internal/race"
	"github.com/shockwave-go/shockwave/wire"
)

// chromeHead is the opening handshake Chrome sends, without the offer of
// permessage-deflate that chromeDeflateHead adds.
const chromeHead = "GET /chat?room=lobby HTTP/1.1\r\n" +
	"Host: localhost:8080\r\n" +
	"Connection: Upgrade\r\n" +
	"Pragma: no-cache\r\n" +
	"Cache-Control: no-cache\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n" +
	"Upgrade: websocket\r\n" +
	"Origin: http://localhost:8080\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Accept-Language: en-GB,en-US;q=0.9,en;q=0.8\r\n" +
	"Cookie: session=3f2a9c1e7b; theme=dark\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"\r\n"

var chromeDeflateHead = strings.TrimSuffix(chromeHead, "\r\n") +
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"

// head builds a request head from its request line and field lines.
func head(line string, fields ...string) string {
	var b strings.Builder
	b.WriteString(line + "\r\n")
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// upgradeFields are the fields of a minimal valid upgrade request, which
// with replaces, adds to or (with an empty value) takes from.
func upgradeFields(with ...string) []string {
	fs := []string{
		"Host: example.com",
		"Connection: keep-alive, Upgrade",
		"Upgrade: WebSocket",
		"Sec-WebSocket-Version: 13",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
	}
	for _, w := range with {
		name, value, _ := strings.Cut(w, ":")
		i := slices.IndexFunc(fs, func(f string) bool { return strings.HasPrefix(f, name+":") })
		switch {
		case value == "" && i >= 0:
			fs = slices.Delete(fs, i, i+1)
		case i >= 0:
			fs[i] = w
		default:
			fs = append(fs, w)
		}
	}
	return fs
}

func upgradeHead(with ...string) string {
	return head("GET /ws HTTP/1.1", upgradeFields(with...)...)
}

func status(err error) int {
	var he *wire.HandshakeError
	if errors.As(err, &he) {
		return he.Status
	}
	return -1
}

func TestParseRequest(t *testing.T) {
	many := make([]string, 64)
	for i := range many {
		many[i] = fmt.Sprintf("X-Field-%d: %d", i, i)
	}
	tests := []struct {
		name, head string
		status     int // 0: parsed
	}{
		{"chrome", chromeHead, 0},
		{"chrome with deflate", chromeDeflateHead, 0},
		{"HTTP/1.0 without Host", head("GET / HTTP/1.0"), 0},
		{"HTTP/1.0 with Host", head("GET / HTTP/1.0", "Host: a"), 0},
		{"64 fields", head("GET / HTTP/1.1", append(many[:63:63], "Host: a")...), 0},
		{"65 fields", head("GET / HTTP/1.1", append(many, "Host: a")...), 431},
		{"values trimmed", head("GET / HTTP/1.1", "Host: \t a b \t"), 0},
		{"empty value", head("GET / HTTP/1.1", "Host: a", "X-Empty:", "X-Blank: \t "), 0},
		{"obs-text", head("GET / HTTP/1.1", "Host: a", "X: caf\xc3\xa9 \xff"), 0},
		{"query", head("GET /a%20b?q=%zz&x=/ HTTP/1.1", "Host: a"), 0},
		{"Content-Length 0", head("GET / HTTP/1.1", "Host: a", "Content-Length: 0", "content-length: 0"), 0},
		{"Content-Length 000", head("GET / HTTP/1.1", "Host: a", "Content-Length: 000"), 0},
		{"other method", head("OPTIONS / HTTP/1.1", "Host: a"), 0},

		{"HTTP/2.0", head("GET / HTTP/2.0", "Host: a"), 505},
		{"HTTP/1.2", head("GET / HTTP/1.2", "Host: a"), 505},
		{"HTTP/0.9", head("GET / HTTP/0.9", "Host: a"), 505},
		{"http/1.1", head("GET / http/1.1", "Host: a"), 400},
		{"HTTP/1.10", head("GET / HTTP/1.10", "Host: a"), 400},
		{"no version", head("GET /", "Host: a"), 400},
		{"two spaces", head("GET  / HTTP/1.1", "Host: a"), 400},
		{"trailing space", head("GET / HTTP/1.1 ", "Host: a"), 400},
		{"tab", head("GET\t/ HTTP/1.1", "Host: a"), 400},
		{"empty method", head(" / HTTP/1.1", "Host: a"), 400},
		{"method not a token", head("G(T / HTTP/1.1", "Host: a"), 400},
		{"empty line first", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"absolute form", head("GET http://a/ HTTP/1.1", "Host: a"), 400},
		{"asterisk", head("OPTIONS * HTTP/1.1", "Host: a"), 400},
		{"bad escape", head("GET /%zz HTTP/1.1", "Host: a"), 400},
		{"short escape", head("GET /%a HTTP/1.1", "Host: a"), 400},
		{"non-ASCII target", head("GET /caf\xc3\xa9 HTTP/1.1", "Host: a"), 400},
		{"control in target", head("GET /\x01 HTTP/1.1", "Host: a"), 400},
		{"bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
		{"bare LF field", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400},
		{"bare LF end", "GET / HTTP/1.1\r\nHost: a\n\r\n\r\n", 400},
		{"bare CR", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400},
		{"obs-fold", head("GET / HTTP/1.1", "Host: a", "X: b", " c"), 400},
		{"first field folded", head("GET / HTTP/1.1", " Host: a"), 400},
		{"tab fold", head("GET / HTTP/1.1", "Host: a", "X: b", "\tc"), 400},
		{"space before colon", head("GET / HTTP/1.1", "Host : a"), 400},
		{"tab before colon", head("GET / HTTP/1.1", "Host\t: a"), 400},
		{"no colon", head("GET / HTTP/1.1", "Host: a", "X"), 400},
		{"empty name", head("GET / HTTP/1.1", "Host: a", ": b"), 400},
		{"name not a token", head("GET / HTTP/1.1", "Host: a", "X@Y: b"), 400},
		{"non-ASCII name", head("GET / HTTP/1.1", "Host: a", "X\xc3\xa9: b"), 400},
		{"NUL in value", head("GET / HTTP/1.1", "Host: a", "X: b\x00c"), 400},
		{"DEL in value", head("GET / HTTP/1.1", "Host: a", "X: b\x7f"), 400},
		{"escape in value", head("GET / HTTP/1.1", "Host: a", "X: \x1b[31m"), 400},
		{"no Host", head("GET / HTTP/1.1"), 400},
		{"two Hosts", head("GET / HTTP/1.1", "Host: a", "host: b"), 400},
		{"two Hosts, HTTP/1.0", head("GET / HTTP/1.0", "Host: a", "Host: a"), 400},
		{"body", head("GET / HTTP/1.1", "Host: a", "Content-Length: 5"), 400},
		{"body 0010", head("GET / HTTP/1.1", "Host: a", "Content-Length: 0010"), 400},
		{"huge length", head("GET / HTTP/1.1", "Host: a", "Content-Length: 99999999999999999999999999"), 400},
		{"negative length", head("GET / HTTP/1.1", "Host: a", "Content-Length: -0"), 400},
		{"empty length", head("GET / HTTP/1.1", "Host: a", "Content-Length:"), 400},
		{"length list", head("GET / HTTP/1.1", "Host: a", "Content-Length: 0, 0"), 400},
		{"lengths differ", head("GET / HTTP/1.1", "Host: a", "Content-Length: 0", "Content-Length: 00"), 400},
		{"chunked", head("GET / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"), 400},
		{"chunked, HTTP/1.0", head("GET / HTTP/1.0", "Transfer-Encoding: chunked"), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const after = "\x81\x85frame"
			b := []byte(tt.head + after)
			var r wire.Request
			n, err := wire.ParseRequest(&r, b)
			if tt.status != 0 {
				if n != 0 || status(err) != tt.status {
					t.Fatalf("n %d, err %v; want status %d", n, err, tt.status)
				}
				if len(r.Method()) != 0 || r.Header("Host") != nil {
					t.Fatal("a refused head left parts in the Request")
				}
				return
			}
			if err != nil || n != len(tt.head) {
				t.Fatalf("n %d, err %v; want %d, nil", n, err, len(tt.head))
			}
			// net/http reads it the same way.
			hr, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.head)))
			if err != nil {
				t.Fatalf("http.ReadRequest: %v", err)
			}
			compareRequest(t, &r, hr)
		})
	}
}

// compareRequest checks that r holds what net/http read of the same head,
// and that r's methods agree with each other.
func compareRequest(t testing.TB, r *wire.Request, hr *http.Request) {
	t.Helper()
	if string(r.Method()) != hr.Method || string(r.Target()) != hr.RequestURI {
		t.Fatalf("request line %q %q, net/http %q %q", r.Method(), r.Target(), hr.Method, hr.RequestURI)
	}
	names := map[string]bool{}
	r.Fields(func(name, value []byte) bool {
		key := http.CanonicalHeaderKey(string(name))
		if names[key] {
			return true
		}
		names[key] = true
		var vals []string
		r.Values(string(name), func(v []byte) bool {
			vals = append(vals, string(v))
			return true
		})
		if got := string(r.Header(strings.ToUpper(string(name)))); got != vals[0] {
			t.Fatalf("Header(%q) = %q, Values gives %q", name, got, vals[0])
		}
		want := hr.Header.Values(key)
		if key == "Host" {
			return true
		}
		if key == "Content-Length" { // net/http keeps one of them
			vals = vals[:1]
		}
		if !slices.Equal(vals, want) {
			t.Fatalf("field %q: %q, net/http %q", name, vals, want)
		}
		return true
	})
	if got := string(r.Header("Host")); got != hr.Host {
		t.Fatalf("Host %q, net/http %q", got, hr.Host)
	}
	delete(names, "Host") // net/http takes it out of the header
	for key := range hr.Header {
		// net/http adds Cache-Control for a Pragma: no-cache.
		if !names[key] && !(key == "Cache-Control" && names["Pragma"]) {
			t.Fatalf("net/http has field %q, ParseRequest none", key)
		}
	}
	if r.Header("X-Not-There") != nil {
		t.Fatal("Header of a field not there is not nil")
	}
}

// TestParseRequestIncomplete cuts valid heads at every byte: each prefix
// is incomplete.
func TestParseRequestIncomplete(t *testing.T) {
	for _, h := range []string{chromeHead, chromeDeflateHead, head("GET / HTTP/1.0"), upgradeHead()} {
		var r wire.Request
		for i := range len(h) {
			if n, err := wire.ParseRequest(&r, []byte(h[:i])); n != 0 || err != wire.ErrIncomplete {
				t.Fatalf("%q: n %d, err %v; want ErrIncomplete", h[:i], n, err)
			}
		}
	}
	// A request line that is complete is judged at once.
	var r wire.Request
	for _, b := range []string{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", "GET / HTTP/1.1\n", "PRI * HTTP/2.0\r\n"} {
		if _, err := wire.ParseRequest(&r, []byte(b)); status(err) < 400 {
			t.Errorf("%q: err %v, want a refusal", b, err)
		}
	}
}

// rawCheck checks an upgrade request read from head as an event loop
// does: ParseRequest, Request.CheckUpgrade, and opts.CheckOrigin on
// Request.HTTP when it is set.
func rawCheck(head string, opts *wire.AcceptOptions) (*wire.Request, error) {
	r := new(wire.Request)
	if _, err := wire.ParseRequest(r, []byte(head)); err != nil {
		return nil, err
	}
	if err := r.CheckUpgrade(opts); err != nil {
		return nil, err
	}
	if opts != nil && opts.CheckOrigin != nil {
		hr, err := r.HTTP("192.0.2.1:4000")
		if err != nil {
			return nil, err
		}
		if !opts.CheckOrigin(hr) {
			return nil, &wire.HandshakeError{Status: http.StatusForbidden, Msg: "origin refused"}
		}
	}
	return r, nil
}

// TestRequestCheckUpgrade runs the cases of TestAcceptRefusals,
// TestAcceptChecksRecorder and TestAcceptTokenLists through both paths:
// net/http's (http.ReadRequest, CheckUpgrade and Upgrade) and the raw one
// (ParseRequest, Request.CheckUpgrade and AppendAccept). They must refuse
// with the same status, message and fields, or answer with the same 101.
func TestRequestCheckUpgrade(t *testing.T) {
	checkOrigin := func(ok bool) *wire.AcceptOptions {
		return &wire.AcceptOptions{CheckOrigin: func(r *http.Request) bool {
			return ok && r.RemoteAddr == "" || ok && r.RemoteAddr == "192.0.2.1:4000"
		}}
	}
	patterns := &wire.AcceptOptions{OriginPatterns: []string{"*.example.com", "*.Example.ORG"}}
	tests := []struct {
		name   string
		head   string
		opts   *wire.AcceptOptions
		status int // 0: upgraded
	}{
		{"ok", upgradeHead(), nil, 0},
		{"chrome", chromeHead, nil, 0},
		{"post", head("POST /ws HTTP/1.1", upgradeFields()...), nil, 405},
		{"HTTP/1.0", head("GET /ws HTTP/1.0", upgradeFields()...), nil, 400},
		{"no upgrade", upgradeHead("Upgrade:"), nil, 426},
		{"no connection upgrade", upgradeHead("Connection: keep-alive"), nil, 426},
		{"Connection on two lines", upgradeHead("Connection: keep-alive", "Connection: upgrade"), nil, 0},
		{"Upgrade h2c", upgradeHead("Upgrade: h2c"), nil, 426},
		{"Upgrade in capitals", upgradeHead("Upgrade: WEBSOCKET", "Connection: UPGRADE"), nil, 0},
		{"list with spaces and tabs", upgradeHead("Connection: keep-alive ,\tUpgrade\t", "Upgrade:  websocket "), nil, 0},
		{"empty elements", upgradeHead("Connection: ,,Upgrade,", "Upgrade: h2c,,websocket"), nil, 0},
		{"no-break space", upgradeHead("Connection: \u00a0Upgrade"), nil, 426},
		{"next line", upgradeHead("Connection: Upgrade\u0085"), nil, 426},
		{"long s", upgradeHead("Upgrade: web\u017focket"), nil, 426},
		{"kelvin sign", upgradeHead("Upgrade: websoc\u212aet"), nil, 426},
		{"prefix", upgradeHead("Upgrade: websocket2"), nil, 426},
		{"version 8", upgradeHead("Sec-WebSocket-Version: 8"), nil, 426},
		{"no version", upgradeHead("Sec-WebSocket-Version:"), nil, 426},
		{"two versions", upgradeHead("Sec-WebSocket-Version: 8", "Sec-Websocket-Version: 13"), nil, 426},
		{"no key", upgradeHead("Sec-WebSocket-Key:"), nil, 400},
		{"short key", upgradeHead("Sec-WebSocket-Key: c2hvcnQ="), nil, 400},
		{"key not base64", upgradeHead("Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!=="), nil, 400},
		{"key without padding", upgradeHead("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQAA"), nil, 400},
		{"cross origin", upgradeHead("Origin: http://evil.example"), nil, 403},
		{"same origin", upgradeHead("Origin: https://example.com"), nil, 0},
		{"same origin, other case", upgradeHead("Origin: https://EXAMPLE.com"), nil, 0},
		{"malformed origin", upgradeHead("Origin: ::"), nil, 403},
		{"null origin", upgradeHead("Origin: null"), nil, 403},
		{"origin with a quote", upgradeHead(`Origin: http://"evil"`), nil, 403},
		{"origin pattern", upgradeHead("Origin: https://app.example.com"), patterns, 0},
		{"origin pattern, capitals", upgradeHead("Origin: https://App.Example.Org"), patterns, 0},
		{"origin pattern miss", upgradeHead("Origin: https://example.org.evil.test"), patterns, 403},
		{"check origin refuses", upgradeHead(), checkOrigin(false), 403},
		{"check origin true", upgradeHead("Origin: https://evil.test"), checkOrigin(true), 0},
		{"carriage return", upgradeHead("Connection: \rUpgrade"), nil, 400},
		{"vertical tab", upgradeHead("Upgrade: \vwebsocket"), nil, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, rawErr := rawCheck(tt.head, tt.opts)
			if got := status(rawErr); rawErr != nil && got != tt.status || rawErr == nil && tt.status != 0 {
				t.Fatalf("raw path: %v, want status %d", rawErr, tt.status)
			}
			hr, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tt.head)))
			if err != nil {
				if r != nil || tt.status != 400 {
					t.Fatalf("http.ReadRequest: %v, ParseRequest took it", err)
				}
				return
			}
			w := &hijackRecorder{ResponseRecorder: httptest.NewRecorder(), br: bufio.NewReader(strings.NewReader(""))}
			u, httpErr := wire.Upgrade(w, hr, tt.opts)
			if status(httpErr) != status(rawErr) {
				t.Fatalf("net/http path: %v; raw path: %v", httpErr, rawErr)
			}
			if rawErr != nil {
				if tt.opts == nil || tt.opts.CheckOrigin == nil {
					compareRefusal(t, rawErr.(*wire.HandshakeError), w.ResponseRecorder)
				}
				return
			}
			resp, sub, cp := r.AppendAccept(nil, tt.opts)
			if !bytes.Equal(resp, w.conn.out.Bytes()) || sub != u.Subprotocol || cp != u.Compression {
				t.Fatalf("AppendAccept: %q %q %+v\nUpgrade: %q %q %+v", resp, sub, cp, w.conn.out.Bytes(), u.Subprotocol, u.Compression)
			}
		})
	}
}

// compareRefusal checks that AppendRefusal answers he as CheckUpgrade
// answered it through w.
func compareRefusal(t *testing.T, he *wire.HandshakeError, w *httptest.ResponseRecorder) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(wire.AppendRefusal(nil, he.Status, he.Msg, 0))), nil)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if resp.StatusCode != w.Code || body.String() != w.Body.String() {
		t.Fatalf("AppendRefusal: %d %q; net/http: %d %q", resp.StatusCode, body.String(), w.Code, w.Body)
	}
	for _, k := range []string{"Allow", "Upgrade", "Sec-Websocket-Version", "Content-Type", "X-Content-Type-Options"} {
		if !slices.Equal(resp.Header[k], w.Header()[k]) {
			t.Errorf("%s: %q, net/http %q", k, resp.Header[k], w.Header()[k])
		}
	}
	if !resp.Close {
		t.Error("AppendRefusal does not close the connection")
	}
}

// TestRequestAppendAccept compares AppendAccept with what Upgrade writes
// for the same request and options: subprotocols, each mode of
// compression and extra fields.
func TestRequestAppendAccept(t *testing.T) {
	heads := []string{
		chromeHead,
		chromeDeflateHead,
		upgradeHead("Sec-WebSocket-Protocol: v1.chat, v2.chat", "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10"),
		upgradeHead("Sec-WebSocket-Protocol: other", "Sec-WebSocket-Protocol: v1.chat",
			"Sec-WebSocket-Extensions: x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover; client_max_window_bits=9"),
		upgradeHead("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16, permessage-deflate; server_no_context_takeover"),
		upgradeHead("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=\"10\""),
		upgradeHead("Sec-WebSocket-Extensions: permessage-deflate;;"),
	}
	options := []*wire.AcceptOptions{
		nil,
		{Subprotocols: []string{"v2.chat", "v1.chat"}},
		{Options: wire.Options{Compression: wire.CompressionNoContextTakeover}, Header: http.Header{"X-Served-By": {"a", "b"}}},
		{Options: wire.Options{Compression: wire.CompressionContextTakeover}, Subprotocols: []string{"v1.chat"}},
	}
	for i, h := range heads {
		for j, opts := range options {
			r, err := rawCheck(h, opts)
			if err != nil {
				t.Fatalf("head %d: %v", i, err)
			}
			hr, err := http.ReadRequest(bufio.NewReader(strings.NewReader(h)))
			if err != nil {
				t.Fatal(err)
			}
			w := &hijackRecorder{ResponseRecorder: httptest.NewRecorder(), br: bufio.NewReader(strings.NewReader(""))}
			u, err := wire.Upgrade(w, hr, opts)
			if err != nil {
				t.Fatal(err)
			}
			dst := []byte("kept")
			resp, sub, cp := r.AppendAccept(dst, opts)
			if !bytes.Equal(resp[4:], w.conn.out.Bytes()) || string(resp[:4]) != "kept" || sub != u.Subprotocol || cp != u.Compression {
				t.Fatalf("head %d, options %d: AppendAccept %q %q %+v\nUpgrade %q %q %+v",
					i, j, resp, sub, cp, w.conn.out.Bytes(), u.Subprotocol, u.Compression)
			}
		}
	}
}

// refOriginAllowed is the origin check as Accept did it before it read
// origins without url.Parse.
func refOriginAllowed(origin, host string, patterns []string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(u.Host)); ok {
			return true
		}
	}
	return false
}

// TestRequestOrigin checks the origin check against refOriginAllowed on
// origins of every shape.
func TestRequestOrigin(t *testing.T) {
	patterns := []string{"*.example.com", "Trusted.TEST:*"}
	for _, origin := range []string{
		"", "null", "http://example.com", "HTTPS://EXAMPLE.COM", "http://example.com:", "http://example.com:8080",
		"http://a.example.com", "http://a.example.com:1", "http://trusted.test:9", "http://trusted.test",
		"http://example.com/", "http://example.com/path", "http://example.com?q", "http://example.com#f",
		"http://u@example.com", "http://[::1]:8080", "http://[::1", "http://example.com:80:80", "http://:80",
		"http://", "//example.com", "example.com", "1http://example.com", "a+b-c.d://example.com",
		"http://ex%41mple.com", "http://caf%C3%A9.example.com", "http://café.example.com", "http:///example.com",
		"http://exa mple.com", "http://example.com:8x", "ht!tp://example.com", "://example.com", "http://example_com",
	} {
		for _, host := range []string{"example.com", "example.com:8080", ":80", "café.example.com"} {
			want := refOriginAllowed(origin, host, patterns)
			opts := &wire.AcceptOptions{OriginPatterns: patterns}
			_, err := rawCheck(upgradeHead("Host: "+host, "Origin: "+origin), opts)
			if got := err == nil; got != want {
				t.Errorf("Origin %q, Host %q: allowed %v (%v), want %v", origin, host, got, err, want)
			}
		}
	}
}

// TestAppendRefusal reads what AppendRefusal writes with net/http's
// client: the status, the fields that go with it and the body, whatever
// msg holds.
func TestAppendRefusal(t *testing.T) {
	tests := []struct {
		status     int
		msg        string
		retryAfter int
		fields     map[string]string
		body       string
	}{
		{405, "websocket: upgrade needs method GET, not POST", 0, map[string]string{"Allow": "GET"}, ""},
		{426, "websocket: request is not a WebSocket upgrade", 0,
			map[string]string{"Upgrade": "websocket", "Sec-Websocket-Version": "13"}, ""},
		{503, "server busy", 30, map[string]string{"Retry-After": "30"}, ""},
		{403, "websocket: origin \"http://x\r\nSet-Cookie: a=b\r\n\r\n<script>\" not allowed", 0, nil,
			"websocket: origin \"http://x??Set-Cookie: a=b????<script>\" not allowed\n"},
		{400, "", 0, nil, "\n"},
		{299, "odd", 0, nil, ""},
		{42, "not a status", 0, nil, ""},
	}
	for _, tt := range tests {
		b := wire.AppendRefusal([]byte("kept"), tt.status, tt.msg, tt.retryAfter)
		if !bytes.HasPrefix(b, []byte("kept")) {
			t.Fatalf("%q: dst overwritten", b)
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b[4:])), nil)
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		want, wantBody := tt.status, tt.body
		if want < 100 || want > 999 {
			want = 500
		}
		if wantBody == "" {
			wantBody = tt.msg + "\n"
		}
		if resp.StatusCode != want || body.String() != wantBody || resp.ContentLength != int64(len(wantBody)) {
			t.Errorf("%q: status %d, body %q", b, resp.StatusCode, body.String())
		}
		if !resp.Close || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("%q: header %v", b, resp.Header)
		}
		for k, v := range tt.fields {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%q: %s = %q, want %q", b, k, got, v)
			}
		}
		if len(b)-4 != bytes.Index(b[4:], []byte("\r\n\r\n"))+4+body.Len() {
			t.Errorf("%q: bytes after the response", b)
		}
	}
}

// TestRequestHTTP checks the *http.Request that Request.HTTP makes against
// http.ReadRequest's, and that it shares nothing with the head's bytes.
func TestRequestHTTP(t *testing.T) {
	for _, h := range []string{chromeDeflateHead, head("GET /a%2Fb?x=1&y=%zz HTTP/1.0", "x-lower: 1", "X-LOWER: 2")} {
		b := []byte(h)
		var r wire.Request
		if _, err := wire.ParseRequest(&r, b); err != nil {
			t.Fatal(err)
		}
		got, err := r.HTTP("192.0.2.1:4000")
		if err != nil {
			t.Fatal(err)
		}
		want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(h)))
		if err != nil {
			t.Fatal(err)
		}
		clear(b) // nothing of got may change
		want.Header.Del("Cache-Control")
		got.Header.Del("Cache-Control")
		switch {
		case got.Method != want.Method, got.URL.String() != want.URL.String(), got.Proto != want.Proto,
			got.ProtoMajor != want.ProtoMajor, got.ProtoMinor != want.ProtoMinor, got.Host != want.Host,
			got.RequestURI != want.RequestURI, got.RemoteAddr != "192.0.2.1:4000", got.Context() == nil, got.Body == nil:
			t.Fatalf("HTTP() = %+v\nhttp.ReadRequest: %+v", got, want)
		}
		if fmt.Sprint(got.Header) != fmt.Sprint(want.Header) {
			t.Fatalf("header %v, want %v", got.Header, want.Header)
		}
	}
}

// TestRequestAllocs: reading and answering Chrome's handshake allocates
// nothing, with permessage-deflate offered or not, when compression is
// off; a refusal written into a buffer with room allocates nothing either.
func TestRequestAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector allocates")
	}
	opts := &wire.AcceptOptions{Subprotocols: []string{"chat"}, OriginPatterns: []string{"*.example.com"}}
	dst := make([]byte, 0, 512)
	for _, h := range []string{chromeHead, chromeDeflateHead} {
		b := []byte(h)
		var r wire.Request
		handshake := func() {
			if _, err := wire.ParseRequest(&r, b); err != nil {
				t.Fatal(err)
			}
			if err := r.CheckUpgrade(opts); err != nil {
				t.Fatal(err)
			}
			if resp, _, _ := r.AppendAccept(dst[:0], opts); len(resp) == 0 {
				t.Fatal("no response")
			}
		}
		if a := testing.AllocsPerRun(100, handshake); a != 0 {
			t.Errorf("%d-byte head: %v allocs, want 0", len(h), a)
		}
	}
	if a := testing.AllocsPerRun(100, func() { wire.AppendRefusal(dst[:0], 426, "websocket: request is not a WebSocket upgrade", 5) }); a != 0 {
		t.Errorf("AppendRefusal: %v allocs, want 0", a)
	}
	var r wire.Request
	garbage := bytes.Repeat([]byte("x"), 16<<10)
	if a := testing.AllocsPerRun(100, func() { wire.ParseRequest(&r, garbage) }); a != 0 {
		t.Errorf("ParseRequest of garbage: %v allocs, want 0", a)
	}
}

// BenchmarkHandshake reads and answers Chrome's handshake the event
// loop's way (ParseRequest, CheckUpgrade, AppendAccept), and net/http's
// way for comparison; and looks for the end of a 16 KiB head that has
// none, as each read of a slow client costs.
func BenchmarkHandshake(b *testing.B) {
	opts := &wire.AcceptOptions{Subprotocols: []string{"chat"}}
	deflate := &wire.AcceptOptions{Options: wire.Options{Compression: wire.CompressionNoContextTakeover}}
	for _, bc := range []struct {
		name string
		head string
		opts *wire.AcceptOptions
	}{
		{"raw/chrome", chromeHead, opts},
		{"raw/chrome-deflate-off", chromeDeflateHead, opts},
		{"raw/chrome-deflate-on", chromeDeflateHead, deflate},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := []byte(bc.head)
			dst := make([]byte, 0, 512)
			var r wire.Request
			b.SetBytes(int64(len(h)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := wire.ParseRequest(&r, h); err != nil {
					b.Fatal(err)
				}
				if err := r.CheckUpgrade(bc.opts); err != nil {
					b.Fatal(err)
				}
				dst, _, _ = r.AppendAccept(dst[:0], bc.opts)
			}
		})
	}
	b.Run("net/http/chrome", func(b *testing.B) {
		b.SetBytes(int64(len(chromeHead)))
		b.ReportAllocs()
		for b.Loop() {
			hr, err := http.ReadRequest(bufio.NewReader(strings.NewReader(chromeHead)))
			if err != nil {
				b.Fatal(err)
			}
			w := &hijackRecorder{ResponseRecorder: httptest.NewRecorder(), br: bufio.NewReader(strings.NewReader(""))}
			if _, err := wire.Upgrade(w, hr, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("incomplete-16KiB", func(b *testing.B) {
		h := []byte(chromeHead[:len(chromeHead)-2] + strings.Repeat("X-Padding: "+strings.Repeat("a", 80)+"\r\n", 16<<10/93))
		var r wire.Request
		b.SetBytes(int64(len(h)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := wire.ParseRequest(&r, h); err != wire.ErrIncomplete {
				b.Fatal(err)
			}
		}
	})
}

// An event loop reads the opening handshake into a buffer of its own and
// answers it without net/http.
func ExampleParseRequest() {
	buf := []byte("GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n" +
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n")
	opts := &wire.AcceptOptions{Subprotocols: []string{"chat"}}

	var r wire.Request // one per loop: it holds no memory of its own
	n, err := wire.ParseRequest(&r, buf)
	if err == wire.ErrIncomplete {
		return // read more, up to a bound, then answer 431
	}
	if err == nil {
		err = r.CheckUpgrade(opts)
	}
	var he *wire.HandshakeError
	if errors.As(err, &he) {
		out := wire.AppendRefusal(nil, he.Status, he.Msg, 0)
		_ = out // write it, then close
		return
	}
	out, sub, _ := r.AppendAccept(nil, opts)
	fmt.Printf("%s", strings.ReplaceAll(string(out), "\r\n", "\n"))
	fmt.Printf("subprotocol %q, %d bytes of frames after the head\n", sub, len(buf)-n)
	// Output:
	// HTTP/1.1 101 Switching Protocols
	// Upgrade: websocket
	// Connection: Upgrade
	// Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
	// Sec-WebSocket-Protocol: chat
	//
	// subprotocol "chat", 0 bytes of frames after the head
}
