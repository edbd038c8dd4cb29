// shockwave.js: the browser client of Shockwave's event envelope (see
// docs/protocol.md). Two ES modules (this one and msgpack.js, which it
// imports from its own directory), no dependencies, no build step:
//
//   import { connect } from './shockwave.js';
//   const sw = connect('wss://example.com/ws');
//   sw.on('chat.msg', (msg, meta) => show(meta.room, msg));
//   await sw.join('lobby');
//   sw.emit('chat.send', { text: 'hi' }, { room: 'lobby' });
//   const rooms = await sw.request('rooms.list', { prefix: 'g' });
//
// It speaks JSON (subprotocol "shockwave.json", text messages) or, with
// { codec: 'msgpack' }, MessagePack (subprotocol "shockwave.msgpack",
// binary messages; msgpack.js, served next to this file) over the
// WebSocket of the host: the browser's, or one passed as
// options.WebSocket. Both codecs behave the same in every other way:
//
//   const sw = connect('wss://example.com/ws', { codec: 'msgpack' });
//
// Requests are promises, settled by the server's reply or error, a
// timeout, or the loss of the connection. The connection is re-opened after
// it drops, with exponential backoff and jitter, and the rooms joined with
// join() are joined again. Messages sent while the connection is down wait
// in a bounded queue and go out, in order, once it is back. In a browser,
// the client drops the connection as soon as the window says it is
// offline (what it sent would be lost, and the server may not notice for
// a while) and tries again as soon as it is online, without waiting for
// the backoff (options.network: null to leave this out).
//
// Resume. In a room that keeps history (runtime.WithRoomHistory) every
// event carries its position, the room's epoch "g" and the event's offset
// "o". The client keeps the last one it got in each room it joined, and
// sends it with the room's re-join after a reconnection. The server's
// reply says whether the room could serve it ({recovered: true}) or not
// (another epoch, history trimmed, a room that keeps none: false); the
// client reports it in a "resume" event as the reply arrives, and then
// come the events the room sent after the position (they reach on() as
// any event does, in order), or, when it did not recover, the room's
// latest events, as many as join()'s options.recent asked for. A page
// that gets recovered: false starts the room over: it drops what it shows
// of it and takes the reply's state and the events that follow, as on a
// first join. join()'s onReply gets every reply of the room's joins, the
// first and the re-joins', as it arrives, before the events that follow:
//
//   const onReply = (reply) => { if (!reply.recovered) reset('lobby', reply.state); };
//   await sw.join('lobby', { recent: 50, onReply });
//
// join() resolves with the reply ({recovered: false} on a first join).
// leave() forgets the room's position; close() forgets them all.
//
// Authentication. A page signed in with a cookie needs nothing more: the
// browser sends the cookie with every handshake. options.beforeConnect, if
// set, is called (and awaited) before every attempt, reconnections
// included, so that a page can fetch fresh credentials or check that it is
// still signed in; it returns {url, protocols} to override either for the
// attempt (a token in the query, or in a subprotocol), nothing to go on
// as is, null or false when there are no credentials, or it throws (the
// server is unreachable: the attempt counts as failed and is retried):
//
//   const sw = connect(url, { beforeConnect: async () => {
//     const token = await getToken();                    // null: signed out
//     return token ? { url: `${url}?token=${encodeURIComponent(token)}` } : null; // null: not signed in
//   } });
//   sw.on('unauthorized', () => showSignIn());
//
// The client stops for good, and emits "unauthorized" once, when the
// server closes the connection with 3000 (its credentials expired or were
// revoked; options.unauthorizedCodes adds codes of the application's) or
// when beforeConnect returns null or false. A browser does not tell a
// script why a handshake failed: a server that refuses it (401) looks like
// one that is down (a close 1006 before any opening), so the client tries
// again with backoff, and only beforeConnect can tell the two apart, by
// asking the server (a GET that answers 401, say) before each attempt.
//
// Tracing. The envelope's "t" carries a W3C traceparent, and a server that
// traces (runtime.WithTracerProvider) continues it: its "receive" span of
// the message is a child of the client's span, and what the handler sends
// in its event's context (codec.Router's PublishContext, EmitContext) has
// its "publish" and "deliver" spans in the same trace, and that trace's
// traceparent in its own "t". With { trace: true } the client starts a
// trace for every emit and request: it sends
// "00-<32 hex trace id>-<16 hex span id>-01" (from crypto.getRandomValues,
// never all zeros; flag 01, sampled, so that a server whose sampler follows
// the parent, as the OpenTelemetry SDK's default does, records it), unless
// the call passes its own options.traceparent, which always wins. Off by
// default, and then it costs nothing: no "t" is sent unless a call passes
// one. client.options.trace may be changed at any time (a page's debug
// switch, say).
//
//   const sw = connect(url, { trace: true });
//   sw.on('trace', ({ direction, event, traceId }) => show(direction, event, traceId));
//   sw.emit('chat.send', { text: 'hi' }, { room: 'lobby' });
//   sw.lastTrace.sent;                   // '4bf92f3577b34da6a3ce929d0e0e4736'
//
// Whether or not it starts traces, the client keeps the trace context it
// sends and receives:
//
//   meta.traceparent, meta.traceId   of every event handed to on(): the
//                                    envelope's "t" and its 32-hex trace
//                                    id (undefined without a valid "t")
//   client.lastTrace.sent            trace id of the last emit or request
//                                    sent or queued with a "t"
//   client.lastTrace.received        trace id of the last event or reply
//                                    received with a "t"
//   "trace" event                    fn({direction, event, traceId,
//                                    traceparent}) for each of those:
//                                    direction 'sent' or 'received', event
//                                    the envelope's name (a reply's is its
//                                    request's), traceId undefined when
//                                    the traceparent is not valid
//   err.traceId                      of a ShockwaveError rejecting a
//                                    request sent with a "t": that trace;
//                                    of an "error" event: its "t"'s
//
// A user who reports "my message did not arrive" can give the trace id the
// page showed; the server's traces for it say what became of the message
// (docs/observability.md). newTraceparent() and traceIdOf(traceparent) are
// exported for pages that make or read traceparents themselves; a call's
// { traceparent: null } sends none, whatever options.trace says.

