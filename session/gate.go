package session

// The read gate: a session stops reading its client, and so stops calling
// its handler, while
//   - its mailbox is half full (in frames or bytes): a client that sends
//     faster than it reads its own replies is slowed, as a blocking server
//     slows it through TCP, instead of being closed as a slow consumer;
//   - or the client is over its MessageRate.
//
// The reader decides to stop between messages (shut); whoever makes the
// gate open again reopens it: a drainer that has written enough, the timer
// when the rate allows, Close. A paused session does not count as silent:
// it is not the client that stopped.
//
// The transport does the waiting (transport.resume): on the goroutine
// transport the reader waits on netConn.gate; on the event loop the
// session's read state is readPaused, and reopening starts a burst (the
// socket is edge-triggered: bytes already there would give no new event).

// gateShut reports whether the reader must stop before reading the next
// message, and counts why.
func (s *Session) gateShut() bool {
	if s.state.Load()&(stateClosing|stateClosed) != 0 {
		return false // the end is read whatever the backlog
	}
	if s.backlogged(2) {
		s.cfg.Counters.Paused.Add(1)
		return true
	}
	if s.overRate() {
		s.cfg.Counters.Throttled.Add(1)
		return true
	}
	return false
}

// gateOpen reports whether a paused reader may read again: the mailbox is
// down to a quarter (so that reading does not stop again at once), and
// the client within its rate.
func (s *Session) gateOpen() bool {
	return s.state.Load()&(stateClosing|stateClosed) != 0 || !s.backlogged(4) && !s.overRate()
}

// backlogged reports whether the mailbox holds a part (a half, a quarter)
// of what it may.
func (s *Session) backlogged(part int) bool {
	n := s.queueLen()
	return n > 0 && (n >= s.cfg.MailboxSize/part || s.queued.Load() >= s.cfg.MaxQueuedBytes/int64(part))
}

// overRate reports whether the client has sent more than MessageRate and
// MessageBurst allow: the cost of its messages runs more than a burst
// ahead of the clock.
func (s *Session) overRate() bool {
	return s.cfg.rateIv > 0 && s.tat.Load()-s.sched.Now() > s.cfg.rateTau
}

// charge counts a message against MessageRate (GCRA: tat is the time at
// which the client's messages so far are paid for). The reader alone
// writes tat.
func (s *Session) charge() {
	if iv := s.cfg.rateIv; iv > 0 {
		s.tat.Store(max(s.tat.Load(), s.sched.Now()) + iv)
	}
}

// pause marks the reader paused, after writing what it holds back. It
// reports false when the gate opened meanwhile, so that the reader reads
// on; then nobody else reopens it.
func (s *Session) pause() bool {
	s.drainOwn() // the cork: nobody else writes what a callback sent
	s.state.Or(stateReadPaused)
	// Checked after the flag is set: whoever opens the gate later sees the
	// flag, and whatever opened it before is seen here.
	if s.gateOpen() && s.state.And(^stateReadPaused)&stateReadPaused != 0 {
		return false
	}
	return true
}

// reopen lets a paused reader read again if the gate is open. Drainers,
// the timer and the closing paths call it.
func (s *Session) reopen() {
	if s.state.Load()&stateReadPaused == 0 || !s.gateOpen() {
		return
	}
	if s.state.And(^stateReadPaused)&stateReadPaused == 0 {
		return // another caller reopened it
	}
	// The client was not silent while we did not read it.
	now := s.sched.Now()
	s.lastRead.Store(now)
	if s.msgStart.Load() != 0 {
		s.msgStart.Store(now)
	}
	s.tr.resume(s)
}
