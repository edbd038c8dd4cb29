package natsbroker

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shockwave-go/shockwave/internal/bufpool"
	"github.com/shockwave-go/shockwave/runtime"
)

// The log of the rooms that keep history (runtime.Log) is one JetStream
// stream, <Prefix>_rooms, over <Prefix>.log.<token>. The stream stores a
// room's message, gives it its sequence, the room's offset, and
// republishes it, with the headers Nats-Stream, Nats-Sequence and
// Nats-Last-Sequence (the room's message before it), on the room's live
// subject <Prefix>.r.<token>, which every node with members in the room
// subscribes to: one subscription carries the room's signals (core NATS)
// and its logged messages. A node delivers the logged ones in the
// stream's order, each once: it drops what it has delivered already and,
// when a message's Nats-Last-Sequence is past the last it delivered,
// first reads what it missed from the stream.

// headerExcept carries runtime.Carried.Except, for the publishing node.
const headerExcept = "Sw-Except"

// Headers the stream writes on what it republishes.
const (
	headerSequence     = "Nats-Sequence"
	headerLastSequence = "Nats-Last-Sequence"
)

// appendRetry is how long Append waits between two attempts, and
// appendAttempt the most one attempt waits for the stream's answer.
const (
	appendRetry   = 100 * time.Millisecond
	appendAttempt = time.Second
)

// logState is the Broker's stream, made on first use.
type logState struct {
	name    string // the stream's
	subject string // <Prefix>.log.>
	ids     atomic.Uint64
	mu      sync.Mutex // guards stream and epoch
	js      jetstream.JetStream
	stream  jetstream.Stream // nil until made, and again once it was found missing
	epoch   uint64           // the stream's identity: runtime.Position.Epoch
	watch   chan nats.Status // the connection's reconnections, for resync
	watched sync.WaitGroup   // the goroutine that resyncs
}

// streamName returns the name of the stream of the rooms' logs.
func streamName(prefix string) string { return strings.ReplaceAll(prefix, ".", "_") + "_rooms" }

// logSubject returns the subject room's messages are stored under.
func (b *Broker) logSubject(room string) (string, error) {
	if len(room) > MaxRoomName {
		return "", errRoomName
	}
	return b.opts.Prefix + ".log." + token(room), nil
}

// stream returns the stream, made or updated to the Options on first use,
// and its epoch.
func (b *Broker) stream(ctx context.Context) (jetstream.Stream, uint64, error) {
	l := &b.log
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stream != nil {
		return l.stream, l.epoch, nil
	}
	if l.js == nil {
		js, err := jetstream.New(b.nc)
		if err != nil {
			return nil, 0, err
		}
		l.js = js
	}
	o := &b.opts
	st, err := l.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              l.name,
		Description:       "Shockwave: the rooms that keep history",
		Subjects:          []string{l.subject},
		Storage:           jetstream.FileStorage,
		Replicas:          o.LogReplicas,
		MaxMsgsPerSubject: int64(o.LogKeep),
		MaxAge:            o.LogMaxAge,
		MaxBytes:          o.LogMaxBytes,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
		RePublish:         &jetstream.RePublish{Source: l.subject, Destination: o.Prefix + ".r.>"},
	})
	if err != nil {
		return nil, 0, err
	}
	l.stream, l.epoch = st, epochOf(st.CachedInfo())
	return st, l.epoch, nil
}

// forget drops the stream st, found missing, so that the next use makes it
// again, with a new epoch.
func (b *Broker) forget(st jetstream.Stream) {
	b.log.mu.Lock()
	if b.log.stream == st {
		b.log.stream = nil
	}
	b.log.mu.Unlock()
}

// epochOf derives a stream's epoch from its name and creation time: a
// stream deleted and made again has another. 53 bits, never 0.
func epochOf(info *jetstream.StreamInfo) uint64 {
	h := fnv.New64a()
	h.Write([]byte(info.Config.Name))
	h.Write(strconv.AppendInt(nil, info.Created.UnixNano(), 10))
	return max(h.Sum64()>>11, 1)
}

// Append implements runtime.Log: m is stored under the room's log
// subject, with this node's HeaderOrigin, m.Except and the trace context
// of ctx, and a message ID, so that the stream stores it once however
// often it is sent. Append waits for the stream's acknowledgement, within
// ctx and Options.AppendTimeout, sending again while NATS is unreachable
// or the stream does not answer. An error says that the message may not
// have been stored; it is counted and logged as Publish's are.
func (b *Broker) Append(ctx context.Context, room string, m runtime.Carried) (runtime.Position, error) {
	if b.done.Load() {
		b.fail(errClosed, room, ErrClosed)
		return runtime.Position{}, ErrClosed
	}
	n, err := encodedLen(m)
	if err == nil {
		var subj string
		if subj, err = b.logSubject(room); err == nil {
			return b.append(ctx, room, subj, n, m)
		}
	}
	b.fail(errInvalid, room, err)
	return runtime.Position{}, err
}