import { encode as msgpackEncode, decode as msgpackDecode } from './msgpack.js';

/** The subprotocol of the JSON envelope. */
export const SUBPROTOCOL = 'shockwave.json';

/** The subprotocol of the MessagePack envelope. */
export const SUBPROTOCOL_MSGPACK = 'shockwave.msgpack';

// The codecs by option value: the subprotocol offered by default, and the
// envelope's encoding (a string goes out as a text message, a Uint8Array
// as a binary one).
const codecs = {
  json: { protocol: SUBPROTOCOL, encode: (m) => JSON.stringify(m) },
  msgpack: { protocol: SUBPROTOCOL_MSGPACK, encode: msgpackEncode },
};

const OPEN = 1; // WebSocket.OPEN, not read from the class: fakes may lack it

/**
 * An error from the server (the "x" of a reply or of an "error" event) or
 * from the client itself: code "timeout" (no reply in time), "disconnected"
 * (the connection dropped before the reply), "closed" (close() was called),
 * "queue_full" (too many messages waiting for the connection),
 * "unauthorized" (the client stopped for want of credentials). traceId, if
 * set, is the trace of the request it rejects, or of the "error" event.
 */
export class ShockwaveError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = 'ShockwaveError';
    this.code = code;
  }
}

const defaults = {
  codec: 'json', // 'json' (text messages) or 'msgpack' (binary messages)
  protocols: undefined, // offered in the handshake; defaults to the codec's subprotocol
  timeout: 10000, // ms a request waits for its reply
  reconnect: true, // re-open the connection after it drops
  minDelay: 500, // ms before the first reconnection attempt
  maxDelay: 30000, // ms, the cap of the backoff
  factor: 2, // the backoff's growth per failed attempt
  jitter: 0.5, // each delay is cut by a random fraction up to this
  maxQueue: 1000, // messages that may wait for the connection
  beforeConnect: undefined, // async ({attempt, reconnect}) => {url, protocols} | undefined | null: see above
  unauthorizedCodes: [3000], // close codes that stop the client with "unauthorized"
  WebSocket: undefined, // defaults to globalThis.WebSocket
  timers: undefined, // {setTimeout, clearTimeout}; defaults to the globals
  random: Math.random, // for the jitter
  trace: false, // start a trace (send a traceparent) for every emit and request
  network: undefined, // an EventTarget of 'offline' and 'online' events; defaults to the browser's window, null for none
  crypto: undefined, // {getRandomValues}; defaults to globalThis.crypto
};

