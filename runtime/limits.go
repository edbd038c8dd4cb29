package runtime

import (
	"errors"
	"hash/maphash"
	"math"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/puzpuzpuz/xsync/v3"

	"github.com/shockwave-go/shockwave/wire"
)

// Limits bound what clients may take of a Runtime before its handler has
// seen them. A Runtime faces the open internet, so every limit is on by
// default. A zero field means its default; a negative one means no limit.
//
// Upgrades over a limit are refused before the connection is hijacked,
// with an HTTP status and a Retry-After header (browsers do not show
// either to the page; other clients can back off by them), and the
// connection is closed after the response. Every refusal is counted in
// Runtime.Refused and in the metric shockwave.limits.refused.
//
// The client's address is the IP of http.Request.RemoteAddr ("ip:port",
// or a bare IP as some proxy middleware sets it). Behind a reverse proxy,
// RemoteAddr is the proxy's: run a middleware that sets it from the
// proxy's header (X-Forwarded-For, Forwarded), trusting that header only
// from the proxy, before the Runtime. An IPv4 address is one client; an
// IPv6 address counts as its /64 prefix, the unit a provider hands a
// customer, since whoever has one address of a /64 has 2^64 of them. A
// RemoteAddr that does not parse (a Unix socket's) counts as one address
// shared by all such clients.
type Limits struct {
	// MaxConnections bounds the Runtime's sessions, counted from the
	// upgrade request until the session ends. Past it, an upgrade is
	// refused with 503 Service Unavailable. Defaults to 50,000: an idle
	// session costs a few KiB with its socket's kernel memory, a busy one
	// up to its message and mailbox bounds (5 MiB by default), so a crowd
	// without a bound ends in an out-of-memory kill or in "too many open
	// files", which stalls the listener for every client; 503 fails
	// politely first. Raise it, and MaxAddresses with it, once you have
	// measured your machine.
	MaxConnections int

	// MaxConnectionsPerAddress bounds the live sessions of one client
	// address. Past it, an upgrade is refused with 429 Too Many Requests.
	// Defaults to 1,024: a carrier-grade NAT puts tens to a few hundred
	// subscribers behind one IPv4 address, as do offices and campuses,
	// each with a tab or two open, while one address can then hold only
	// about 2 % of MaxConnections.
	MaxConnectionsPerAddress int

	// UpgradeRate and UpgradeBurst are a token bucket per client address:
	// it holds UpgradeBurst upgrade requests and refills at UpgradeRate a
	// second. A request that finds it empty is refused with 429 Too Many
	// Requests and a Retry-After of when the next token comes. The bucket
	// is off if either is negative. Default to 20 a second and 100: after
	// a server restart, a hundred clients behind one NAT get back in at
	// once and a thousand within a minute if they back off, while one
	// address cannot make OnOpen (often an authentication lookup) run more
	// than 20 times a second.
	UpgradeRate  float64
	UpgradeBurst int

	// MaxRoomsPerSession bounds the rooms one session is in: past it,
	// JoinRoom fails with ErrTooManyRooms. Defaults to 64, more than a chat
	// client or a game shows at once; every membership costs memory in the
	// room and the session, and rooms named by clients are created on
	// demand, so without a bound one session could make any number.
	MaxRoomsPerSession int

	// MaxRoomName bounds the length of a room's name, in bytes: past it,
	// JoinRoom fails with ErrRoomName. Names often come from clients
	// (codec's room.join), and a room keeps its name while it has
	// members: without a bound, one session's 64 rooms named with
	// messages of 1 MiB would hold 64 MiB. Defaults to 256.
	MaxRoomName int

	// MaxAddresses bounds the table behind the per-address limits: an
	// address has an entry while it has a session or its bucket is
	// refilling (UpgradeBurst/UpgradeRate seconds at most, 5 s by
	// default). When the table is full, the entries of idle addresses
	// whose buckets have refilled are dropped; if there are none, an
	// upgrade from a new address is refused with 503 Service Unavailable,
	// as when MaxConnections is reached: the table never grows past its
	// bound, whatever number of addresses an attacker has. Defaults to
	// 65,536 (a few MiB), more than MaxConnections, so that the addresses
	// of a full Runtime fit with room for refilling buckets.
	MaxAddresses int

	// InboundMemory bounds the bytes that the Runtime's sessions hold at
	// once in messages being assembled (longer than the read buffer, or
	// fragmented). A message that would take more closes its session with
	// 1013 (try again later): 1,000 clients each sending a message of
	// MaxMessageSize cannot take 1,000 times that. Read buffers are not
	// counted (each is ReadBufferSize at most, and only while bytes come).
	// Defaults to 256 MiB, or a quarter of the Go memory limit
	// (GOMEMLIMIT, debug.SetMemoryLimit) when that is lower.
	InboundMemory int64

	// OutboundMemory bounds the bytes of frames queued to be written, a
	// frame that a room shares counted once. While it is exceeded, a frame
	// to a session whose own backlog is over 64 KiB is refused under the
	// session's Policy (PolicyClose closes it as a slow consumer): 10,000
	// slow consumers cannot hold MaxQueuedBytes each, and the sessions
	// that keep up are still served. Defaults as InboundMemory.
	OutboundMemory int64

	// Exempt lists the client addresses that the per-address limits do
	// not apply to; their sessions still count in MaxConnections. Defaults
	// to loopback (127.0.0.0/8 and ::1): the machine itself, or a proxy on
	// it that did not pass the client's address on, where limiting the one
	// address would limit every client together; load tests on one
	// machine stay out of them too. A non-nil empty slice exempts nothing.
	Exempt []netip.Prefix
}

