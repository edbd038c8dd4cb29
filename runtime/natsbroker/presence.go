package natsbroker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"iter"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shockwave-go/shockwave/runtime"
)

// The rooms' presence (runtime.PresenceBroker) is a JetStream key-value
// bucket, <Prefix>_presence (dots made underscores), in memory, made by
// the first node that needs it. Each node has one entry per room it has
// presence in, key <room>.<node>.<instance> (room as token makes it, with
// '=' for '~', which a key may not hold; instance names this Broker and
// the room's sharing, so that a node that restarts, or a room made again
// while its last sharing ends, is another entry), whose value lists its
// keys. A node puts its entry when its keys change, at most every
// presenceDebounce, and again every third of the TTL; the bucket's max
// age is the TTL, with limit markers, so that the server deletes the
// entries of a node that stopped putting them and tells the watchers.
// Each node watches <room>.*.* while it has presence in the room, and
// expires the entries it holds by their age too, in case no marker
// comes.
const (
	// presenceDebounce is the least time between two puts of a room's
	// entry for changes: a room filling up puts at most ten times a
	// second, whatever the arrivals.
	presenceDebounce = 100 * time.Millisecond
	// presenceWait bounds each request to the bucket (a put, a watch, the
	// bucket's making) and SharePresence's first load.
	presenceWait = 5 * time.Second
	// presenceRetry is the least time between two attempts to make the
	// bucket, or a room's watch, after a failure.
	presenceRetry = time.Second
)

// The value of an entry (format 1):
//
//	version  1 byte, 1
//	flags    1 byte: 1 when keys were left out, the entry past the server's max_payload
//	count    uvarint, the number of keys
//	count times:
//	  key length   uvarint
//	  key
//	  info length  uvarint, 0 for null
//	  info         the key's info, as JSON
//
// and nothing after the last key.
const (
	presenceVersion   = 1
	presenceTruncated = 1 // flags: keys left out
)

var (
	errPresenceFormat = errors.New("natsbroker: not a presence entry of a format this node reads")
	errPresenceCount  = errors.New("natsbroker: a presence entry announces more keys than it holds")
	errPresenceDup    = errors.New("natsbroker: a presence entry lists a key twice")
	errPresenceInfo   = errors.New("natsbroker: a presence entry's info is not JSON")
)

// The reasons of shockwave.broker.presence.errors, indices of
// telemetry.presErrors.
const (
	presErrBucket = iota
	presErrPut
	presErrDelete
	presErrWatch
	presErrTooLarge
	presErrInfo
	nPresErrors
)

var (
	presErrorReasons = [nPresErrors]string{"bucket", "put", "delete", "watch", "too_large", "info"}
	presErrorLogs    = [nPresErrors]string{
		"natsbroker: the rooms' presence needs JetStream and its key-value bucket, which could not be had: the rooms' presence is this node's alone until it can",
		"natsbroker: a room's presence could not be put: the other nodes see it as it was",
		"natsbroker: a room's presence could not be deleted: the other nodes see it until it expires",
		"natsbroker: a room's presence could not be watched: the other nodes' are not seen until it can",
		"natsbroker: a room's presence is past the server's max_payload: keys left out, which the other nodes do not see",
		"natsbroker: a presence info that does not marshal to JSON: the other nodes see it as null",
	}
)

// What the presence logs, each at most once a second: the errors above,
// then these.
const (
	presLogMalformed = nPresErrors + iota
	presLogTTL
	nPresLogs
)

