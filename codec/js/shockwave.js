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
// in a bounded queue and go out, in order, once it is back.
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
//     return token && { url: `${url}?token=${encodeURIComponent(token)}` };
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
 * "unauthorized" (the client stopped for want of credentials).
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
};

/** Opens a client; see Client. */
export function connect(url, options) {
  return new Client(url, options);
}

/**
 * A connection to a Shockwave server that survives reconnections.
 *
 * Events: on(name, fn) calls fn(data, meta) for every event the server
 * sends, meta being {event, room, traceparent}. Besides the server's
 * events, four names are the client's own: "connect" (fn({reconnect})
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
    this.options = { ...defaults, ...options };
    const o = this.options;
    o.codec ??= 'json';
    if (!Object.hasOwn(codecs, o.codec)) {
      throw new Error(`shockwave: unknown codec ${JSON.stringify(o.codec)}; use 'json' or 'msgpack'`);
    }
    this.codec = codecs[o.codec];
    o.protocols ??= [this.codec.protocol];
    o.unauthorizedCodes ??= [3000];
    this.WebSocket = o.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket) {
      throw new Error('shockwave: no WebSocket here; pass options.WebSocket');
    }
    this.timers = o.timers || { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (t) => clearTimeout(t) };
    this.handlers = new Map(); // event name -> Set of functions
    this.pending = new Map(); // request id -> {resolve, reject, timer, sent}
    this.rooms = new Set(); // joined with join(), re-joined after a reconnection
    this.queue = []; // {payload, id, joins} waiting for the connection
    this.nextId = 1;
    this.attempt = 0; // failed attempts since the last opening
    this.opened = false; // has ever been open
    this.live = false; // the current connection has opened: its drop is an outage
    this.stopped = false; // close() was called
    this.retryTimer = null;
    this.ws = null;
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
   * traceparent}. Returns false if it could not be sent or queued (the
   * queue is full, or the client is closed).
   */
  emit(event, data, options = {}) {
    return this._send(this._envelope(event, data, options, undefined), undefined, undefined);
  }

  /**
   * Sends a request and returns a promise of the server's reply (its "d",
   * or undefined), rejected with a ShockwaveError on an error reply, after
   * options.timeout ms (default options of the client), or if the
   * connection drops first. options: {room, traceparent, timeout}.
   */
  request(event, data, options = {}) {
    return new Promise((resolve, reject) => {
      if (this.stopped) {
        reject(new ShockwaveError('closed', 'client closed'));
        return;
      }
      const id = this.nextId++;
      const ms = options.timeout ?? this.options.timeout;
      const timer = this.timers.setTimeout(() => {
        this._unqueue(id);
        this._settle(id, new ShockwaveError('timeout', `no reply to ${event} in ${ms} ms`));
      }, ms);
      this.pending.set(id, { resolve, reject, timer, sent: false });
      const joins = event === 'room.join' ? options.room : undefined;
      if (!this._send(this._envelope(event, data, options, id), id, joins)) {
        this._settle(id, new ShockwaveError('queue_full', 'too many messages waiting for the connection'));
      }
    });
  }

  /**
   * Joins a room (the built-in "room.join" request) and remembers it, to
   * join it again after every reconnection. The promise is that of the
   * request; if the server refuses, the room is forgotten.
   */
  join(room, options = {}) {
    this.rooms.add(room);
    return this.request('room.join', undefined, { ...options, room }).catch((err) => {
      if (err.code !== 'timeout' && err.code !== 'disconnected') this.rooms.delete(room);
      throw err;
    });
  }

  /** Leaves a room ("room.leave") and stops re-joining it. */
  leave(room, options = {}) {
    this.rooms.delete(room);
    return this.request('room.leave', undefined, { ...options, room });
  }

  /**
   * Closes the connection for good: no reconnection; requests still
   * waiting are rejected with code "closed".
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
    // The queue holds what is sent meanwhile; close() meanwhile wins.
    new Promise((resolve) => resolve(hook({ attempt: this.attempt, reconnect: this.opened }))).then(
      (r) => {
        if (this.stopped) return;
        if (r === null || r === false) {
          this._unauthorized(null, 'no credentials');
          return;
        }
        const o = typeof r === 'object' ? r : {};
        this._dial(o.url ?? this.url, o.protocols ?? this.options.protocols);
      },
      () => {
        if (!this.stopped) this._retry();
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
    // Re-join the rooms first, unless a join waits in the queue already.
    const queued = new Set(this.queue.filter((m) => m.joins !== undefined).map((m) => m.joins));
    for (const room of this.rooms) {
      if (!queued.has(room)) {
        this.request('room.join', undefined, { room }).catch((err) => {
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
    this.retryTimer = this.timers.setTimeout(() => this._open(), this.delay(this.attempt++));
  }

  // _unauthorized stops the client for want of credentials: retrying
  // would only be refused again.
  _unauthorized(code, reason) {
    this._stop(new ShockwaveError('unauthorized', reason || 'not authorized'));
    this._dispatch('unauthorized', { code, reason });
  }

  // _stop ends the client: no more attempts, and whatever waits fails
  // with err.
  _stop(err) {
    this.stopped = true;
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
        this._settle(m.i, m.x ? serverError(m.x) : null, m.d);
      }
      return;
    }
    if (m.e === 'error') {
      this._dispatch('error', serverError(m.x || {}));
      return;
    }
    this._dispatch(m.e, m.d, { event: m.e, room: m.r, traceparent: m.t });
  }

  _dispatch(event, data, meta) {
    const set = this.handlers.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(data, meta);
      } catch (err) {
        // One failing handler stops neither the others nor the client.
        if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
        else console.error(err);
      }
    }
  }

  _settle(id, err, value) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.timers.clearTimeout(p.timer);
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

  // _envelope encodes an envelope in the client's codec.
  _envelope(event, data, options, id) {
    const m = { e: event };
    if (options.room !== undefined) m.r = options.room;
    if (id !== undefined) m.i = id;
    if (options.traceparent !== undefined) m.t = options.traceparent;
    if (data !== undefined) m.d = data;
    return this.codec.encode(m);
  }
}

function serverError(x) {
  return new ShockwaveError(String(x.code ?? 'error'), String(x.message ?? ''));
}

function detach(ws) {
  ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
}