// The defaults of Limits; see its fields for why.
const (
	DefaultMaxConnections           = 50_000
	DefaultMaxConnectionsPerAddress = 1_024
	DefaultUpgradeRate              = 20.0
	DefaultUpgradeBurst             = 100
	DefaultMaxRoomsPerSession       = 64
	DefaultMaxRoomName              = 256
	DefaultMaxAddresses             = 65_536
)

// DefaultMemory is the default of Limits.InboundMemory and OutboundMemory,
// unless the Go memory limit is lower than four times it.
const DefaultMemory = 256 << 20

// defaultMemory is DefaultMemory, or a quarter of the Go memory limit when
// that is lower.
func defaultMemory() int64 {
	return min(DefaultMemory, debug.SetMemoryLimit(-1)/4)
}

// budget returns a budget of n bytes, or nil (no limit) for n < 0.
func budget(n int64) *wire.Budget {
	if n < 0 {
		return nil
	}
	return wire.NewBudget(n)
}

// loopback is the default of Limits.Exempt; a fresh slice each time, so
// that no caller can change another's.
func loopback() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

// ErrTooManyRooms is returned by JoinRoom for a session that is already in
// Limits.MaxRoomsPerSession rooms.
var ErrTooManyRooms = errors.New("runtime: session is in too many rooms")

// ErrRoomName is returned by JoinRoom for a room name longer than
// Limits.MaxRoomName.
var ErrRoomName = errors.New("runtime: room name too long")

// Refused counts what the limits refused, for callers without
// OpenTelemetry (the metric shockwave.limits.refused has the same counts).
// Safe for concurrent use.
type Refused struct {
	Connections           atomic.Uint64 // upgrades over MaxConnections
	ConnectionsPerAddress atomic.Uint64 // upgrades over MaxConnectionsPerAddress
	UpgradeRate           atomic.Uint64 // upgrades that found their address's bucket empty
	Addresses             atomic.Uint64 // upgrades from a new address when the table was full
	RoomsPerSession       atomic.Uint64 // joins over MaxRoomsPerSession
	RoomName              atomic.Uint64 // joins with a name over MaxRoomName
}