// PresenceStats are the counts of the rooms' presence: Stats.Presence.
type PresenceStats struct {
	// Puts counts this node's entries put to the bucket: changes and
	// heartbeats.
	Puts int64
	// Updates counts the changes of other nodes' entries this node's
	// watches received: puts, deletions and expiries.
	Updates int64
	// Expired counts the other nodes' entries this node dropped because
	// they expired: their node stopped putting them (it died, or lost
	// NATS).
	Expired int64
	// Malformed counts the entries of other nodes that did not decode,
	// dropped.
	Malformed int64
	// Errors counts the failures, by reason.
	Errors struct {
		// Bucket: the bucket could not be made or found (no JetStream,
		// NATS unreachable).
		Bucket int64
		// Put and Delete: this node's entries that could not be put or
		// deleted.
		Put, Delete int64
		// Watch: watches of a room's entries that could not be made.
		Watch int64
		// TooLarge: entries past the server's max_payload, keys left out.
		TooLarge int64
		// Info: infos that did not marshal to JSON, sent as null.
		Info int64
	}
	// Rooms is how many rooms' presence this node shares now.
	Rooms int
}

// presenceState is the Broker's part of the rooms' presence.
type presenceState struct {
	instance string        // this Broker's, in its entries' keys
	shares   atomic.Uint64 // numbers the rooms' sharings, in their keys
	ttl      atomic.Int64  // the bucket's, once known; Options.PresenceTTL until then
	logs     [nPresLogs]limiter

	// bucketMu serialises the making of the bucket, and guards js, kv,
	// gen, failedAt and failed.
	bucketMu sync.Mutex
	js       jetstream.JetStream
	kv       jetstream.KeyValue // nil until had, and again once found missing
	gen      uint64             // counts the times the bucket was had
	failedAt time.Time          // the last failure to have it
	failed   error

	mu     sync.Mutex // guards rooms and closed
	rooms  map[*shared]struct{}
	closed bool
	quit   chan struct{} // closed by Close
	wg     sync.WaitGroup

	// reconnects counts the connection's (re)connections: each room then
	// watches again and puts its entry again, as the server may have lost
	// the bucket (it is in memory), and a watch that resumes on a bucket
	// made again would miss its first changes.
	reconnects atomic.Uint64
	status     chan nats.Status
	watched    sync.WaitGroup // the goroutine that reads status
}

// initPresence readies the rooms' presence: New.
func (b *Broker) initPresence() {
	ps := &b.pres
	ps.instance = strings.ToLower(rand.Text()[:10])
	ps.ttl.Store(int64(b.opts.PresenceTTL))
	ps.rooms = make(map[*shared]struct{})
	ps.quit = make(chan struct{})
	ps.status = b.nc.StatusChanged(nats.CONNECTED)
	ps.watched.Add(1)
	go func() {
		defer ps.watched.Done()
		for range ps.status {
			ps.reconnects.Add(1)
			ps.bucketMu.Lock()
			ps.kv, ps.failed = nil, nil // found again, or made again, at the next request
			ps.bucketMu.Unlock()
			ps.mu.Lock()
			for s := range ps.rooms {
				s.poke()
			}
			ps.mu.Unlock()
		}
	}()
}

// bucketName returns the name of the bucket of the rooms' presence.
func bucketName(prefix string) string { return strings.ReplaceAll(prefix, ".", "_") + "_presence" }

// kvToken returns room's token in the bucket's keys: the name itself when
// it is a safe token (letters, digits, '-' and '_'), else '=' and the name
// in unpadded URL-safe base64 (token's '~' is not allowed in a key). A safe
// name never starts with '=', so no two rooms share a token.
func kvToken(room string) string {
	if safe(room) {
		return room
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(room))
}

// bucket returns the bucket, made if it is missing, and its generation.
func (b *Broker) bucket(ctx context.Context) (jetstream.KeyValue, uint64, error) {
	ps := &b.pres
	ps.bucketMu.Lock()
	defer ps.bucketMu.Unlock()
	if ps.kv != nil {
		return ps.kv, ps.gen, nil
	}
	if ps.failed != nil && time.Since(ps.failedAt) < presenceRetry {
		return nil, 0, ps.failed
	}
	kv, err := b.openBucket(ctx)
	if err != nil {
		ps.failed, ps.failedAt = err, time.Now()
		b.presFail(presErrBucket, "", err)
		return nil, 0, err
	}
	ps.kv, ps.failed = kv, nil
	ps.gen++
	return kv, ps.gen, nil
}

