package runtime

import (
	"cmp"
	"context"
	"iter"
	"math"
	"net/http"
	"net/netip"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/puzpuzpuz/xsync/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/shockwave-go/shockwave/internal/engine"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// Runtime serves WebSocket sessions. It is an http.Handler that upgrades
// requests, so it mounts on any router; it keeps the registry of live
// sessions and the rooms, and shuts everything down in order.
type Runtime struct {
	h      session.Handler
	eng    engine.Engine[*session.Session, session.Handler]
	accept wire.AcceptOptions
	inMem  *wire.Budget // nil: no bound
	outMem *wire.Budget // nil: no bound

	sessions *xsync.MapOf[uint64, *member]
	rooms    *xsync.MapOf[string, *Room]
	counters session.Counters
	tel      *telemetry
	adm      *admission
	admit    AdmitFunc                         // nil: everyone the Limits let in
	history  func(room string) History         // Options.RoomHistory; nil: no room keeps history
	presence func(room string) *Presence       // Options.RoomPresence; nil: no room tracks presence
	onJoin   func(r *Room, s *session.Session) // Options.OnJoin, or nil
	onLeave  func(r *Room, s *session.Session) // Options.OnLeave, or nil
	broker   Broker                            // Options.Broker, or nil
	log      Log                               // the Broker, when it keeps the log of rooms with history; else nil
	proxies  []netip.Prefix                    // trusted proxies, whose forwarding headers count

	mu        sync.Mutex // guards closing, listeners and the Add side of serving
	closing   bool
	listeners []*served // being served (Serve), for Shutdown to close
	serving   sync.WaitGroup
	shutOnce  sync.Once
}

// member is the registry's record of a session.
type member struct {
	s     *session.Session
	mu    sync.Mutex // guards rooms and gone; taken after Room.mu
	rooms []*Room
	gone  bool    // the session has ended: it joins nothing more
	addr  addrKey // what it counts in the admission table, for release
}

// New returns a Runtime serving sessions with handler h, with
// DefaultOptions changed by opts.
func New(h session.Handler, opts ...Option) (*Runtime, error) {
	o := DefaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	lim := o.Limits.withDefaults()
	rt := &Runtime{
		h:        h,
		adm:      newAdmission(lim),
		admit:    o.Admit,
		history:  o.RoomHistory,
		presence: o.RoomPresence,
		onJoin:   o.OnJoin,
		onLeave:  o.OnLeave,
		broker:   o.Broker,
		proxies:  o.TrustedProxies,
		inMem:    budget(lim.InboundMemory),
		outMem:   budget(lim.OutboundMemory),
		sessions: xsync.NewMapOf[uint64, *member](),
		rooms:    xsync.NewMapOf[string, *Room](),
		accept: wire.AcceptOptions{
			Subprotocols:     o.Subprotocols,
			OriginPatterns:   o.OriginPatterns,
			CheckOrigin:      o.CheckOrigin,
			HandshakeTimeout: o.HandshakeTimeout,
			Options:          wire.Options{Compression: o.Compression},
		},
	}
	if l, ok := o.Broker.(Log); ok && o.RoomHistory != nil {
		rt.log = l
	}
	tel, err := newTelemetry(rt, o.TracerProvider, o.MeterProvider)
	if err != nil {
		return nil, err
	}
	rt.tel = tel
	tel.roomPatterns, tel.roomCap = o.MeteredRooms, int32(min(o.MaxMeteredRooms, math.MaxInt32))
	rt.eng = engine.Start[*session.Session, session.Handler](rt.sessionConfig(&o))
	setLive(rt, true) // until Shutdown
	return rt, nil
}

// sessionConfig is what the session engine is told of o.
func (rt *Runtime) sessionConfig(o *Options) engine.Config[*session.Session, session.Policy, session.Counters] {
	c := engine.Config[*session.Session, session.Policy, session.Counters]{
		MaxMessageSize:       o.MaxMessageSize,
		ReadBufferSize:       o.ReadBufferSize,
		MailboxSize:          o.MailboxSize,
		MaxQueuedBytes:       o.MaxQueuedBytes,
		Policy:               o.Policy,
		SlowCode:             o.SlowCode,
		AbortSlow:            o.AbortSlow,
		PingInterval:         o.PingInterval,
		PongTimeout:          o.PongTimeout,
		IdleTimeout:          o.IdleTimeout,
		WriteTimeout:         o.WriteTimeout,
		CloseTimeout:         o.CloseTimeout,
		MessageTimeout:       o.MessageTimeout,
		MessageRate:          o.MessageRate,
		MessageBurst:         o.MessageBurst,
		Compression:          o.Compression,
		CompressionThreshold: o.CompressionThreshold,
		InboundBudget:        rt.inMem,
		OutboundBudget:       rt.outMem,
		Counters:             &rt.counters,
		OnError:              o.ErrorHandler,
		Sessions:             rt.Sessions(),
		Workers:              cmp.Or(o.Workers, goruntime.GOMAXPROCS(0)),
		Tick:                 cmp.Or(o.Tick, defaultTick(o)),
	}
	if c.MessageRate > 0 && c.MessageBurst == 0 {
		c.MessageBurst = max(1, int(c.MessageRate))
	}
	if o.Transport != TransportGoroutine {
		c.Pollers = cmp.Or(o.Pollers, goruntime.GOMAXPROCS(0))
	}
	if rt.tel.metrics() {
		c.Observer = rt.tel
	}
	if rt.tel.tracer != nil {
		c.Tracer = rt.tel
		rt.tel.deliveries = int32(min(o.TraceDeliveries, math.MaxInt32))
	}
	return c
}

// defaultTick is a quarter of the shortest timeout, within [10 ms, 1 s].
func defaultTick(o *Options) time.Duration {
	d := min(o.PongTimeout, o.WriteTimeout, o.CloseTimeout)
	for _, t := range []time.Duration{o.PingInterval, o.IdleTimeout, o.MessageTimeout} {
		if t > 0 {
			d = min(d, t)
		}
	}
	return min(max(d/4, 10*time.Millisecond), time.Second)
}

// ServeHTTP upgrades the request and returns; the session runs on its
// transport (see Transport) until it ends, which Shutdown waits for. A
// request over a limit is refused before the upgrade, with 503 or 429
// (see Limits); then the AdmitFunc, if any, admits it or refuses it (see
// WithAdmit); one that is not a valid upgrade is answered with an HTTP
// error (see wire.Accept); during Shutdown, with 503.
func (rt *Runtime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var admission Admission
	if !rt.admitting() {
		http.Error(w, "shockwave: shutting down", http.StatusServiceUnavailable)
		return
	}
	// Before the span and the hijack: a flood of refusals costs little.
	client, forwarded := rt.clientAddr(r)
	addr, refused := rt.adm.admit(client)
	if refused.status == 0 && rt.admit != nil {
		// The AdmitFunc (a token lookup, say) only for a request that
		// can be upgraded: another is answered as wire.Upgrade would.
		if wire.CheckUpgrade(w, r, &rt.accept) != nil {
			rt.adm.release(addr)
			rt.serving.Done()
			return
		}
		var err error
		if admission, err = rt.callAdmit(r); err != nil {
			refused = refusalOf(err)
			rt.adm.release(addr)
		}
	}
	if refused.status != 0 {
		refused.write(w)
		rt.serving.Done()
		return
	}

	var span trace.Span
	if rt.tel.tracer != nil {
		_, span = rt.tel.startUpgrade(r)
		defer span.End()
	}
	u, err := wire.Upgrade(w, r, &rt.accept)
	if err != nil {
		rt.upgradeFailed(span, addr, err)
		return
	}
	if forwarded {
		u.Client = client
	}
	// Serve on a fresh goroutine and let the HTTP server's end: it holds
	// the request, its buffers and a grown stack, which an idle session
	// has no use for.
	rt.register(rt.eng.New(u, hooks{rt}), admission, addr, span, true)
}

// admitting counts an upgrade in serving, unless Shutdown has begun.
func (rt *Runtime) admitting() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closing {
		return false
	}
	rt.serving.Add(1)
	return true
}