// limitCounters names the counters of the limits, the Runtime's (Refused)
// and the sessions' (session.Counters), by the value of the metric's
// shockwave.limit attribute. A new limit is a counter and a line here.
var limitCounters = []struct {
	limit string
	count func(*Runtime) *atomic.Uint64
}{
	{"connections", func(rt *Runtime) *atomic.Uint64 { return &rt.adm.refused.Connections }},
	{"connections_per_address", func(rt *Runtime) *atomic.Uint64 { return &rt.adm.refused.ConnectionsPerAddress }},
	{"upgrade_rate", func(rt *Runtime) *atomic.Uint64 { return &rt.adm.refused.UpgradeRate }},
	{"addresses", func(rt *Runtime) *atomic.Uint64 { return &rt.adm.refused.Addresses }},
	{"rooms_per_session", func(rt *Runtime) *atomic.Uint64 { return &rt.adm.refused.RoomsPerSession }},
	{"room_name", func(rt *Runtime) *atomic.Uint64 { return &rt.adm.refused.RoomName }},
	// The sessions': reading paused, sessions closed, frames refused.
	{"message_rate", func(rt *Runtime) *atomic.Uint64 { return &rt.counters.Throttled }},
	{"backpressure", func(rt *Runtime) *atomic.Uint64 { return &rt.counters.Paused }},
	{"message_size", func(rt *Runtime) *atomic.Uint64 { return &rt.counters.TooBig }},
	{"message_timeout", func(rt *Runtime) *atomic.Uint64 { return &rt.counters.MessageTimeouts }},
	{"inbound_memory", func(rt *Runtime) *atomic.Uint64 { return &rt.counters.InboundBudget }},
	{"outbound_memory", func(rt *Runtime) *atomic.Uint64 { return &rt.counters.OutboundBudget }},
	{"pong_timeout", func(rt *Runtime) *atomic.Uint64 { return &rt.counters.PongTimeouts }},
	{"idle_timeout", func(rt *Runtime) *atomic.Uint64 { return &rt.counters.IdleTimeouts }},
	{"write_timeout", func(rt *Runtime) *atomic.Uint64 { return &rt.counters.WriteTimeouts }},
	{"close_timeout", func(rt *Runtime) *atomic.Uint64 { return &rt.counters.CloseTimeouts }},
	{"expired", func(rt *Runtime) *atomic.Uint64 { return &rt.counters.Expired }},
}

// check reports values no default can make sense of.
func (l *Limits) check() error {
	if math.IsNaN(l.UpgradeRate) || math.IsInf(l.UpgradeRate, 0) {
		return errors.New("runtime: upgrade rate must be a finite number")
	}
	for _, p := range l.Exempt {
		if !p.IsValid() {
			return errors.New("runtime: invalid exempt prefix")
		}
	}
	return nil
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxConnections, DefaultMaxConnections)
	def(&l.MaxConnectionsPerAddress, DefaultMaxConnectionsPerAddress)
	def(&l.UpgradeBurst, DefaultUpgradeBurst)
	def(&l.MaxRoomsPerSession, DefaultMaxRoomsPerSession)
	def(&l.MaxRoomName, DefaultMaxRoomName)
	def(&l.MaxAddresses, DefaultMaxAddresses)
	if l.InboundMemory == 0 {
		l.InboundMemory = defaultMemory()
	}
	if l.OutboundMemory == 0 {
		l.OutboundMemory = defaultMemory()
	}
	if l.UpgradeRate == 0 {
		l.UpgradeRate = DefaultUpgradeRate
	}
	if l.Exempt == nil {
		l.Exempt = loopback()
	}
	return l
}

// retryLater is the Retry-After of the refusals that wait for sessions to
// end: there is no telling when one will, and clients should add jitter.
const retryLater = 5 * time.Second

// admission applies the Limits. The per-address table is an xsync map of
// values changed in Compute, under the lock of their bucket of the map
// only; nothing is taken on message paths: an upgrade and a session's end
// are the only callers besides JoinRoom's room count.
type admission struct {
	lim      Limits // with defaults
	bucket   bool   // the upgrade bucket is on
	perAddr  bool   // a per-address limit is on
	seed     maphash.Seed
	base     time.Time // entry times are nanoseconds since base
	live     atomic.Int64
	addrs    *xsync.MapOf[addrKey, addrEntry]
	entries  atomic.Int64 // in addrs, kept by the Compute functions
	sweepAt  atomic.Int64 // before this time, no idle entry has refilled
	sweeping atomic.Bool
	refused  Refused
}

// addrKey is a client address's key in the table: 56 bits of a keyed hash
// of its IPv4 address or IPv6 /64 prefix, small enough to live in the
// padding of the registry's member. An attacker cannot aim collisions
// without the seed, and a chance one only makes two addresses share their
// limits. The zero key means "not counted".
type addrKey [7]byte

