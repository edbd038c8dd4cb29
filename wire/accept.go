package wire

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"time"
)

// AcceptOptions configure the server side of the opening handshake. The zero
// value means the defaults.
type AcceptOptions struct {
	Options

	// Subprotocols lists the subprotocols the server speaks, in its order
	// of preference. The first one the client also offers is chosen; if
	// none matches, the connection is accepted with no subprotocol.
	Subprotocols []string

	// OriginPatterns lists hosts, besides the request's own, whose pages
	// may open connections: patterns in path.Match syntax compared with the
	// host (and port) of the Origin header, ignoring case, such as
	// "example.com" or "*.example.com". By default a request whose Origin
	// names another host is refused with 403 Forbidden, which stops other
	// sites' pages from using a visitor's cookies on this server. A request
	// with no Origin header (not from a browser) is always allowed.
	OriginPatterns []string

	// CheckOrigin, if set, replaces the origin check: the upgrade goes on
	// only if it returns true.
	CheckOrigin func(r *http.Request) bool

	// Header holds extra header fields for the 101 response.
	Header http.Header

	// HandshakeTimeout bounds writing the 101 response. Reading the
	// request is the HTTP server's: set http.Server.ReadHeaderTimeout.
	// Defaults to DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

// DefaultHandshakeTimeout bounds the server's side of the opening handshake.
const DefaultHandshakeTimeout = 10 * time.Second

// Accept upgrades an HTTP request to a WebSocket connection. It works from
// any net/http handler (and so from chi, gin, echo and others), taking the
// connection over with http.ResponseController's Hijack.
//
// When the request is not a valid WebSocket upgrade, Accept writes the HTTP
// error itself (405 for a method other than GET, 426 for a missing upgrade
// or another protocol version, 400 for a malformed key, 403 for a refused
// origin) and returns a *HandshakeError; the caller must not write to w then.
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	u, err := Upgrade(w, r, opts)
	if err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = opts.Options
	}
	return newConn(u.Conn, true, u.Buffered, u.Subprotocol, u.Compression, &o), nil
}

// Upgraded is a connection taken over by Upgrade, for transports that do
// their own framing on top of the raw connection (Shockwave's sessions).
type Upgraded struct {
	Conn        net.Conn
	Buffered    []byte // bytes the client sent after its handshake, already read
	Subprotocol string
	// Compression is the permessage-deflate the handshake agreed on, when
	// Options.Compression allowed it: the reader of the connection must
	// then inflate what comes (ReaderOptions.Compression), and whatever
	// it sends compressed must follow these parameters.
	Compression CompressionParams
	// Client is the client's address when the caller knows it better than
	// Conn.RemoteAddr does: as a trusted proxy in front reported it. Upgrade
	// leaves it zero.
	Client netip.Addr
}

// CheckUpgrade answers r as Upgrade would if it is not a valid upgrade
// request (its method, version, headers and origin), with an HTTP error,
// and returns the *HandshakeError; for a valid one it writes nothing and
// returns nil. It lets a server do its own checks (who the client is)
// only for requests that can be upgraded; Upgrade checks again.
func CheckUpgrade(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) error {
	var o AcceptOptions
	if opts != nil {
		o = *opts
	}
	if status, msg := checkUpgrade(r.Method, r.ProtoAtLeast(1, 1), r.Host, r.Header, &o, r); status != 0 {
		for _, f := range refusalFields(status) {
			w.Header().Set(f.name, f.value)
		}
		http.Error(w, msg, status)
		return &HandshakeError{Status: status, Msg: msg}
	}
	return nil
}

// Upgrade does what Accept does up to the 101 response and returns the raw
// connection instead of a Conn. Options other than the handshake's are not
// used, but for Compression: permessage-deflate is negotiated when it is
// set, and the caller must then speak it (see Upgraded.Compression).
// Errors are as for Accept.
func Upgrade(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (Upgraded, error) {
	if err := CheckUpgrade(w, r, opts); err != nil {
		return Upgraded{}, err
	}
	var o AcceptOptions
	if opts != nil {
		o = *opts
	}
	b, sub, cp := appendSwitching(make([]byte, 0, 256), r.Header, &o)

	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "websocket: cannot take over the connection", http.StatusInternalServerError)
		return Upgraded{}, &HandshakeError{Status: http.StatusInternalServerError, Msg: "hijack: " + err.Error()}
	}
	// The HTTP server may have set deadlines for the request; ours bounds
	// the response.
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	nc.SetDeadline(time.Time{})
	nc.SetWriteDeadline(time.Now().Add(o.HandshakeTimeout))
	if _, err := nc.Write(b); err != nil {
		nc.Close()
		return Upgraded{}, err
	}
	nc.SetWriteDeadline(time.Time{})
	return Upgraded{Conn: nc, Buffered: bytes.Clone(buffered(brw.Reader)), Subprotocol: sub, Compression: cp}, nil
}

// buffered returns the bytes the HTTP server read past the request: frames
// a client sent right after its handshake.
func buffered(br *bufio.Reader) []byte {
	if br == nil || br.Buffered() == 0 {
		return nil
	}
	p, _ := br.Peek(br.Buffered())
	return p
}