// openBucket finds the bucket, or makes it. ps.bucketMu is held.
func (b *Broker) openBucket(ctx context.Context) (jetstream.KeyValue, error) {
	ps := &b.pres
	if !b.nc.IsConnected() { // a request would wait for the connection, up to ctx's end
		return nil, nats.ErrConnectionReconnecting
	}
	if ps.js == nil {
		js, err := jetstream.New(b.nc)
		if err != nil {
			return nil, err
		}
		ps.js = js
	}
	name, ttl := bucketName(b.opts.Prefix), b.opts.PresenceTTL
	kv, err := ps.js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		cfg := jetstream.KeyValueConfig{
			Bucket:         name,
			Description:    "Shockwave: who is in each room, one entry per room and node (runtime/natsbroker)",
			History:        1,
			TTL:            ttl,
			LimitMarkerTTL: ttl,
			Storage:        jetstream.MemoryStorage,
		}
		kv, err = ps.js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) { // a server before 2.11: no markers
			cfg.LimitMarkerTTL = 0
			kv, err = ps.js.CreateKeyValue(ctx, cfg)
		}
		if errors.Is(err, jetstream.ErrBucketExists) { // another node made it meanwhile, otherwise
			kv, err = ps.js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	if have := st.TTL(); have != ttl {
		if have > 0 {
			ps.ttl.Store(int64(have))
		}
		ps.logs[presLogTTL].log(b.opts.Logger, "natsbroker: the presence bucket's TTL is not Options.PresenceTTL: the bucket's holds, as the other nodes' do",
			"bucket", name, "bucket_ttl", have, "presence_ttl", ttl)
	}
	return kv, nil
}

// lost forgets the bucket of generation gen, found missing: the next
// request makes it again.
func (b *Broker) lost(gen uint64) {
	ps := &b.pres
	ps.bucketMu.Lock()
	if ps.gen == gen {
		ps.kv = nil
	}
	ps.bucketMu.Unlock()
}

// generation returns the bucket's generation, 0 while it is not had.
func (b *Broker) generation() uint64 {
	ps := &b.pres
	ps.bucketMu.Lock()
	defer ps.bucketMu.Unlock()
	if ps.kv == nil {
		return 0
	}
	return ps.gen
}

// missing reports whether err says that the bucket's stream is gone.
func missing(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, nats.ErrNoResponders)
}

// presFail counts a presence error and logs it, at most once a second for
// each reason.
func (b *Broker) presFail(reason int, room string, err error) {
	b.tel.presErrors[reason].Add(1)
	args := []any{"error", err}
	if room != "" {
		args = append(args, "room", room)
	}
	b.pres.logs[reason].log(b.opts.Logger, presErrorLogs[reason], args...)
}

// shared is one room's presence as this node shares it: its entry, its
// watch of the other nodes', and the goroutine that keeps both
// (SharePresence's SharedPresence).
type shared struct {
	b      *Broker
	room   string
	key    string // this node's entry
	prefix string // the room's keys start with it
	here   iter.Seq2[string, any]
	others func(node string, keys map[string]any)
	wake   chan struct{} // one slot: something changed

	mu       sync.Mutex // guards the fields below
	dirty    bool       // Changed since the last read of here
	stopped  bool       // Stop was called
	gone     bool       // Stop's
	final    []byte     // the entry Stop(false) read, to put
	hasFinal bool

	// The goroutine's own, and SharePresence's before it starts it.
	seen    uint64               // presenceState.reconnects, as last acted on
	w       jetstream.KeyWatcher // nil: not watching
	wend    func()               // ends w's context, which the NATS client ties w to
	wgen    uint64               // the bucket's generation w watches
	retryAt time.Time            // when to try watching again
	nodes   map[string]*entry    // the other nodes' entries, by node
	last    []byte               // the entry this node put last, or tried to
	stored  bool                 // last is stored
	putAt   time.Time            // when last was put, or tried
	dueAt   time.Time            // when last is to be put again: a heartbeat, or a retry
}

