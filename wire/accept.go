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
	if status, msg := checkUpgrade(w, r, &o); status != 0 {
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
	key := r.Header.Get("Sec-WebSocket-Key")
	sub := selectSubprotocol(r, o.Subprotocols)
	cp, ext, _ := negotiateDeflate(r.Header, o.Compression)

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

	var acc [28]byte
	b := make([]byte, 0, 256)
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = append(b, AcceptKey(&acc, key)...)
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
	b = append(b, "\r\n"...)
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

// checkUpgrade validates an upgrade request (RFC 6455 section 4.2.1) and
// returns the HTTP status to refuse it with, or 0.
func checkUpgrade(w http.ResponseWriter, r *http.Request, o *AcceptOptions) (int, string) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return http.StatusMethodNotAllowed, "websocket: upgrade needs method GET, not " + r.Method
	}
	if !r.ProtoAtLeast(1, 1) {
		return http.StatusBadRequest, "websocket: upgrade needs HTTP/1.1 or later"
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		return http.StatusUpgradeRequired, "websocket: request is not a WebSocket upgrade"
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return http.StatusUpgradeRequired, "websocket: unsupported protocol version " + strqt(v)
	}
	if !validKey(r.Header.Get("Sec-WebSocket-Key")) {
		return http.StatusBadRequest, "websocket: missing or malformed Sec-WebSocket-Key"
	}
	allowed := false
	if o.CheckOrigin != nil {
		allowed = o.CheckOrigin(r)
	} else {
		allowed = originAllowed(r, o.OriginPatterns)
	}
	if !allowed {
		return http.StatusForbidden, "websocket: origin " + strqt(r.Header.Get("Origin")) + " not allowed"
	}
	return 0, ""
}

func originAllowed(r *http.Request, patterns []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	host := strings.ToLower(u.Host)
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return true
		}
	}
	return false
}

func selectSubprotocol(r *http.Request, supported []string) string {
	var chosen string
	for _, s := range supported {
		headerTokens(r.Header, "Sec-WebSocket-Protocol", func(t string) bool {
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
