package session

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// ErrExpired is the cause of a session closed because its credentials
// expired (see Authorize): it was closed with wire.StatusUnauthorized
// (3000).
var ErrExpired = errors.New("session: credentials expired")

// admitted is who a session's client is, as its admission said: kept
// apart, since many sessions have none, and replaced whole, so that the
// timer reads a consistent one.
type admitted struct {
	identity any
	expires  int64      // Unix nanoseconds, or 0 for never
	client   netip.Addr // as a trusted proxy reported it; zero for RemoteAddr's
}

// Authorize sets who the session's client is, and until when: identity is
// the application's record of it (read it with Identity), and when expires
// passes (if it is not zero), the session is closed with
// wire.StatusUnauthorized (3000) and ErrExpired, unless Authorize was
// called again with a later time: a client that refreshes its credentials
// in-band keeps its session. The runtime calls it with what its admission
// hook returned, before OnOpen.
//
// It is safe to call from any goroutine; Identity sees the new value at
// once on the session's callbacks when called from them.
func (s *Session) Authorize(identity any, expires time.Time) {
	a := &admitted{identity: identity}
	if old := s.who.Load(); old != nil {
		a.client = old.client
	}
	if !expires.IsZero() {
		a.expires = expires.UnixNano()
	}
	s.who.Store(a)
}

// Identity returns the identity the session was authorized with (see
// Authorize), if it is a T.
func Identity[T any](s *Session) (T, bool) {
	if a := s.who.Load(); a != nil {
		v, ok := a.identity.(T)
		return v, ok
	}
	var zero T
	return zero, false
}

// ClientAddr returns the client's IP address: the one a trusted proxy
// reported (see wire.Upgraded.Client), or else RemoteAddr's.
func (s *Session) ClientAddr() netip.Addr {
	if a := s.who.Load(); a != nil && a.client.IsValid() {
		return a.client
	}
	if ta, ok := s.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{} // not an IP connection
}

// setClient records the client's address a trusted proxy reported.
func (s *Session) setClient(ip netip.Addr) {
	if ip.IsValid() {
		s.who.Store(&admitted{client: ip})
	}
}

// expired closes the session if its credentials have expired by now (the
// scheduler's clock), and reports whether they have.
func (s *Session) expired(now int64) bool {
	a := s.who.Load()
	if a == nil || a.expires == 0 || now < a.expires {
		return false
	}
	if s.claimClose() {
		s.cfg.Counters.Expired.Add(1)
		s.queueClose(ErrExpired)
	}
	return true
}