// appendSwitching appends to b the 101 response to a request with header
// h that passed checkUpgrade, and returns it with the subprotocol and the
// compression chosen. Upgrade and Request.AppendAccept both answer with it.
func appendSwitching[F fields](b []byte, h F, o *AcceptOptions) ([]byte, string, CompressionParams) {
	sub := selectSubprotocol(h, o.Subprotocols)
	cp, ext, _ := negotiateDeflate(h, o.Compression)
	var acc [28]byte
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = append(b, AcceptKey(&acc, firstValue(h, "Sec-WebSocket-Key"))...)
	if sub != "" {
		b = append(b, "\r\nSec-WebSocket-Protocol: "...)
		b = append(b, sub...)
	}
	if ext != "" {
		b = append(b, "\r\nSec-WebSocket-Extensions: "...)
		b = append(b, ext...)
	}
	b = append(b, "\r\n"...)
	for k, vs := range o.Header {
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...), sub, cp
}

// checkUpgrade validates an upgrade request (RFC 6455 section 4.2.1) and
// returns the HTTP status to refuse it with, or 0. The request is given
// by its method, whether its version is 1.1 or later, its host and its
// header, which are views of a Request's bytes on the raw path: the
// message is built of copies. o.CheckOrigin is called with hr, and left
// to the caller when hr is nil.
func checkUpgrade[F fields](method string, http11 bool, host string, h F, o *AcceptOptions, hr *http.Request) (int, string) {
	if method != http.MethodGet {
		return http.StatusMethodNotAllowed, "websocket: upgrade needs method GET, not " + method
	}
	if !http11 {
		return http.StatusBadRequest, "websocket: upgrade needs HTTP/1.1 or later"
	}
	if !headerHasToken(h, "Connection", "upgrade") || !headerHasToken(h, "Upgrade", "websocket") {
		return http.StatusUpgradeRequired, "websocket: request is not a WebSocket upgrade"
	}
	if v := firstValue(h, "Sec-WebSocket-Version"); v != "13" {
		return http.StatusUpgradeRequired, "websocket: unsupported protocol version " + strqt(v)
	}
	if !validKey(firstValue(h, "Sec-WebSocket-Key")) {
		return http.StatusBadRequest, "websocket: missing or malformed Sec-WebSocket-Key"
	}
	origin := firstValue(h, "Origin")
	allowed := false
	switch {
	case o.CheckOrigin == nil:
		allowed = originAllowed(origin, host, o.OriginPatterns)
	case hr != nil:
		allowed = o.CheckOrigin(hr)
	default:
		allowed = true // the caller's to check
	}
	if !allowed {
		return http.StatusForbidden, "websocket: origin " + strqt(origin) + " not allowed"
	}
	return 0, ""
}

// refusalField is a header field that goes with a refusal.
type refusalField struct{ name, value string }

var (
	refuse405 = []refusalField{{"Allow", http.MethodGet}}
	// RFC 9110 section 15.5.22 has a 426 name the protocol to upgrade
	// to, and RFC 6455 section 4.2.2 the versions the server speaks.
	refuse426 = []refusalField{{"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Sec-WebSocket-Version", "13"}}
)

// refusalFields returns the header fields a refusal of an upgrade with
// status carries: CheckUpgrade sets them and AppendRefusal writes them.
func refusalFields(status int) []refusalField {
	switch status {
	case http.StatusMethodNotAllowed:
		return refuse405
	case http.StatusUpgradeRequired:
		return refuse426
	}
	return nil
}

// originAllowed reports whether a request from origin to host may be
// upgraded: no origin, the host itself or one the patterns match.
func originAllowed(origin, host string, patterns []string) bool {
	if origin == "" {
		return true
	}
	oh, ok := originHost(origin)
	if !ok {
		return false
	}
	if strings.EqualFold(oh, host) {
		return true
	}
	oh = strings.ToLower(oh) // allocates only if oh has capitals
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), oh); ok {
			return true
		}
	}
	return false
}

// originHost returns the host (and port) of an Origin, as url.Parse gives
// it, or false if url.Parse fails or gives none. Origins as browsers send
// them, "scheme://host[:port]" with a host of letters, digits, dots and
// hyphens, are read without url.Parse, which allocates: for them it gives
// the same, a substring of origin (TestRequestOrigin and FuzzParseRequest
// compare the two). Others go through url.Parse.
func originHost(origin string) (string, bool) {
	// url.Parse finds a host only after "//": without one there is none
	// (an opaque "null" origin, for one).
	if !strings.Contains(origin, "//") {
		return "", false
	}
	if i := schemeEnd(origin); i > 0 && strings.HasPrefix(origin[i:], "://") {
		host := origin[i+3:]
		colons := 0
		plain := host != ""
		for j := 0; j < len(host) && plain; j++ {
			switch c := host[j]; {
			case c == ':':
				colons++
				plain = colons == 1
			case '0' <= c && c <= '9':
			case colons == 0 && ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '.' || c == '-'):
			default:
				plain = false
			}
		}
		if plain {
			return host, true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return "", false
	}
	return u.Host, true
}

// schemeEnd returns the length of the URL scheme at the start of s (a
// letter, then letters, digits, '+', '-' and '.'), 0 if there is none.
func schemeEnd(s string) int {
	for i := range len(s) {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return i
		}
	}
	return len(s)
}

// selectSubprotocol returns the first of the server's subprotocols the
// client offers, or "": one of supported, never a view of h.
func selectSubprotocol[F fields](h F, supported []string) string {
	var chosen string
	for _, s := range supported {
		headerTokens(h, "Sec-WebSocket-Protocol", func(t string) bool {
			if t == s {
				chosen = s
				return false
			}
			return true
		})
		if chosen != "" {
			break
		}
	}
	return chosen
}

func strqt(s string) string { return "\"" + s + "\"" }
