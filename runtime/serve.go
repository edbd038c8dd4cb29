package runtime

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"

	"go.opentelemetry.io/otel/trace"

	"github.com/shockwave-go/shockwave/internal/engine"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// Serve accepts connections on ln and serves WebSocket upgrades on them,
// as ServeHTTP does behind an http.Server, but without net/http where it
// can: on Linux, on the event loop (see Transport), the connections of a
// TCP listener are accepted, and their handshakes read and answered, by
// the event loop. Nothing of a handshake is then left for the garbage
// collector (an upgrade through net/http leaves some 12 KB), so a server
// of many idle sessions needs less memory: see docs/benchmarks.md.
//
// Every request is this Runtime's, whatever its path: ServeHTTP behind a
// router is the way to serve pages or other paths on the same port. A
// request that is not a valid upgrade is answered with an HTTP error, and
// the connection closed. The Limits, the AdmitFunc, the trusted proxies
// and the handshake's options apply as they do to ServeHTTP. A request's
// head must come within the HandshakeTimeout and be at most 16 KiB (431
// past it); the connections whose head is still coming are bounded too
// (16,384 per listener, past which the listener waits), and their buffers
// count in the InboundMemory limit.
//
// Elsewhere (another kind of listener, such as a TLS one, another system,
// or TransportGoroutine), ln is served by an http.Server whose handler is
// this Runtime, with the HandshakeTimeout as its ReadHeaderTimeout.
//
// Serve returns when ln fails or is closed, and closes it. Shutdown
// closes it too, and waits for Serve to return, which then returns
// http.ErrServerClosed.
func (rt *Runtime) Serve(ln net.Listener) error {
	defer ln.Close() // as http.Server.Serve does
	if !rt.admitting() {
		return http.ErrServerClosed
	}
	defer rt.serving.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	me := &served{ln, cancel}
	rt.mu.Lock()
	rt.listeners = append(rt.listeners, me)
	rt.mu.Unlock()
	defer func() {
		rt.mu.Lock()
		rt.listeners = slices.DeleteFunc(rt.listeners, func(l *served) bool { return l == me })
		rt.mu.Unlock()
	}()
	// Only the user's code may block: the origin check and the AdmitFunc.
	blocking := rt.admit != nil || rt.accept.CheckOrigin != nil
	err := rt.eng.Listen(ctx, ln, rt.accept.HandshakeTimeout, blocking, rt.handshake)
	if errors.Is(err, engine.ErrNoEventLoop) {
		hs := &http.Server{Handler: rt, ReadHeaderTimeout: rt.accept.HandshakeTimeout, MaxHeaderBytes: maxHeaderBytes}
		err = hs.Serve(ln)
		hs.Close() // the connections it still reads requests on; upgraded ones are the Runtime's
	}
	rt.mu.Lock()
	closing := rt.closing
	rt.mu.Unlock()
	if closing {
		return http.ErrServerClosed
	}
	return err
}

// maxHeaderBytes bounds a request head on the net/http path of Serve, as
// the event loop's does.
const maxHeaderBytes = 16 << 10

// closeListeners closes the listeners being served (see Serve), for
// Shutdown.
func (rt *Runtime) closeListeners() {
	rt.mu.Lock()
	lns := rt.listeners
	rt.listeners = nil
	rt.mu.Unlock()
	for _, l := range lns {
		l.ln.Close()
		l.stop()
	}
}

// served is a listener being served, and what stops its Serve.
type served struct {
	ln   net.Listener
	stop context.CancelFunc
}

// handshake answers an opening handshake that the event loop read (see
// Serve) as ServeHTTP answers a request: the same limits, checks and
// AdmitFunc, in the same order. An *http.Request is made only for the
// user's code (CheckOrigin, the AdmitFunc) and for the upgrade's span; a
// handshake without them allocates no more than its session.
func (rt *Runtime) handshake(h engine.Handshake[*session.Session, session.Handler]) {
	req := h.Request()
	if !rt.admitting() {
		h.Refuse(refusal{status: http.StatusServiceUnavailable, msg: "shutting down", retry: retryLater}.append(h.Buffer()))
		return
	}
	client, forwarded := rt.client(h.Remote().Addr(), func() http.Header { return forwardingHeaders(req) })
	addr, refused := rt.adm.admit(client)
	var (
		admission Admission
		hr        *http.Request
	)
	if refused.status == 0 {
		refused = rt.checkHandshake(h, &admission, &hr)
		if refused.status != 0 {
			rt.adm.release(addr)
		}
	}
	if refused.status != 0 {
		h.Refuse(refused.append(h.Buffer()))
		rt.serving.Done()
		return
	}

	var span trace.Span
	if rt.tel.tracer != nil {
		_, span = rt.tel.startUpgrade(hr)
		defer span.End()
	}
	resp, sub, cp := req.AppendAccept(h.Buffer(), &rt.accept)
	u := wire.Upgraded{Subprotocol: sub, Compression: cp}
	if forwarded {
		u.Client = client
	}
	s, err := h.Accept(resp, u, hooks{rt})
	if err != nil {
		rt.upgradeFailed(span, addr, err)
		return
	}
	// The event loop's handshake goroutine is the session's to start
	// (see engine.Engine.Listen).
	rt.register(s, admission, addr, span, false)
}

// checkHandshake checks an upgrade that the limits let in, as wire.Upgrade
// and the AdmitFunc do on the net/http path. It makes the *http.Request
// the user's code and the span take, in *hr, when there is any.
func (rt *Runtime) checkHandshake(h engine.Handshake[*session.Session, session.Handler], admission *Admission, hr **http.Request) refusal {
	req := h.Request()
	if err := req.CheckUpgrade(&rt.accept); err != nil {
		var he *wire.HandshakeError
		errors.As(err, &he)
		return refusal{status: he.Status, msg: he.Msg, bare: true}
	}
	if rt.accept.CheckOrigin == nil && rt.admit == nil && rt.tel.tracer == nil {
		return refusal{}
	}
	r, err := req.HTTP(h.Remote().String())
	if err != nil {
		return refusal{status: http.StatusBadRequest, msg: "websocket: " + err.Error(), bare: true}
	}
	*hr = r
	if rt.accept.CheckOrigin != nil && !rt.accept.CheckOrigin(r) {
		// As wire.CheckUpgrade words it.
		return refusal{status: http.StatusForbidden, msg: `websocket: origin "` + r.Header.Get("Origin") + `" not allowed`, bare: true}
	}
	if rt.admit != nil {
		var err error
		if *admission, err = rt.callAdmit(r); err != nil {
			return refusalOf(err)
		}
	}
	return refusal{}
}

// forwardingHeaders are the headers of req that name the client, for a
// request from a trusted proxy.
func forwardingHeaders(req *wire.Request) http.Header {
	h := make(http.Header, 2)
	for _, name := range [...]string{"Forwarded", "X-Forwarded-For"} {
		req.Values(name, func(v []byte) bool {
			h.Add(name, string(v))
			return true
		})
	}
	return h
}