// append is Append for a message whose body is n bytes long.
func (b *Broker) append(ctx context.Context, room, subj string, n int, m runtime.Carried) (runtime.Position, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.AppendTimeout)
	defer cancel()
	ctx, span := b.tracer.Start(ctx, "nats send", producer, sendSpan(subj, n))
	defer span.End()
	bp := bufpool.Get(n)
	defer bufpool.Put(bp)
	h := nats.Header{HeaderOrigin: []string{b.node}}
	if m.Except != 0 {
		h[headerExcept] = []string{strconv.FormatUint(m.Except, 10)}
	}
	b.opts.Propagator.Inject(ctx, headerCarrier(h))
	msg := &nats.Msg{Subject: subj, Header: h, Data: appendMessage((*bp)[:0], m)}
	id := b.node + "-" + strconv.FormatUint(b.log.ids.Add(1), 10)
	for {
		pos, err := b.appendOnce(ctx, msg, id)
		if err == nil {
			b.tel.published.Add(1)
			return pos, nil
		}
		if !retryable(err) || sleep(ctx, appendRetry) != nil {
			failed(span, err)
			// Counted as a publish's failure, but not "lost": what was
			// sent may still be stored, once, and delivered.
			b.tel.errors[b.publishReason(err)].Add(1)
			b.logs[logAppend].log(b.opts.Logger, "natsbroker: an append to a room's log was not acknowledged: it may or may not be stored",
				"room", room, "error", err)
			return runtime.Position{}, err
		}
	}
}

// appendOnce sends msg to the stream once, waiting at most appendAttempt
// for its answer.
func (b *Broker) appendOnce(ctx context.Context, msg *nats.Msg, id string) (runtime.Position, error) {
	st, epoch, err := b.stream(ctx)
	if err != nil {
		return runtime.Position{}, err
	}
	actx, cancel := context.WithTimeout(ctx, appendAttempt)
	defer cancel()
	ack, err := b.log.js.PublishMsg(actx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(b.log.name))
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrNoStreamResponse) {
			b.forget(st) // lost with a server's store, or deleted: made again
		}
		return runtime.Position{}, err
	}
	return runtime.Position{Epoch: epoch, Offset: ack.Sequence}, nil
}

// retryable reports whether an append that failed with err may succeed if
// sent again: NATS was unreachable, or the stream did not answer.
func retryable(err error) bool {
	switch {
	case errors.Is(err, context.Canceled),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrMaxPayload), errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return false
	}
	return true
}

// sleep waits d, or until ctx is done, and returns ctx's error then.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// follow is the state of a followed room's log; its sub's mu guards it.
type follow struct {
	subject string // the room's log subject
	epoch   uint64 // the stream's, as of the last message delivered
	last    uint64 // the last sequence delivered (or the base a mark gave)
}

// Follow implements runtime.Log: it subscribes to room's subject, as
// Subscribe does, then reads what the stream keeps of the room and
// delivers it, first a mark of the room's position (see runtime.Log),
// before it returns. The room's logged messages then arrive through the
// subscription, as the stream republishes them, and are delivered in the
// stream's order, each once, what a node missed read from the stream
// first; what cannot be read any more (the stream dropped it, or NATS is
// unreachable for longer than Options.AppendTimeout) is counted
// (shockwave.broker.dropped, reason gap), and the Runtime starts the
// room's history again past it. After a reconnection the Broker reads
// from the stream what each followed room missed meanwhile.
func (b *Broker) Follow(room string, deliver func(ctx context.Context, m runtime.Carried)) (unfollow func(), err error) {
	subj, err := b.logSubject(room)
	if err != nil {
		b.fail(errSubscribe, room, err)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.AppendTimeout)
	defer cancel()
	if _, _, err := b.stream(ctx); err != nil {
		b.fail(errSubscribe, room, err)
		return nil, err
	}
	s, err := b.subscribe(room, deliver, &follow{subject: subj})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	err = s.catchUp(ctx, true)
	s.mu.Unlock()
	if err != nil {
		b.fail(errSubscribe, room, err)
		s.unsubscribe()
		return nil, err
	}
	return s.unsubscribe, nil
}