// W3C Trace Context: version, trace id, parent (span) id, flags, and
// whatever a later version adds after a dash.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(?:-|$)/;
const ZEROS = /^0+$/;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Returns a new W3C traceparent, "00-<trace id>-<span id>-01": a sampled
 * root span of a new trace, its 16 and 8 random bytes from
 * crypto.getRandomValues (crypto defaults to globalThis.crypto), never all
 * zeros.
 */
export function newTraceparent(crypto = globalThis.crypto) {
  if (!crypto || typeof crypto.getRandomValues !== 'function') {
    throw new Error('shockwave: no crypto.getRandomValues here; pass options.crypto');
  }
  const b = new Uint8Array(24);
  // All zeros is invalid; a working generator gives it once in 2^64.
  for (let tries = 0; tries < 4; tries++) {
    crypto.getRandomValues(b);
    if (b.subarray(0, 16).some((x) => x !== 0) && b.subarray(16).some((x) => x !== 0)) {
      let s = '00-';
      for (let i = 0; i < 16; i++) s += HEX[b[i]];
      s += '-';
      for (let i = 16; i < 24; i++) s += HEX[b[i]];
      return s + '-01';
    }
  }
  throw new Error('shockwave: crypto.getRandomValues gave only zeros');
}

/**
 * Returns the trace id (32 lower-case hex digits) of a W3C traceparent, or
 * undefined if it is not a valid one (not a string, malformed, version ff,
 * or an all-zero id).
 */
export function traceIdOf(traceparent) {
  if (typeof traceparent !== 'string') return undefined;
  const m = TRACEPARENT.exec(traceparent);
  if (m === null || m[1] === 'ff' || ZEROS.test(m[2]) || ZEROS.test(m[3])) return undefined;
  return m[2];
}

/** Opens a client; see Client. */
export function connect(url, options) {
  return new Client(url, options);
}

/**
 * A connection to a Shockwave server that survives reconnections.
 *
 * Events: on(name, fn) calls fn(data, meta) for every event the server
 * sends, meta being {event, room, traceparent, traceId}. Besides the
 * server's events, six names are the client's own: "trace" (see Tracing
 * at the top of this file), "resume" (fn({room, recovered, replayed,
 * present, state, ...}), the reply of each re-join as it arrives, see
 * Resume there), "connect" (fn({reconnect})
 * after every successful opening), "disconnect" (fn({code, reason}) when
 * an open connection drops: once per outage, however many attempts fail
 * before the next opening), "unauthorized" (fn({code, reason}), once, when
 * the client stops because it has no valid credentials: code is the close
 * code, 3000, or null when beforeConnect returned null or false), and
 * "error", which receives a ShockwaveError for each "error" event of the
 * server and each failed re-join.
 */
