package wire

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DialOptions configure the client side of the opening handshake. The zero
// value means the defaults.
type DialOptions struct {
	Options

	// Subprotocols lists the subprotocols to offer, in order of preference.
	Subprotocols []string

	// Header holds extra header fields for the upgrade request, such as
	// Origin, Cookie or Authorization.
	Header http.Header

	// NetDialContext dials the TCP connection. Defaults to a net.Dialer's
	// DialContext.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// TLSConfig configures TLS for wss:// URLs. Defaults to a config with
	// the URL's host as ServerName.
	TLSConfig *tls.Config

	// HandshakeTimeout bounds the opening handshake when ctx has no earlier
	// deadline: the TCP connect, the TLS handshake for wss://, sending the
	// upgrade request and reading the response, so that a server that
	// accepts and never answers does not hold Dial for ever.
	// Defaults to DefaultDialTimeout.
	HandshakeTimeout time.Duration
}

// DefaultDialTimeout bounds the client's side of the opening handshake,
// as gorilla/websocket's DefaultDialer does (45 s there), with room for a
// slow network and TLS.
const DefaultDialTimeout = 30 * time.Second

// maxResponseHeader bounds the response to the upgrade request, status line
// and header together: a server sending header lines without end must not
// make Dial hold ever more memory. It is net/http's server default for a
// request header.
const maxResponseHeader = 1 << 20

// Dial opens a WebSocket connection to a ws:// or wss:// URL. The context,
// and HandshakeTimeout, bound the dial and the handshake, not the
// connection after it. The response is returned even when the handshake
// fails, if the server sent one; its body is closed.
//
// The handshake fails, with a *HandshakeError, unless the server answers
// 101 with the right Sec-WebSocket-Accept, a subprotocol that was offered
// (or none), and no extension but a valid answer to the permessage-deflate
// offer made when Options.Compression is set: "permessage-deflate;
// client_max_window_bits", with server_no_context_takeover and
// client_no_context_takeover in CompressionNoContextTakeover mode.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, *http.Response, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultDialTimeout
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	if u.Hostname() == "" {
		return nil, nil, errors.New("websocket: URL " + strqt(rawURL) + " has no host")
	}
	var secure bool
	switch u.Scheme {
	case "ws":
	case "wss":
		secure = true
	default:
		return nil, nil, errors.New("websocket: URL scheme must be ws or wss, not " + strqt(u.Scheme))
	}
	addr := u.Host
	if u.Port() == "" {
		if secure {
			addr = net.JoinHostPort(u.Hostname(), "443")
		} else {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	dial := o.NetDialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	hctx, cancel := context.WithTimeout(ctx, o.HandshakeTimeout)
	defer cancel()
	nc, err := dial(hctx, "tcp", addr)
	if err != nil {
		return nil, nil, dialError(ctx, hctx, &o, err)
	}
	// Bound the handshake by hctx: its end unblocks any read or write.
	stop := context.AfterFunc(hctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	c, resp, err := handshake(hctx, nc, u, secure, &o)
	if !stop() || err != nil {
		nc.Close()
		return nil, resp, dialError(ctx, hctx, &o, err)
	}
	nc.SetDeadline(time.Time{})
	return c, resp, nil
}

// dialError returns what ended the handshake: the caller's ctx
// (ctx.Err()), HandshakeTimeout, or else err. A context that ends as the
// handshake succeeds ends it too, as its deadline may have cut the
// connection.
func dialError(ctx, hctx context.Context, o *DialOptions, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case hctx.Err() != nil:
		return fmt.Errorf("websocket: no handshake within HandshakeTimeout (%v): %w", o.HandshakeTimeout, context.DeadlineExceeded)
	}
	return err
}

func handshake(ctx context.Context, nc net.Conn, u *url.URL, secure bool, o *DialOptions) (*Conn, *http.Response, error) {
	if secure {
		cfg := o.TLSConfig
		if cfg == nil {
			cfg = &tls.Config{}
		} else {
			cfg = cfg.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, err
		}
		nc = tc
	}
	var raw [16]byte
	rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])

	req := &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header),
		Host:       u.Host,
	}
	for k, v := range o.Header {
		req.Header[k] = v
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	if len(o.Subprotocols) > 0 {
		req.Header.Set("Sec-WebSocket-Protocol", strings.Join(o.Subprotocols, ", "))
	}
	if o.Compression != CompressionDisabled {
		req.Header.Set("Sec-WebSocket-Extensions", deflateOffer(o.Compression))
	}
	bw := bufio.NewWriterSize(nc, 1024)
	if err := req.Write(bw); err != nil {
		return nil, nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, nil, err
	}
	lr := &headerLimit{r: nc, n: maxResponseHeader}
	br := bufio.NewReaderSize(lr, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		msg := "server answered " + resp.Status
		if len(body) > 0 {
			msg += ": " + strings.TrimSpace(string(body))
		}
		return nil, resp, &HandshakeError{Status: resp.StatusCode, Msg: msg}
	}
	if msg := checkResponse(resp.Header, key, o.Subprotocols); msg != "" {
		return nil, resp, &HandshakeError{Status: resp.StatusCode, Msg: msg}
	}
	cp, msg := acceptDeflate(resp.Header, o.Compression)
	if msg != "" {
		return nil, resp, &HandshakeError{Status: resp.StatusCode, Msg: msg}
	}
	return newConn(nc, false, buffered(br), resp.Header.Get("Sec-WebSocket-Protocol"), cp, &o.Options), resp, nil
}

// checkResponse checks the header of a 101 response (RFC 6455 section
// 4.1) and says what is wrong with it, or returns "". Each field the
// handshake depends on must stand once: a second line could say something
// else than the one checked. Extensions are acceptDeflate's to check.
func checkResponse(h http.Header, key string, offered []string) string {
	var acc [28]byte
	accept := h.Values("Sec-WebSocket-Accept")
	subs := h.Values("Sec-WebSocket-Protocol")
	switch {
	case !headerHasToken(h, "Upgrade", "websocket"):
		return "response lacks Upgrade: websocket"
	case !headerHasToken(h, "Connection", "upgrade"):
		return "response lacks Connection: Upgrade"
	case len(accept) != 1 || accept[0] != string(AcceptKey(&acc, key)):
		return "wrong Sec-WebSocket-Accept"
	case len(subs) > 1:
		return "server chose more than one subprotocol"
	case len(subs) == 1 && subs[0] != "" && !slices.Contains(offered, subs[0]):
		return "server chose subprotocol " + strconv.Quote(subs[0]) + ", which was not offered"
	}
	return ""
}

// headerLimit reads from r until n bytes have come, then fails: it bounds
// what the response to the upgrade request may take.
type headerLimit struct {
	r io.Reader
	n int
}

var errResponseTooLong = errors.New("websocket: response header longer than 1 MiB")

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errResponseTooLong
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}