// entry is another node's entry, as last received.
type entry struct {
	value   []byte
	expires time.Time
}

// SharePresence implements runtime.PresenceBroker: this node's keys in
// room go to an entry of the bucket (see Options.PresenceTTL), put when
// they change, at most every 100 ms, and every third of the TTL; the
// other nodes' entries of the room are watched, and each change told to
// others: node is the other node's Options.Node and an instance of its
// Broker. Before it returns, SharePresence tells others the entries it can
// read within 5 s, unless the connection is down: then, as the bucket,
// they come as soon as they can be had, tried again every second. A
// node's entry goes when its room goes from it (Stop(true)); at Shutdown
// (Stop(false)) and Close it stays until it expires, a TTL after it was
// last put. It fails only for a room name past MaxRoomName, or after
// Close.
func (b *Broker) SharePresence(room string, here iter.Seq2[string, any], others func(node string, keys map[string]any)) (runtime.SharedPresence, error) {
	if len(room) > MaxRoomName {
		return nil, errRoomName
	}
	ps := &b.pres
	tok := kvToken(room)
	s := &shared{
		b:      b,
		room:   room,
		key:    tok + "." + b.node + "." + ps.instance + "-" + strconv.FormatUint(ps.shares.Add(1), 36),
		prefix: tok + ".",
		here:   here,
		others: others,
		wake:   make(chan struct{}, 1),
		nodes:  make(map[string]*entry),
		seen:   ps.reconnects.Load(),
	}
	ps.mu.Lock()
	if ps.closed || b.done.Load() {
		ps.mu.Unlock()
		return nil, ErrClosed
	}
	ps.rooms[s] = struct{}{}
	ps.wg.Add(1)
	ps.mu.Unlock()
	if b.nc.IsConnected() {
		ctx, cancel := context.WithTimeout(context.Background(), presenceWait)
		s.watch(ctx, true)
		cancel()
	}
	go s.run()
	return s, nil
}

// Changed implements runtime.SharedPresence.
func (s *shared) Changed() {
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
	s.poke()
}

// Stop implements runtime.SharedPresence: gone, the entry is deleted;
// else it stays until it expires, put once more first if the keys
// changed.
func (s *shared) Stop(gone bool) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	dirty := s.dirty
	s.mu.Unlock()
	var final []byte
	if dirty && !gone {
		final = s.encode()
	}
	s.mu.Lock()
	s.stopped, s.gone = true, gone
	s.final, s.hasFinal = final, final != nil
	s.mu.Unlock()
	s.poke()
}

func (s *shared) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *shared) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// run keeps the room's entry and watch, until Stop or Close.
func (s *shared) run() {
	ps := &s.b.pres
	defer func() {
		s.unwatch()
		ps.mu.Lock()
		delete(ps.rooms, s)
		ps.mu.Unlock()
		ps.wg.Done()
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		var updates <-chan jetstream.KeyValueEntry
		if s.w != nil {
			updates = s.w.Updates()
		}
		select {
		case e, ok := <-updates:
			if !ok { // the watch ended (its connection closed): watch again
				s.unwatch()
				s.retryAt = time.Now().Add(presenceRetry)
			} else {
				s.update(e)
			}
		case <-s.wake:
		case <-t.C:
		case <-ps.quit:
		}
		s.mu.Lock()
		stopped, gone := s.stopped, s.gone
		s.mu.Unlock()
		if stopped {
			s.end(gone)
			return
		}
		select {
		case <-ps.quit: // Close, before the Runtime's Shutdown stopped the room
			s.end(false)
			return
		default:
		}
		t.Reset(time.Until(s.step(time.Now())))
	}
}

// heartbeat is how often an entry is put again: a third of the TTL.
func (s *shared) heartbeat() time.Duration { return time.Duration(s.b.pres.ttl.Load()) / 3 }

