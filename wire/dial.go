package wire

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
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
}

// Dial opens a WebSocket connection to a ws:// or wss:// URL. The context
// bounds the dial and the handshake, not the connection after it. The
// response is returned even when the handshake fails, if the server sent
// one; its body is closed.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, *http.Response, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, err
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
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	// Bound the handshake by ctx: a cancel unblocks any read or write.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	c, resp, err := handshake(ctx, nc, u, secure, &o)
	if !stop() || err != nil {
		nc.Close()
		if err == nil || ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, resp, err
	}
	nc.SetDeadline(time.Time{})
	return c, resp, nil
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
	bw := bufio.NewWriterSize(nc, 1024)
	if err := req.Write(bw); err != nil {
		return nil, nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
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
	var acc [28]byte
	switch {
	case !headerHasToken(resp.Header, "Upgrade", "websocket"):
		return nil, resp, &HandshakeError{Status: resp.StatusCode, Msg: "response lacks Upgrade: websocket"}
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		return nil, resp, &HandshakeError{Status: resp.StatusCode, Msg: "response lacks Connection: Upgrade"}
	case resp.Header.Get("Sec-WebSocket-Accept") != string(AcceptKey(&acc, key)):
		return nil, resp, &HandshakeError{Status: resp.StatusCode, Msg: "wrong Sec-WebSocket-Accept"}
	}
	sub := resp.Header.Get("Sec-WebSocket-Protocol")
	if sub != "" && !slices.Contains(o.Subprotocols, sub) {
		return nil, resp, &HandshakeError{Status: resp.StatusCode, Msg: "server chose subprotocol " + strqt(sub) + ", which was not offered"}
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		return nil, resp, &HandshakeError{Status: resp.StatusCode, Msg: "server chose extensions " + strqt(ext) + ", which were not offered"}
	}
	return newConn(nc, false, buffered(br), sub, &o.Options), resp, nil
}