// addrEntry is an address's live sessions and upgrade bucket.
type addrEntry struct {
	tokens float64 // as of at
	at     int64
	conns  int32
}

func newAdmission(l Limits) *admission {
	a := &admission{
		lim:  l,
		seed: maphash.MakeSeed(),
		base: time.Now(),
	}
	a.bucket = l.UpgradeRate > 0 && l.UpgradeBurst > 0
	a.perAddr = a.bucket || l.MaxConnectionsPerAddress >= 0
	if a.perAddr {
		a.addrs = xsync.NewMapOf[addrKey, addrEntry]()
	}
	return a
}

// refusal is an upgrade's refusal: the response to send, or a zero status
// for none.
type refusal struct {
	status int
	retry  time.Duration
	msg    string
	bare   bool // an AdmitFunc's: its message as it is, Retry-After only if it set one
}

// write answers the refused request. The connection closes after it: a
// refused client should not keep a descriptor on a keep-alive.
func (f refusal) write(w http.ResponseWriter) {
	h := w.Header()
	msg, retry := f.text()
	if retry > 0 {
		h.Set("Retry-After", strconv.Itoa(retry))
	}
	h.Set("Connection", "close")
	http.Error(w, msg, f.status)
}

// append appends the response of the refusal to dst (see Runtime.Serve).
func (f refusal) append(dst []byte) []byte {
	msg, retry := f.text()
	return wire.AppendRefusal(dst, f.status, msg, retry)
}

// text returns the refusal's message and its Retry-After in seconds, or 0
// for none.
func (f refusal) text() (msg string, retry int) {
	if !f.bare || f.retry > 0 {
		retry = int(max(1, int64(math.Ceil(f.retry.Seconds()))))
	}
	if !f.bare {
		return "shockwave: " + f.msg, retry
	}
	return f.msg, retry
}

// admit counts an upgrade request from the client at ip (the zero Addr
// when its address is not an IP's) against the limits. Once it accepts,
// release(key) must follow exactly once: when the session ends, or at
// once if the upgrade fails.
func (a *admission) admit(ip netip.Addr) (addrKey, refusal) {
	if n := a.live.Add(1); a.lim.MaxConnections >= 0 && n > int64(a.lim.MaxConnections) {
		a.live.Add(-1)
		a.refused.Connections.Add(1)
		return addrKey{}, refusal{status: http.StatusServiceUnavailable, retry: retryLater, msg: "too many connections"}
	}
	if !a.perAddr {
		return addrKey{}, refusal{}
	}
	if inPrefixes(a.lim.Exempt, ip) {
		return addrKey{}, refusal{}
	}
	key := a.key(ip)
	if f := a.take(key); f.status != 0 {
		a.live.Add(-1)
		return addrKey{}, f
	}
	if a.lim.MaxConnectionsPerAddress < 0 {
		return addrKey{}, refusal{} // the session holds no count of its address
	}
	return key, refusal{}
}

// release gives back what admit took.
func (a *admission) release(key addrKey) {
	a.live.Add(-1)
	if key == (addrKey{}) {
		return
	}
	now := a.now()
	a.update(key, func(e *addrEntry) { e.conns-- }, now)
}

// update changes the entry of key, if there is one, and drops it if it
// has settled.
func (a *admission) update(key addrKey, change func(e *addrEntry), now int64) {
	gone := false
	a.addrs.Compute(key, func(e addrEntry, loaded bool) (addrEntry, bool) {
		if !loaded {
			return e, true // leave it absent
		}
		change(&e)
		gone = a.settle(&e, now)
		return e, gone
	})
	if gone {
		a.entries.Add(-1) // only now: entries never counts less than the map holds
	}
}

// take charges an upgrade to its address's entry, made if need be.
func (a *admission) take(key addrKey) refusal {
	for swept := false; ; swept = true {
		now := a.now()
		var f refusal
		full, gone := false, false
		a.addrs.Compute(key, func(e addrEntry, loaded bool) (addrEntry, bool) {
			if !loaded {
				if n := a.entries.Add(1); a.lim.MaxAddresses >= 0 && n > int64(a.lim.MaxAddresses) {
					a.entries.Add(-1)
					full = true
					return e, true
				}
				e = addrEntry{tokens: float64(a.lim.UpgradeBurst), at: now}
			}
			f = a.charge(&e, now)
			gone = a.settle(&e, now)
			return e, gone
		})
		if gone {
			a.entries.Add(-1)
		}
		if !full {
			return f
		}
		if swept || !a.sweep(now) {
			a.refused.Addresses.Add(1)
			return refusal{status: http.StatusServiceUnavailable, retry: retryLater, msg: "too many client addresses"}
		}
	}
}