// step puts the entry if it changed or is due, expires the other nodes'
// entries that are, watches again if need be, and returns when to step
// next.
func (s *shared) step(now time.Time) time.Time {
	if rc := s.b.pres.reconnects.Load(); rc != s.seen { // watch afresh, and put at once
		s.seen = rc
		s.unwatch()
		s.retryAt = time.Time{}
		if s.last != nil {
			s.dueAt = now
		}
	}
	hb := s.heartbeat()
	s.mu.Lock()
	dirty := s.dirty
	s.mu.Unlock()
	switch {
	case dirty && !now.Before(s.putAt.Add(presenceDebounce)):
		s.mu.Lock()
		s.dirty = false
		s.mu.Unlock()
		s.put(s.encode(), now)
	case s.last != nil && !now.Before(s.dueAt):
		s.put(s.last, now)
	}
	if s.w != nil && s.wgen != s.b.generation() { // the bucket was lost, and maybe made again
		s.unwatch()
	}
	if s.w == nil && !now.Before(s.retryAt) {
		ctx, cancel := context.WithTimeout(context.Background(), presenceWait)
		s.watch(ctx, false)
		cancel()
	}
	next := now.Add(hb)
	s.mu.Lock()
	dirty = s.dirty
	s.mu.Unlock()
	if dirty {
		next = earliest(next, s.putAt.Add(presenceDebounce))
	}
	if s.last != nil {
		next = earliest(next, s.dueAt)
	}
	if s.w == nil {
		next = earliest(next, s.retryAt)
	}
	for node, e := range s.nodes {
		if !now.Before(e.expires) {
			delete(s.nodes, node)
			s.b.tel.presExpired.Add(1)
			s.tell(node, nil)
			continue
		}
		next = earliest(next, e.expires)
	}
	return next
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// end puts the entry once more (Stop(false), Close) or deletes it
// (Stop(true)), when the room's sharing ends.
func (s *shared) end(gone bool) {
	if !s.b.nc.IsConnected() {
		return // NATS is away: the entry expires after its TTL
	}
	ctx, cancel := context.WithTimeout(context.Background(), presenceWait)
	defer cancel()
	s.mu.Lock()
	final, hasFinal, dirty := s.final, s.hasFinal, s.dirty && !s.stopped
	s.mu.Unlock()
	switch {
	case gone:
		if s.last == nil {
			return // never put
		}
		kv, _, err := s.b.bucket(ctx)
		if err == nil {
			err = kv.Delete(ctx, s.key)
		}
		if err != nil {
			s.b.presFail(presErrDelete, s.room, err)
		}
	case hasFinal:
		s.put(final, time.Now())
	case dirty: // Close before the Runtime's Shutdown
		s.put(s.encode(), time.Now())
	case s.last != nil && !s.stored:
		s.put(s.last, time.Now())
	}
}

// encode reads here and returns the entry's value.
func (s *shared) encode() []byte {
	limit := int(s.b.nc.MaxPayload())
	if limit <= 0 {
		limit = 1 << 20 // NATS' default
	}
	v, left, bad, err := appendPresence(nil, s.here, limit)
	if bad > 0 {
		s.b.tel.presErrors[presErrInfo].Add(int64(bad))
		s.b.pres.logs[presErrInfo].log(s.b.opts.Logger, presErrorLogs[presErrInfo], "room", s.room, "infos", bad, "error", err)
	}
	if left > 0 {
		s.b.tel.presErrors[presErrTooLarge].Add(1)
		s.b.pres.logs[presErrTooLarge].log(s.b.opts.Logger, presErrorLogs[presErrTooLarge], "room", s.room, "keys_left_out", left, "max_payload", limit)
	}
	return v
}

// put puts v as the room's entry, and says when to put it again: a
// heartbeat later, or sooner to try again.
func (s *shared) put(v []byte, now time.Time) {
	hb := s.heartbeat()
	s.last, s.stored, s.putAt, s.dueAt = v, false, now, now.Add(min(hb, presenceRetry))
	ctx, cancel := context.WithTimeout(context.Background(), presenceWait)
	defer cancel()
	kv, gen, err := s.b.bucket(ctx)
	if err != nil {
		return
	}
	if _, err := kv.Put(ctx, s.key, v); err != nil {
		if missing(err) {
			s.b.lost(gen)
		}
		s.b.presFail(presErrPut, s.room, err)
		return
	}
	s.stored, s.dueAt = true, now.Add(hb)
	s.b.tel.presPuts.Add(1)
}

// watch watches the other nodes' entries of the room; initial, it waits,
// within ctx, for those there are now. The watch lives until unwatch.
func (s *shared) watch(ctx context.Context, initial bool) {
	s.retryAt = time.Now().Add(presenceRetry)
	kv, gen, err := s.b.bucket(ctx)
	if err != nil {
		return
	}
	// The NATS client unsubscribes the watch when the context it was made
	// with ends: one of its own, which a timer ends if the making takes
	// longer than ctx allows.
	life, end := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, end)
	w, err := kv.Watch(life, s.prefix+"*.*")
	if !stop() && err == nil { // made, but too late: ended
		err = ctx.Err()
	}
	if err != nil {
		end()
		if missing(err) {
			s.b.lost(gen)
		}
		s.b.presFail(presErrWatch, s.room, err)
		return
	}
	s.w, s.wend, s.wgen = w, end, gen
	if !initial {
		return
	}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				s.unwatch()
				return
			}
			if e == nil { // the entries there were
				return
			}
			s.update(e)
		case <-ctx.Done():
			return // the rest comes to run
		}
	}
}