// catchUp brings the followed room up to the stream (s.mu held): all of it
// when fresh (a mark, then what the stream keeps), or else what came after
// the last message delivered.
func (s *sub) catchUp(ctx context.Context, fresh bool) error {
	b, f := s.b, s.log
	st, epoch, err := b.stream(ctx)
	if err != nil {
		return err
	}
	if fresh || epoch != f.epoch {
		return s.reread(ctx, st, epoch)
	}
	last, err := st.GetLastMsgForSubject(ctx, f.subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil
	case err != nil:
		return err
	}
	if last.Sequence > f.last {
		return s.fill(ctx, st, last.Sequence)
	}
	return nil
}

// reread delivers a mark of the room's position in the stream, then every
// message the stream keeps of the room.
func (s *sub) reread(ctx context.Context, st jetstream.Stream, epoch uint64) error {
	b, f := s.b, s.log
	first, err := st.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(f.subject))
	var base uint64
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound): // nothing kept: the stream's last sequence, unless nothing was ever dropped
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if b.opts.LogMaxAge > 0 || info.State.FirstSeq > 1 { // something was dropped: maybe of this room
			base = info.State.LastSeq
		}
	case err != nil:
		return err
	default:
		base = first.Sequence - 1 // see gapPrev
	}
	if s.closed {
		return nil
	}
	s.deliver(ctx, runtime.Carried{At: runtime.Position{Epoch: epoch, Offset: base}})
	f.epoch, f.last = epoch, base
	if first == nil {
		return nil
	}
	if err := s.deliverStored(ctx, first, base); err != nil {
		return err
	}
	return s.fill(ctx, st, ^uint64(0))
}

// fill reads from the stream and delivers the room's messages after the
// last delivered, up to the sequence upto.
func (s *sub) fill(ctx context.Context, st jetstream.Stream, upto uint64) error {
	b, f := s.b, s.log
	contiguous := false
	if f.last != 0 {
		var err error
		if contiguous, err = s.stillKept(ctx, st, f.last); err != nil {
			return err
		}
	}
	for range b.opts.LogKeep + 1 { // what the stream keeps of a room; the rest comes live
		if f.last >= upto || s.closed {
			return nil
		}
		rm, err := st.GetMsg(ctx, f.last+1, jetstream.WithGetMsgSubject(f.subject))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return nil
		case err != nil:
			return err
		case rm.Sequence > upto:
			return nil
		}
		prev := f.last
		if !contiguous {
			if prev = gapPrev(rm.Sequence, f.last); prev != f.last && f.last != 0 {
				b.tel.gaps.Add(1) // the stream dropped what lay between
				b.logs[logGap].log(b.opts.Logger, "natsbroker: a room's log no longer holds what this node missed: lost to its members",
					"room", s.room, "from", f.last+1, "to", prev)
			}
			contiguous = true
		}
		if err := s.deliverStored(ctx, rm, prev); err != nil {
			return err
		}
	}
	return nil
}

// gapPrev is the Prev of a message at seq whose predecessor in the room is
// not known to be the last delivered: seq-1, which is the room's own
// previous message only when nothing lies between, so that the Runtime
// recovers no client from a position before seq that it cannot vouch for.
func gapPrev(seq, last uint64) uint64 {
	if seq-1 == last {
		return last
	}
	return seq - 1
}

// stillKept reports whether the stream still holds the room's message at
// seq: then nothing after it was dropped (the stream drops the oldest
// first), and what follows it there follows it in the room.
func (s *sub) stillKept(ctx context.Context, st jetstream.Stream, seq uint64) (bool, error) {
	rm, err := st.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return rm.Subject == s.log.subject, nil
}

// deliverStored delivers a message read from the stream, whose room's
// message before it is prev.
func (s *sub) deliverStored(ctx context.Context, rm *jetstream.RawStreamMsg, prev uint64) error {
	c, err := decodeMessage(rm.Data)
	if err != nil {
		s.malformed(rm.Header.Get(HeaderOrigin), err)
		s.log.last = rm.Sequence
		return nil
	}
	s.deliverLogged(s.b.opts.Propagator.Extract(ctx, headerCarrier(rm.Header)), c, rm.Header, rm.Sequence, prev)
	return nil
}

// deliverLogged delivers c, the room's logged message at seq (s.mu held),
// in ctx, which carries its trace.
func (s *sub) deliverLogged(ctx context.Context, c runtime.Carried, h nats.Header, seq, prev uint64) {
	b, f := s.b, s.log
	c.At, c.Prev = runtime.Position{Epoch: f.epoch, Offset: seq}, prev
	if h.Get(HeaderOrigin) == b.node {
		c.Except, _ = strconv.ParseUint(h.Get(headerExcept), 10, 64)
	}
	f.last = seq
	if !s.closed {
		s.deliver(ctx, c)
		b.tel.received.Add(1)
	}
}