export class Client {
  constructor(url, options = {}) {
    this.url = url;
    // An option given as undefined keeps its default, as one left out
    // does ({timeout: undefined} must not mean "no time at all").
    this.options = { ...defaults };
    for (const [k, v] of Object.entries(options)) {
      if (v !== undefined) this.options[k] = v;
    }
    const o = this.options;
    o.codec ??= 'json';
    if (!Object.hasOwn(codecs, o.codec)) {
      throw new Error(`shockwave: unknown codec ${JSON.stringify(o.codec)}; use 'json' or 'msgpack'`);
    }
    this.codec = codecs[o.codec];
    o.protocols ??= [this.codec.protocol];
    o.unauthorizedCodes = [...(o.unauthorizedCodes ?? [3000])]; // the client's own: not the defaults' array
    this.WebSocket = o.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket) {
      throw new Error('shockwave: no WebSocket here; pass options.WebSocket');
    }
    this.timers = o.timers || { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (t) => clearTimeout(t) };
    this.handlers = new Map(); // event name -> Set of functions
    this.pending = new Map(); // request id -> {resolve, reject, timer, sent}
    this.rooms = new Map(); // room -> {recent} of its join(): re-joined so after a reconnection
    this.positions = new Map(); // room -> {g, o} of the last event got in it, for rooms in this.rooms
    this.queue = []; // {payload, id, joins} waiting for the connection
    this.nextId = 1;
    this.attempt = 0; // failed attempts since the last opening
    this.opened = false; // has ever been open
    this.live = false; // the current connection has opened: its drop is an outage
    this.stopped = false; // close() was called
    this.retryTimer = null;
    this.ws = null;
    this.attempts = 0; // calls of beforeConnect: only the latest may dial
    this.offline = false; // the browser says it is offline: no attempt until it is back
    this.network = o.network === undefined ? browserNetwork() : o.network;
    if (this.network) {
      this._onOffline = () => this._goOffline();
      this._onOnline = () => this._goOnline();
      this.network.addEventListener('offline', this._onOffline);
      this.network.addEventListener('online', this._onOnline);
    }
    /** Trace ids of the last envelope sent and received with a "t". */
    this.lastTrace = { sent: undefined, received: undefined };
    this._open();
  }

  /** Whether the connection is open now. */
  get connected() {
    return this.ws !== null && this.ws.readyState === OPEN;
  }

  /** Calls fn(data, meta) for every event name; returns a function that stops it. */
  on(event, fn) {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  /** Stops calling fn for event. */
  off(event, fn) {
    const set = this.handlers.get(event);
    if (set) {
      set.delete(fn);
      if (set.size === 0) this.handlers.delete(event);
    }
  }

  /**
   * Sends an event without waiting for anything. options: {room,
   * traceparent} (traceparent: the envelope's "t"; null for none, when the
   * client traces). Returns false if it could not be sent or queued (the
   * queue is full, or the client is closed).
   */
  emit(event, data, options = {}) {
    const t = this._traceparent(options);
    if (!this._send(this._envelope(event, data, options, undefined, t), undefined, undefined)) return false;
    if (t !== undefined) this._traced('sent', event, t);
    return true;
  }

  /**
   * Sends a request and returns a promise of the server's reply (its "d",
   * or undefined), rejected with a ShockwaveError on an error reply, after
   * options.timeout ms (default options of the client), or if the
   * connection drops first. options: {room, traceparent, timeout}, as for
   * emit.
   */
  request(event, data, options = {}) {
    return this._request(event, data, options, undefined);
  }

  // _request is request(); onReply, if set, is called with the reply's
  // data as it arrives, before the events that follow it reach on().
  _request(event, data, options, onReply) {
    return new Promise((resolve, reject) => {
      if (this.stopped) {
        reject(new ShockwaveError('closed', 'client closed'));
        return;
      }
      const id = this.nextId++;
      const ms = options.timeout ?? this.options.timeout;
      const t = this._traceparent(options);
      const payload = this._envelope(event, data, options, id, t); // may throw: before anything is kept
      const timer = this.timers.setTimeout(() => {
        this._unqueue(id);
        this._settle(id, new ShockwaveError('timeout', `no reply to ${event} in ${ms} ms`));
      }, ms);
      const traceId = t === undefined ? undefined : traceIdOf(t);
      this.pending.set(id, { resolve, reject, timer, sent: false, event, traceId, onReply });
      const joins = event === 'room.join' ? options.room : undefined;
      if (!this._send(payload, id, joins)) {
        this._settle(id, new ShockwaveError('queue_full', 'too many messages waiting for the connection'));
      } else if (t !== undefined) {
        this._traced('sent', event, t, traceId);
      }
    });
  }

  /**
   * Joins a room (the built-in "room.join" request) and remembers it, to
   * join it again after every reconnection. options: {recent, onReply,
   * timeout, traceparent}; recent asks for the room's latest events when
   * the join does not recover (a first join included): up to that many
   * follow the reply, and the room's re-joins ask for as many. onReply is
   * called with the reply of this join and of each of the room's re-joins,
   * as it arrives, before the events that follow it (a promise's handlers
   * may run after them, where messages are dispatched in batches, as
   * Node's WebSocket does). The promise is that of
   * the request: the server's reply, {recovered, replayed, present,
   * state} ({recovered: false} for a first join); if the server refuses,
   * the room is forgotten. Called while the connection is down for a room
   * joined before, it is the room's re-join: it carries the room's
   * position and is reported by a "resume" event (once: a second such call
   * joins as when connected, lest the server replay the same events
   * twice).
   */
  join(room, options = {}) {
    const rejoin = this.opened && !this.connected && this.rooms.has(room) && !this.queue.some((m) => m.joins === room);
    this.rooms.set(room, { recent: options.recent, onReply: options.onReply });
    return this._join(room, options, rejoin).catch((err) => {
      if (err.code !== 'timeout' && err.code !== 'disconnected') this._forget(room);
      throw err;
    });
  }

  /** Leaves a room ("room.leave"), forgets its position and stops re-joining it. */
  leave(room, options = {}) {
    this._forget(room);
    return this.request('room.leave', undefined, { ...options, room });
  }

  /**
   * Returns the position of the last event the client got in a room it
   * joined, {epoch, offset} (the envelope's "g" and "o"), or undefined
   * when it has none: no event yet, or a room that keeps no history. In a
   * handler, it is that of the event being handled.
   */
  position(room) {
    const p = this.positions.get(room);
    return p === undefined ? undefined : { epoch: p.g, offset: p.o };
  }

  /**
   * Closes the connection for good: no reconnection; requests still
   * waiting are rejected with code "closed"; the rooms' positions are
   * forgotten.
   */
  close(code = 1000, reason = '') {
    this._stop(new ShockwaveError('closed', 'client closed'));
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      detach(ws);
      try {
        ws.close(code, reason);
      } catch {
        // already closed
      }
    }
  }

  // ---------------------------------------------------------------- inside

  _open() {
    this.retryTimer = null;
    const hook = this.options.beforeConnect;
    if (!hook) {
      this._dial(this.url, this.options.protocols);
      return;
    }
    // The queue holds what is sent meanwhile; close() meanwhile wins, and
    // going offline drops the attempt (attempts counts them).
    const attempt = ++this.attempts;
    const current = () => !this.stopped && attempt === this.attempts;
    new Promise((resolve) => resolve(hook({ attempt: this.attempt, reconnect: this.opened }))).then(
      (r) => {
        if (!current()) return;
        if (r === null || r === false) {
          this._unauthorized(null, 'no credentials');
          return;
        }
        const o = typeof r === 'object' ? r : {};
        this._dial(o.url ?? this.url, o.protocols ?? this.options.protocols);
      },
      () => {
        if (current()) this._retry();
      },
    );
  }

  _dial(url, protocols) {
    let ws;
    try {
      ws = new this.WebSocket(url, protocols);
    } catch (err) {
      if (!this.opened && this.attempt === 0 && !this.options.beforeConnect) throw err; // a bad URL: say so at once
      this._dispatch('error', new ShockwaveError('bad_url', String(err && err.message)));
      this._retry();
      return;
    }
    if (this.ws !== null) detach(this.ws); // not expected: one socket at a time
    this.ws = ws;
    if (this.codec === codecs.msgpack) ws.binaryType = 'arraybuffer'; // not Blob: decoded at once, in order
    ws.onopen = () => this._onOpen();
    ws.onmessage = (ev) => this._onMessage(ev);
    ws.onclose = (ev) => this._onClose(ev);
    ws.onerror = () => {}; // a close event follows
  }

  _onOpen() {
    const reconnect = this.opened;
    this.opened = this.live = true;
    this.attempt = 0;
    // Re-join the rooms first, unless a join waits in the queue already
    // (join() called while the connection was down: that one re-joins).
    const queued = new Set(this.queue.filter((m) => m.joins !== undefined).map((m) => m.joins));
    for (const room of this.rooms.keys()) {
      if (!queued.has(room)) {
        this._join(room, {}, reconnect).catch((err) => {
          if (err.code !== 'closed') this._dispatch('error', err);
        });
      }
    }
    // The re-joins were sent at once; now what waited, in order.
    const queue = this.queue;
    this.queue = [];
    for (const m of queue) this._write(m);
    this._dispatch('connect', { reconnect });
  }

  _onClose(ev) {
    if (this.ws === null) return;
    detach(this.ws);
    this.ws = null;
    const outage = this.live; // else a failed attempt, within an outage or before the first opening
    this.live = false;
    // Requests already sent will get no reply on this connection.
    for (const [id, p] of [...this.pending]) {
      if (p.sent) this._settle(id, new ShockwaveError('disconnected', 'connection lost before the reply'));
    }
    if (this.options.unauthorizedCodes.includes(ev.code)) {
      this._unauthorized(ev.code, ev.reason);
      return;
    }
    if (outage) this._dispatch('disconnect', { code: ev.code, reason: ev.reason });
    if (!this.stopped) this._retry();
  }

  _retry() {
    if (!this.options.reconnect || this.stopped) {
      this._stop(new ShockwaveError('closed', 'connection closed'));
      return;
    }
    if (this.offline) return; // _goOnline tries again
    this.retryTimer = this.timers.setTimeout(() => this._open(), this.delay(this.attempt++));
  }

  // _goOffline drops the connection when the browser goes offline: what
  // it sends would not arrive, and the server may not notice for a while.
  // No attempt is made until the browser is online again.
  _goOffline() {
    if (this.stopped || this.offline) return;
    this.offline = true;
    this.attempts++; // a beforeConnect under way dials nothing
    if (this.retryTimer !== null) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    const ws = this.ws;
    if (ws === null) return;
    try {
      ws.close(1000, 'offline');
    } catch {
      // already closed
    }
    this._onClose({ code: 1006, reason: 'offline' }); // at once: the close handshake may never end
  }

  // _goOnline tries at once, without waiting for the backoff, when the
  // browser is back online.
  _goOnline() {
    if (this.stopped || !this.offline) return;
    this.offline = false;
    if (this.ws !== null) return; // connecting, or connected
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    this.attempt = 0;
    this._open();
  }

  // _unauthorized stops the client for want of credentials: retrying
  // would only be refused again.
  _unauthorized(code, reason) {
    this._stop(new ShockwaveError('unauthorized', reason || 'not authorized'));
    this._dispatch('unauthorized', { code, reason });
  }

  // _join sends a room's join request: with the room's position, if the
  // client has one, when it is a re-join, and the latest events it wants
  // if it cannot recover. The reply's position is adopted, and a re-join's
  // reported by "resume", as the reply arrives: before the events that
  // follow it.
  _join(room, options, rejoin) {
    const p = rejoin ? this.positions.get(room) : undefined;
    const { recent, onReply } = this.rooms.get(room) ?? {};
    let data;
    if (p !== undefined) data = { g: p.g, o: p.o };
    if (Number.isSafeInteger(recent) && recent > 0) data = { ...data, n: recent };
    const { recent: _, onReply: __, ...call } = options;
    return this._request('room.join', data, { ...call, room }, (reply) => {
      this._adopt(room, reply);
      if (typeof onReply === 'function') {
        try {
          onReply(reply);
        } catch (err) {
          report(err);
        }
      }
      if (rejoin) this._dispatch('resume', { ...reply, room, recovered: reply?.recovered === true });
    });
  }

  // _adopt takes the room's position from a join's reply (the position
  // just before the events that follow it), unless the client has already
  // seen a later event of that epoch: so that it can resume even before
  // the room publishes again.
  _adopt(room, reply) {
    if (!reply || !isPosition(reply.g) || !this.rooms.has(room)) return;
    const o = reply.o ?? 0; // absent: the room has published nothing yet
    if (!isPosition(o)) return;
    const p = this.positions.get(room);
    if (p === undefined || p.g !== reply.g || p.o < o) this.positions.set(room, { g: reply.g, o });
  }

  // _forget forgets a room: no re-join, no position.
  _forget(room) {
    this.rooms.delete(room);
    this.positions.delete(room);
  }

  // _stop ends the client: no more attempts, whatever waits fails with
  // err, and the positions, of no use any more, are forgotten.
  _stop(err) {
    this.stopped = true;
    this.positions.clear();
    if (this.network) {
      this.network.removeEventListener('offline', this._onOffline);
      this.network.removeEventListener('online', this._onOnline);
    }
    if (this.retryTimer !== null) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.queue = [];
    for (const id of [...this.pending.keys()]) this._settle(id, err);
  }

  /** The wait before reconnection attempt n (0 first), in ms. */
  delay(n) {
    const o = this.options;
    const d = Math.min(o.maxDelay, o.minDelay * Math.pow(o.factor, n));
    return d * (1 - o.jitter * o.random());
  }

  _onMessage(ev) {
    // Text messages are JSON in both codecs; binary ones are MessagePack,
    // and ignored by a JSON client.
    const binary = typeof ev.data !== 'string';
    if (binary && (this.codec === codecs.json || !(ev.data instanceof ArrayBuffer || ArrayBuffer.isView(ev.data)))) {
      return;
    }
    let m;
    try {
      m = binary ? msgpackDecode(ev.data) : JSON.parse(ev.data);
    } catch {
      const what = binary ? 'MessagePack' : 'JSON';
      this._dispatch('error', new ShockwaveError('bad_message', `the server sent a message that is not ${what}`));
      return;
    }
    if (m === null || typeof m !== 'object') return;
    if (m.e === undefined) {
      // A reply.
      if (m.i !== undefined) {
        if (m.t !== undefined) {
          const p = this.pending.get(m.i);
          if (p) this._traced('received', p.event, m.t);
        }
        this._settle(m.i, m.x ? serverError(m.x) : null, m.d);
      }
      return;
    }
    const traceId = m.t === undefined ? undefined : traceIdOf(m.t);
    if (m.t !== undefined) this._traced('received', m.e, m.t, traceId);
    if (m.e === 'error') {
      const err = serverError(m.x || {});
      if (traceId !== undefined) err.traceId = traceId;
      this._dispatch('error', err);
      return;
    }
    // The position first, so that a handler sees this event's.
    if (isPosition(m.g) && isPosition(m.o) && this.rooms.has(m.r)) this.positions.set(m.r, { g: m.g, o: m.o });
    this._dispatch(m.e, m.d, { event: m.e, room: m.r, traceparent: m.t, traceId });
  }

  // _traceparent returns the traceparent of a call: its own, a new one
  // when the client traces, or undefined (null: not this call).
  _traceparent(options) {
    if (options.traceparent !== undefined) return options.traceparent ?? undefined;
    if (!this.options.trace) return undefined;
    return newTraceparent(this.options.crypto || globalThis.crypto);
  }

  // _traced notes a traceparent sent or received, and tells the "trace"
  // handlers, if any.
  _traced(direction, event, traceparent, traceId = traceIdOf(traceparent)) {
    if (direction === 'sent') this.lastTrace.sent = traceId;
    else this.lastTrace.received = traceId;
    if (this.handlers.has('trace')) this._dispatch('trace', { direction, event, traceId, traceparent });
  }

  _dispatch(event, data, meta) {
    const set = this.handlers.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(data, meta);
      } catch (err) {
        report(err); // one failing handler stops neither the others nor the client
      }
    }
  }

  _settle(id, err, value) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.timers.clearTimeout(p.timer);
    if (!err && p.onReply) {
      try {
        p.onReply(value);
      } catch (e) {
        err = e;
      }
    }
    if (err && p.traceId !== undefined && err.traceId === undefined) {
      // err may be shared by every request that fails at once (close()).
      const own = new ShockwaveError(err.code, err.message);
      own.traceId = p.traceId;
      err = own;
    }
    if (err) p.reject(err);
    else p.resolve(value);
  }

  _send(payload, id, joins) {
    if (this.stopped) return false;
    const m = { payload, id, joins };
    if (this.connected) {
      this._write(m);
      return true;
    }
    if (this.queue.length >= this.options.maxQueue) return false;
    this.queue.push(m);
    return true;
  }

  _write(m) {
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      if (!p) return; // timed out while queued
      p.sent = true;
    }
    this.ws.send(m.payload);
  }

  _unqueue(id) {
    const i = this.queue.findIndex((m) => m.id === id);
    if (i >= 0) this.queue.splice(i, 1);
  }

  // _envelope encodes an envelope in the client's codec; t is its
  // traceparent, or undefined.
  _envelope(event, data, options, id, t) {
    const m = { e: event };
    if (options.room !== undefined) m.r = options.room;
    if (id !== undefined) m.i = id;
    if (t !== undefined) m.t = t;
    if (data !== undefined) m.d = data;
    return this.codec.encode(m);
  }
}

// isPosition says whether v is an epoch or an offset: a non-negative
// integer, a Number (below 2^53, as the server keeps them) or a BigInt.
function isPosition(v) {
  return (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) || (typeof v === 'bigint' && v >= 0n);
}

// browserNetwork returns the global object when it tells of the network
// going offline and online (a browser's window), else null.
function browserNetwork() {
  const g = globalThis;
  return typeof g.addEventListener === 'function' && typeof g.removeEventListener === 'function' && 'onLine' in (g.navigator ?? {}) ? g : null;
}

// report reports an error thrown by the page's code, which the client
// goes on after.
function report(err) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
  else console.error(err);
}

function serverError(x) {
  return new ShockwaveError(String(x.code ?? 'error'), String(x.message ?? ''));
}

function detach(ws) {
  ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
}