// unwatch stops the watch, and reads what the NATS client still had for
// it, which may hold its delivery goroutine, until it closes the channel.
// It ends the watch's context rather than calling Stop: the NATS client
// then unsubscribes on a goroutine of its own, and deletes the consumer
// there, a request that waits for the server, away when the connection is
// down.
func (s *shared) unwatch() {
	w := s.w
	if w == nil {
		return
	}
	s.w = nil
	s.wend()
	t := time.NewTimer(presenceWait)
	defer t.Stop()
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-t.C:
			return
		}
	}
}

// update takes a change of the room's entries.
func (s *shared) update(e jetstream.KeyValueEntry) {
	if e == nil {
		return // the end of the entries there were: the watch goes on
	}
	key := e.Key()
	if key == s.key || !strings.HasPrefix(key, s.prefix) {
		return
	}
	node := key[len(s.prefix):]
	s.b.tel.presUpdates.Add(1)
	have := s.nodes[node]
	switch e.Operation() {
	case jetstream.KeyValuePut:
		v := e.Value()
		if have != nil && bytes.Equal(have.value, v) { // a heartbeat
			have.expires = s.expiry(e.Created())
			return
		}
		keys, err := decodePresence(v)
		if err != nil {
			s.b.tel.presMalformed.Add(1)
			s.b.pres.logs[presLogMalformed].log(s.b.opts.Logger, "natsbroker: another node's presence entry that does not decode, dropped",
				"room", s.room, "node", node, "error", err)
			return
		}
		s.nodes[node] = &entry{value: v, expires: s.expiry(e.Created())}
		s.tell(node, keys)
	default: // deleted (the room went from the node), or a marker: expired
		if have == nil {
			return
		}
		delete(s.nodes, node)
		if e.Operation() == jetstream.KeyValuePurge {
			s.b.tel.presExpired.Add(1)
		}
		s.tell(node, nil)
	}
}

// expiry returns when an entry put at created (by the server's clock)
// expires, if it is not put again: a TTL after, but no sooner than half
// a TTL from now, so that a clock ahead of the server's does not expire
// the entries of live nodes, and no later than a TTL from now.
func (s *shared) expiry(created time.Time) time.Time {
	ttl := time.Duration(s.b.pres.ttl.Load())
	now := time.Now()
	exp := created.Add(ttl)
	if lo := now.Add(ttl / 2); exp.Before(lo) {
		return lo
	}
	if hi := now.Add(ttl); exp.After(hi) {
		return hi
	}
	return exp
}