// upgradeFailed undoes admitting and the admission of an upgrade that failed.
func (rt *Runtime) upgradeFailed(span trace.Span, addr addrKey, err error) {
	if span != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	rt.adm.release(addr)
	rt.serving.Done()
}

// register puts a new session in the registry and serves it, on a
// goroutine of its own if fresh is set.
func (rt *Runtime) register(s *session.Session, admission Admission, addr addrKey, span trace.Span, fresh bool) {
	if admission.Identity != nil || !admission.Expires.IsZero() {
		s.Authorize(admission.Identity, admission.Expires)
	}
	m := &member{s: s, addr: addr}
	if span != nil {
		span.SetAttributes(attribute.Int64("shockwave.session.id", int64(s.ID())))
		rt.tel.upgrades.Store(s.ID(), span.SpanContext())
	}
	rt.sessions.Store(s.ID(), m)
	// Shutdown sets closing before it closes the registered sessions: a
	// session stored after that pass sees closing here.
	rt.mu.Lock()
	late := rt.closing
	rt.mu.Unlock()
	if late {
		s.Close(wire.StatusGoingAway, "server shutting down")
	}
	// rt.serving.Done when it ends: see hooks.OnClose.
	if fresh {
		go rt.eng.Serve(s)
	} else {
		rt.eng.Serve(s)
	}
}

// hooks wraps the user's handler with the registry's bookkeeping.
type hooks struct{ rt *Runtime }

func (k hooks) OnOpen(s *session.Session) error { return k.rt.h.OnOpen(s) }

