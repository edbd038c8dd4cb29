package runtime

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// AdmitFunc decides, before the upgrade, whether a request may become a
// session, and who its client is. It runs on the request's goroutine,
// after the Limits and the request's own checks (a valid upgrade from an
// allowed origin, see wire.CheckUpgrade: it is never asked about another)
// and before the hijack, so it sees the whole request: URL, headers,
// cookies, context. It may block (a lookup of a session
// token, say); the client waits, and Shutdown waits for it.
//
// To admit, return an Admission, nil. To refuse, return a *Refusal: its
// status and message are the response, never a 101. Any other error is
// answered with 503 Service Unavailable (the server could not decide: the
// client may try again), as is a panic.
type AdmitFunc func(r *http.Request) (Admission, error)

// Admission is what an AdmitFunc grants.
type Admission struct {
	// Identity is the application's record of who the client is, with
	// what its handlers need of the request (the user, the URL's query,
	// chosen headers or cookies, values of the request's context), copied
	// out of it: the request is not kept, so an idle session does not hold
	// it. Every callback of the session reads it, without a lock, with
	// session.Identity.
	Identity any
	// Expires, if not zero, is when the client's credentials expire: the
	// session is closed then with wire.StatusUnauthorized (3000), unless
	// the application authorized it again in the meantime (for a client
	// that sends a fresh token in-band, see session.Session.Authorize).
	Expires time.Time
}

// Refusal is the error an AdmitFunc returns to refuse a request, with the
// HTTP response to send.
type Refusal struct {
	// Status is the response's status: 401, 403 or 429, say. A status
	// outside 400-599 is sent as 403.
	Status int
	// Message is the response's body, as plain text: short, and safe to
	// show the client.
	Message string
	// RetryAfter, if positive, is sent as a Retry-After header (whole
	// seconds, rounded up).
	RetryAfter time.Duration
}

func (f *Refusal) Error() string {
	return fmt.Sprintf("runtime: upgrade refused (HTTP %d): %s", f.status(), f.Message)
}

func (f *Refusal) status() int {
	if f.Status < 400 || f.Status > 599 {
		return http.StatusForbidden
	}
	return f.Status
}

// refusalOf turns what an AdmitFunc returned into the response to send.
func refusalOf(err error) refusal {
	var f *Refusal
	if errors.As(err, &f) {
		return refusal{status: f.status(), retry: f.RetryAfter, msg: f.Message, bare: true}
	}
	return refusal{status: http.StatusServiceUnavailable, retry: retryLater, msg: "could not admit the connection"}
}

// callAdmit runs the AdmitFunc, a panic included.
func (rt *Runtime) callAdmit(r *http.Request) (a Admission, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("runtime: AdmitFunc panicked: %v", v)
		}
	}()
	return rt.admit(r)
}

// ClientAddr returns the IP address of the client of r: RemoteAddr's, or,
// when RemoteAddr is a trusted proxy (see WithTrustedProxies), the one
// the proxies reported in the Forwarded or X-Forwarded-For header: the
// last address in it that is not itself a trusted proxy. The per-address
// Limits count this address, and a session's ClientAddr returns it. It is
// the zero Addr when RemoteAddr is not an IP address.
func (rt *Runtime) ClientAddr(r *http.Request) netip.Addr {
	ip, _ := rt.clientAddr(r)
	return ip
}

// FromTrustedProxy reports whether r came from one of the trusted proxies
// (see WithTrustedProxies): whether what its forwarding headers say of the
// client may be believed, its scheme (X-Forwarded-Proto, Forwarded's
// proto) as well as its address.
func (rt *Runtime) FromTrustedProxy(r *http.Request) bool {
	peer, ok := clientIP(r.RemoteAddr)
	return ok && inPrefixes(rt.proxies, peer)
}

// clientAddr is ClientAddr, and whether a proxy reported the address.
func (rt *Runtime) clientAddr(r *http.Request) (netip.Addr, bool) {
	peer, _ := clientIP(r.RemoteAddr)
	return rt.client(peer, func() http.Header { return r.Header })
}

// client is clientAddr for a connection from peer whose request's headers
// header returns: it is called only when peer is a trusted proxy.
func (rt *Runtime) client(peer netip.Addr, header func() http.Header) (netip.Addr, bool) {
	if !peer.IsValid() || !inPrefixes(rt.proxies, peer) {
		return peer, false
	}
	hops := forwardedFor(header())
	for i := len(hops) - 1; i >= 0; i-- {
		ip, ok := hopIP(hops[i])
		if !ok {
			break // a hop we cannot read: trust nothing before it
		}
		if peer = ip; !inPrefixes(rt.proxies, ip) {
			break
		}
	}
	return peer, true
}

// maxHops bounds the addresses read from the forwarding headers: a client
// may send any number of them, and only the last few, the proxies', count.
const maxHops = 16

// forwardedFor returns the addresses of the Forwarded header's "for"
// parameters (RFC 7239), or, when there is none, of X-Forwarded-For, in
// order, at most the last maxHops, each as "ip" or "ip:port" ("[ipv6]:port"
// unwrapped to a form clientIP reads); unreadable ones are kept as they
// are, so that the walk stops there.
func forwardedFor(h http.Header) []string {
	var hops []string
	if fw := h.Values("Forwarded"); len(fw) > 0 {
		for _, line := range fw {
			for _, elem := range strings.Split(line, ",") {
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if ok && strings.EqualFold(k, "for") {
						hops = append(hops, unquoteNode(v))
					}
				}
			}
		}
	} else {
		for _, line := range h.Values("X-Forwarded-For") {
			for _, hop := range strings.Split(line, ",") {
				hops = append(hops, strings.TrimSpace(hop))
			}
		}
	}
	return hops[max(0, len(hops)-maxHops):]
}

// hopIP is clientIP for an address a proxy wrote. A zone names one of the
// proxy's interfaces, meaningless here, and makes the hop unreadable.
func hopIP(hop string) (netip.Addr, bool) {
	if strings.Contains(hop, "%") {
		return netip.Addr{}, false
	}
	return clientIP(hop)
}

// unquoteNode turns a Forwarded node (192.0.2.60, "[2001:db8::1]:4711",
// "unknown", _hidden) into what clientIP reads.
func unquoteNode(v string) string {
	v = strings.Trim(strings.TrimSpace(v), `"`)
	if strings.HasPrefix(v, "[") && !strings.Contains(v, "]:") {
		v = strings.Trim(v, "[]") // an IPv6 address without a port
	}
	return v
}