// tell tells the Runtime of a node's keys, unless the sharing stopped.
func (s *shared) tell(node string, keys map[string]any) {
	if !s.isStopped() {
		s.others(node, keys)
	}
}

// closePresence ends every room's sharing, each entry put once more if it
// changed, and left to expire: Close.
func (b *Broker) closePresence() {
	ps := &b.pres
	ps.mu.Lock()
	if !ps.closed {
		ps.closed = true
		close(ps.quit)
	}
	ps.mu.Unlock()
	ps.wg.Wait()
	b.nc.RemoveStatusListener(ps.status)
	ps.watched.Wait()
}

// presenceStats returns the counts of the rooms' presence.
func (b *Broker) presenceStats() PresenceStats {
	t := b.tel
	st := PresenceStats{
		Puts:      t.presPuts.Load(),
		Updates:   t.presUpdates.Load(),
		Expired:   t.presExpired.Load(),
		Malformed: t.presMalformed.Load(),
	}
	e := &st.Errors
	for i, p := range [nPresErrors]*int64{&e.Bucket, &e.Put, &e.Delete, &e.Watch, &e.TooLarge, &e.Info} {
		*p = t.presErrors[i].Load()
	}
	b.pres.mu.Lock()
	st.Rooms = len(b.pres.rooms)
	b.pres.mu.Unlock()
	return st
}

// appendPresence appends to dst the value of an entry listing keys, at
// most limit bytes: the keys past it are left out (left), the flag set.
// An info that does not marshal is sent as null (bad, the first error).
func appendPresence(dst []byte, keys iter.Seq2[string, any], limit int) (v []byte, left, bad int, err error) {
	var body []byte
	n := 0
	for key, info := range keys {
		var j []byte
		if info != nil {
			var jerr error
			if j, jerr = json.Marshal(info); jerr != nil {
				j = nil
				if bad++; err == nil {
					err = jerr
				}
			}
		}
		size := uvarintLen(len(key)) + len(key) + uvarintLen(len(j)) + len(j)
		if 2+uvarintLen(n+1)+len(body)+size > limit {
			left++
			continue
		}
		body = binary.AppendUvarint(body, uint64(len(key)))
		body = append(body, key...)
		body = binary.AppendUvarint(body, uint64(len(j)))
		body = append(body, j...)
		n++
	}
	var flags byte
	if left > 0 {
		flags |= presenceTruncated
	}
	dst = append(dst, presenceVersion, flags)
	dst = binary.AppendUvarint(dst, uint64(n))
	return append(dst, body...), left, bad, err
}

// decodePresence decodes an entry's value into its keys and their infos,
// as encoding/json decodes them into any. What it allocates is bounded by
// the bytes present, whatever a count or length says; a length past the
// end is an error, never a panic.
func decodePresence(b []byte) (map[string]any, error) {
	if len(b) < 3 || b[0] != presenceVersion || b[1]&^presenceTruncated != 0 {
		return nil, errPresenceFormat
	}
	n, k := binary.Uvarint(b[2:])
	if k <= 0 {
		return nil, errShort
	}
	rest := b[2+k:]
	if n > uint64(len(rest)/2) { // a key takes two bytes at least
		return nil, errPresenceCount
	}
	keys := make(map[string]any, n)
	for range n {
		key, r, err := field(rest)
		if err != nil {
			return nil, err
		}
		j, r, err := field(r)
		if err != nil {
			return nil, err
		}
		if _, dup := keys[string(key)]; dup {
			return nil, errPresenceDup
		}
		var info any
		if len(j) > 0 && json.Unmarshal(j, &info) != nil {
			return nil, errPresenceInfo
		}
		keys[string(key)] = info
		rest = r
	}
	if len(rest) != 0 {
		return nil, errTrailing
	}
	return keys, nil
}

var _ runtime.PresenceBroker = (*Broker)(nil)