func (k hooks) OnMessage(s *session.Session, m session.Message) error {
	if t := k.rt.tel; t.tracer != nil || t.metrics() {
		var upgrade trace.SpanContext
		if t.tracer != nil {
			upgrade, _ = t.upgrades.Load(s.ID())
		}
		return t.onMessage(k.rt.h, s, m, upgrade)
	}
	return k.rt.h.OnMessage(s, m)
}

func (k hooks) OnClose(s *session.Session, err error) {
	defer k.rt.serving.Done() // the session has ended; Shutdown waits for this
	if k.rt.tel.tracer != nil {
		defer trace.SpanFromContext(s.Context()).End() // the "session close" span (see telemetry.Closing)
	}
	if k.rt.tel.metrics() {
		k.rt.tel.onClose(s, err) // counted before the session leaves the registry
	}
	if k.rt.tel.tracer != nil {
		k.rt.tel.upgrades.Delete(s.ID())
	}
	m, ok := k.rt.sessions.Load(s.ID())
	if ok {
		m.mu.Lock()
		rooms := m.rooms
		m.rooms, m.gone = nil, true
		m.mu.Unlock()
		for _, r := range rooms {
			if r.remove(s) {
				k.rt.left(r, s, true)
			}
		}
		k.rt.adm.release(m.addr)
		// Out of the registry last, after the handler's OnClose (which
		// may want its Runtime, see Of), even if it panics: a session
		// that Len no longer counts is in no room and no longer counts
		// against the limits.
		defer k.rt.sessions.Delete(s.ID())
	}
	k.rt.h.OnClose(s, err)
}

// Of returns the Runtime that serves s, for a handler to reach its rooms
// and registry without keeping a pointer it could only get after New: in
// every callback of s, OnClose included. It returns nil for a session no
// Runtime serves any more.
func Of(s *session.Session) *Runtime {
	for _, rt := range *live.Load() {
		if _, ok := rt.sessions.Load(s.ID()); ok {
			return rt
		}
	}
	return nil
}

// live lists the Runtimes not shut down, for Of: copied on write, as they
// come and go rarely and Of reads it on message paths.
var (
	live   atomic.Pointer[[]*Runtime]
	liveMu sync.Mutex // serializes the writers of live
)

func init() { live.Store(&[]*Runtime{}) }

// setLive adds rt to live, or removes it.
func setLive(rt *Runtime, on bool) {
	liveMu.Lock()
	defer liveMu.Unlock()
	list := slices.DeleteFunc(slices.Clone(*live.Load()), func(x *Runtime) bool { return x == rt })
	if on {
		list = append(list, rt)
	}
	live.Store(&list)
}

// Session returns the live session with the given id.
func (rt *Runtime) Session(id uint64) (*session.Session, bool) {
	m, ok := rt.sessions.Load(id)
	if !ok {
		return nil, false
	}
	return m.s, true
}

// Sessions yields every live session, in no particular order.
func (rt *Runtime) Sessions() iter.Seq[*session.Session] {
	return func(yield func(*session.Session) bool) {
		rt.sessions.Range(func(_ uint64, m *member) bool { return yield(m.s) })
	}
}

// Len returns the number of live sessions.
func (rt *Runtime) Len() int { return rt.sessions.Size() }

// MemoryInUse returns the bytes the Runtime's sessions hold now against
// their memory budgets: inbound, in messages being assembled; outbound,
// in frames queued to be written (see Limits). A budget that is off
// reports 0.
func (rt *Runtime) MemoryInUse() (inbound, outbound int64) {
	if b := rt.inMem; b != nil {
		inbound = b.InUse()
	}
	if b := rt.outMem; b != nil {
		outbound = b.InUse()
	}
	return inbound, outbound
}

// Counters returns the counters of all sessions: what the backpressure
// policies dropped, and what the sessions' limits did (see session.Counters).
func (rt *Runtime) Counters() *session.Counters { return &rt.counters }

// Refused returns the counts of what the limits refused (see Limits).
func (rt *Runtime) Refused() *Refused { return &rt.adm.refused }

// Shutdown stops accepting upgrades (they get 503), closes every session
// with 1001 (going away) after the frames already in its mailbox, and waits
// for the sessions to end and the runtime's goroutines to stop. If ctx ends
// first, the remaining connections are closed at once and Shutdown returns
// ctx.Err() once they are gone. It is safe to call more than once.
func (rt *Runtime) Shutdown(ctx context.Context) error {
	rt.mu.Lock()
	rt.closing = true
	rt.mu.Unlock()
	rt.closeListeners()
	for s := range rt.Sessions() {
		s.Close(wire.StatusGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() {
		rt.serving.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		for s := range rt.Sessions() {
			s.CloseNow()
		}
		<-done
	}
	rt.shutOnce.Do(func() {
		setLive(rt, false)
		for r := range rt.Rooms() { // the sessions have left: only lingering rooms are left
			r.close()
		}
		rt.eng.Close()
		if rt.tel.reg != nil {
			rt.tel.reg.Unregister()
		}
	})
	return err
}