// receiveLogged is receive for a message the stream republished.
func (s *sub) receiveLogged(m *nats.Msg) {
	b := s.b
	seq, err1 := strconv.ParseUint(m.Header.Get(headerSequence), 10, 64)
	prev, err2 := strconv.ParseUint(m.Header.Get(headerLastSequence), 10, 64)
	if err1 != nil || err2 != nil || seq == 0 || prev >= seq || m.Header.Get(jetstream.StreamHeader) != b.log.name {
		s.malformed(m.Header.Get(HeaderOrigin), errHeaders)
		return
	}
	c, err := decodeMessage(m.Data)
	origin := m.Header.Get(HeaderOrigin)
	ctx, span := b.tracer.Start(b.opts.Propagator.Extract(context.Background(), headerCarrier(m.Header)),
		"nats receive", consumer, receiveSpan(m, origin))
	defer span.End()
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.log
	if s.closed || seq <= f.last {
		return // delivered already, read from the stream
	}
	if prev > f.last {
		serr := s.retry(ctx, func(ctx context.Context) error {
			st, _, err := b.stream(ctx)
			if err == nil {
				err = s.fill(ctx, st, prev)
			}
			return err
		})
		if seq <= f.last {
			return
		}
		if prev > f.last { // could not be read: lost to the members here
			b.tel.gaps.Add(1)
			b.logs[logGap].log(b.opts.Logger, "natsbroker: messages of a room's log could not be read: lost to this node's members",
				"room", s.room, "from", f.last+1, "to", prev, "error", serr)
		}
	}
	if err != nil {
		s.malformed(origin, err)
		f.last = seq
		return
	}
	s.deliverLogged(ctx, c, m.Header, seq, max(prev, f.last))
}

// retry runs read, which reads from the stream, until it succeeds, each
// attempt within appendAttempt, for up to Options.AppendTimeout: the
// connection may be coming back. It returns the last error.
func (s *sub) retry(ctx context.Context, read func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.b.opts.AppendTimeout)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, appendAttempt)
		err := read(actx)
		acancel()
		if err == nil || s.closing.Load() || !retryable(err) || sleep(ctx, appendRetry) != nil {
			return err
		}
	}
}

// errHeaders is what a republished message without the stream's headers
// is dropped for.
var errHeaders = errors.New("natsbroker: a logged message without the stream's sequence headers")

// malformed counts and logs a message that does not decode.
func (s *sub) malformed(origin string, err error) {
	s.b.tel.malformed.Add(1)
	s.b.logs[logMalformed].log(s.b.opts.Logger, "natsbroker: a message that does not decode, dropped",
		"room", s.room, "origin", origin, "error", err)
}

// watchReconnects starts the goroutine that, each time the connection
// comes back, brings every followed room up to the stream; Close stops it.
func (b *Broker) watchReconnects() {
	b.log.watch = b.nc.StatusChanged(nats.CONNECTED)
	b.log.watched.Add(1)
	go func() {
		defer b.log.watched.Done()
		for range b.log.watch {
			b.resync()
		}
	}()
}

// resync brings every followed room up to the stream, after a
// reconnection: what the stream republished meanwhile was lost.
func (b *Broker) resync() {
	b.forgetIfGone()
	b.mu.Lock()
	var subs []*sub
	for s := range b.subs {
		if s.log != nil {
			subs = append(subs, s)
		}
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		err := s.retry(context.Background(), func(ctx context.Context) error { return s.catchUp(ctx, false) })
		s.mu.Unlock()
		if err != nil {
			b.tel.gaps.Add(1)
			b.logs[logGap].log(b.opts.Logger, "natsbroker: a room's log could not be read after a reconnection",
				"room", s.room, "error", err)
		}
	}
}

// forgetIfGone checks, after a reconnection, that the stream is the one
// the Broker knows: a server that lost its store has none, or a new one.
func (b *Broker) forgetIfGone() {
	b.log.mu.Lock()
	st, epoch := b.log.stream, b.log.epoch
	b.log.mu.Unlock()
	if st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.AppendTimeout)
	defer cancel()
	info, err := st.Info(ctx)
	if errors.Is(err, jetstream.ErrStreamNotFound) || err == nil && epochOf(info) != epoch {
		b.forget(st)
	}
}

var _ runtime.Log = (*Broker)(nil)