// charge takes a token from e's bucket and counts a session in e, or
// refuses.
func (a *admission) charge(e *addrEntry, now int64) refusal {
	if a.bucket {
		a.refill(e, now)
		if e.tokens < 1 {
			a.refused.UpgradeRate.Add(1)
			wait := time.Duration((1 - e.tokens) / a.lim.UpgradeRate * float64(time.Second))
			return refusal{status: http.StatusTooManyRequests, retry: wait, msg: "too many upgrades from this address"}
		}
		e.tokens--
	}
	if n := a.lim.MaxConnectionsPerAddress; n >= 0 {
		if int(e.conns) >= n {
			a.refused.ConnectionsPerAddress.Add(1)
			return refusal{status: http.StatusTooManyRequests, retry: retryLater, msg: "too many connections from this address"}
		}
		e.conns++
	}
	return refusal{}
}

func (a *admission) refill(e *addrEntry, now int64) {
	if a.bucket && now > e.at {
		e.tokens = min(float64(a.lim.UpgradeBurst), e.tokens+float64(now-e.at)*a.lim.UpgradeRate/1e9)
		e.at = now
	}
}

// settle reports whether e goes from the table: it has no session and a
// full bucket. An entry kept without a session notes when its bucket will
// be full, for sweep.
func (a *admission) settle(e *addrEntry, now int64) bool {
	if e.conns > 0 {
		return false
	}
	a.refill(e, now)
	burst := float64(a.lim.UpgradeBurst)
	if !a.bucket || e.tokens >= burst {
		return true
	}
	wait := min((burst-e.tokens)/a.lim.UpgradeRate*1e9, 1<<62)
	t := e.at + int64(wait)
	for cur := a.sweepAt.Load(); t < cur && !a.sweepAt.CompareAndSwap(cur, t); cur = a.sweepAt.Load() {
	}
	return false
}

// sweep drops the entries without a session whose buckets have refilled,
// to make room in a full table, and reports whether it ran. It runs only
// once one of them may have refilled (sweepAt), and one at a time, so a
// table full of addresses with sessions costs a refused upgrade an atomic
// load, not a scan.
func (a *admission) sweep(now int64) bool {
	if now < a.sweepAt.Load() || !a.sweeping.CompareAndSwap(false, true) {
		return false
	}
	defer a.sweeping.Store(false)
	a.sweepAt.Store(math.MaxInt64) // the entries it keeps note their times again
	a.addrs.Range(func(k addrKey, e addrEntry) bool {
		if e.conns == 0 {
			a.update(k, func(*addrEntry) {}, now)
		}
		return true
	})
	return true
}

func (a *admission) now() int64 { return int64(time.Since(a.base)) }

// inPrefixes reports whether ip is in one of ps.
func inPrefixes(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// key returns ip's key in the table; the addresses that did not parse (the
// zero Addr) all share one key.
func (a *admission) key(ip netip.Addr) addrKey {
	var b [9]byte
	n := 1
	switch {
	case !ip.IsValid():
	case ip.Is4():
		b[0] = 4
		v4 := ip.As4()
		n += copy(b[1:], v4[:])
	default:
		b[0] = 6
		v6 := ip.As16()
		n += copy(b[1:], v6[:8]) // the /64 prefix
	}
	h := maphash.Bytes(a.seed, b[:n])
	var k addrKey
	for i := range k {
		k[i] = byte(h >> (8 * i))
	}
	if k == (addrKey{}) {
		k[0] = 1
	}
	return k
}

// clientIP returns the IP of a RemoteAddr, "ip:port" or a bare IP.
func clientIP(remote string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remote)
	ip := ap.Addr()
	if err != nil {
		if ip, err = netip.ParseAddr(remote); err != nil {
			return netip.Addr{}, false
		}
	}
	return ip.Unmap().WithZone(""), true
}
