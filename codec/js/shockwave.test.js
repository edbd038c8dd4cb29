// Tests of shockwave.js with Node's test runner: node --test codec/js/
// A fake WebSocket and fake timers stand in for the browser's, so the tests
// are deterministic and need no network. The tests of the client's
// behaviour run once per codec (both(...)); the fake server speaks the
// client's codec.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Client,
  connect,
  newTraceparent,
  ShockwaveError,
  SUBPROTOCOL,
  SUBPROTOCOL_MSGPACK,
  traceIdOf,
} from './shockwave.js';
import { decode, encode } from './msgpack.js';

// both runs a test once per codec: fn(t, codec).
function both(name, fn) {
  for (const codec of ['json', 'msgpack']) test(`${name} [${codec}]`, (t) => fn(t, codec));
}

// FakeWS records what the client sends; the test plays the server, in
// MessagePack when the client asked for binary messages as ArrayBuffers
// (as a MessagePack client does), else in JSON.
class FakeWS {
  static sockets = [];

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.binaryType = 'blob'; // the browser's default
    this.sent = []; // decoded
    this.raw = []; // as sent
    this.closedWith = null;
    FakeWS.sockets.push(this);
  }

  get msgpack() {
    return this.binaryType === 'arraybuffer';
  }

  send(payload) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    const binary = payload instanceof Uint8Array;
    if (binary !== this.msgpack || (!binary && typeof payload !== 'string')) {
      throw new Error(`a ${this.msgpack ? 'MessagePack' : 'JSON'} client sent ${payload}`);
    }
    this.raw.push(payload);
    this.sent.push(binary ? decode(payload) : JSON.parse(payload));
  }

  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  // The server's side.
  accept() {
    this.readyState = 1;
    this.onopen?.({});
  }

  // push sends msg to the client: a string as a text message, anything
  // else encoded in the client's codec.
  push(msg) {
    let data = msg;
    if (typeof msg !== 'string') data = this.msgpack ? encode(msg).buffer : JSON.stringify(msg);
    this.onmessage?.({ data });
  }

  drop(code = 1006, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: false });
  }

  // take returns and forgets what the client sent.
  take() {
    const s = this.sent;
    this.sent = [];
    return s;
  }
}

// FakeTimers runs timeouts when the test advances the clock.
class FakeTimers {
  constructor() {
    this.now = 0;
    this.seq = 0;
    this.tasks = new Map();
    this.setTimeout = (fn, ms) => {
      const id = ++this.seq;
      this.tasks.set(id, { at: this.now + ms, fn, ms });
      return id;
    };
    this.clearTimeout = (id) => this.tasks.delete(id);
  }

  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let next = null;
      for (const [id, t] of this.tasks) {
        if (t.at <= end && (next === null || t.at < next[1].at)) next = [id, t];
      }
      if (next === null) break;
      this.tasks.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
    }
    this.now = end;
  }

  // delays lists the durations of the timeouts waiting.
  delays() {
    return [...this.tasks.values()].map((t) => t.ms);
  }
}

// setup returns a client on fakes, and the fakes.
function setup(options = {}) {
  FakeWS.sockets = [];
  const timers = new FakeTimers();
  const client = connect('ws://test/ws', { WebSocket: FakeWS, timers, random: () => 0, ...options });
  const ws = () => FakeWS.sockets.at(-1);
  return { client, timers, ws };
}

const flush = () => new Promise((r) => setImmediate(r));

// state reports how a promise has settled once pending callbacks have run:
// 'pending', {ok: value} or {err: error}.
async function state(p) {
  let r = 'pending';
  p.then(
    (v) => {
      r = { ok: v };
    },
    (e) => {
      r = { err: e };
    },
  );
  await flush();
  return r;
}

both('connects with the subprotocol of its codec and sends envelopes', (t, codec) => {
  const { client, ws } = setup({ codec });
  assert.equal(ws().url, 'ws://test/ws');
  assert.deepEqual(ws().protocols, [codec === 'json' ? SUBPROTOCOL : SUBPROTOCOL_MSGPACK]);
  assert.equal(ws().msgpack, codec === 'msgpack');
  assert.equal(client.connected, false);
  ws().accept();
  assert.equal(client.connected, true);
  assert.equal(client.emit('chat.send', { text: 'hi' }, { room: 'lobby', traceparent: '00-ab-cd-01' }), true);
  client.emit('ping');
  client.emit('nothing', null);
  assert.deepEqual(ws().take(), [
    { e: 'chat.send', r: 'lobby', t: '00-ab-cd-01', d: { text: 'hi' } },
    { e: 'ping' },
    { e: 'nothing', d: null },
  ]);
  client.close();
});

both('messages sent before the connection opens wait, in order', (t, codec) => {
  const { client, ws } = setup({ codec });
  client.emit('a', 1);
  client.emit('b', 2);
  assert.deepEqual(ws().sent, []);
  ws().accept();
  assert.deepEqual(ws().take(), [
    { e: 'a', d: 1 },
    { e: 'b', d: 2 },
  ]);
  client.close();
});

both('events reach their handlers with the envelope', (t, codec) => {
  const { client, ws } = setup({ codec });
  ws().accept();
  const got = [];
  const stop = client.on('chat.msg', (data, meta) => got.push(['one', data, meta]));
  client.on('chat.msg', (data) => got.push(['two', data]));
  ws().push({ e: 'chat.msg', r: 'lobby', t: 'tp', d: { text: 'hello' } });
  stop();
  ws().push({ e: 'chat.msg', d: 2 });
  ws().push({ e: 'other', d: 3 }); // no handler: ignored
  assert.deepEqual(got, [
    ['one', { text: 'hello' }, { event: 'chat.msg', room: 'lobby', traceparent: 'tp', traceId: undefined }],
    ['two', { text: 'hello' }],
    ['two', 2],
  ]);
  client.close();
});

both('a failing handler does not stop the others', (t, codec) => {
  const { client, ws } = setup({ codec });
  ws().accept();
  const reported = [];
  const restore = globalThis.reportError;
  globalThis.reportError = (err) => reported.push(err.message);
  t.after(() => {
    globalThis.reportError = restore;
  });
  let ran = false;
  client.on('x', () => {
    throw new Error('boom');
  });
  client.on('x', () => {
    ran = true;
  });
  ws().push({ e: 'x' });
  assert.equal(ran, true);
  assert.deepEqual(reported, ['boom']);
  client.close();
});

both('requests resolve with the reply and reject with the error', async (t, codec) => {
  const { client, ws } = setup({ codec });
  ws().accept();
  const list = client.request('rooms.list', { prefix: 'g' });
  const bad = client.request('rooms.make', { name: '' }, { room: 'x' });
  const empty = client.request('chat.send', { text: 'x' });
  const [a, b, c] = ws().take();
  assert.deepEqual(a, { e: 'rooms.list', i: 1, d: { prefix: 'g' } });
  assert.deepEqual(b, { e: 'rooms.make', r: 'x', i: 2, d: { name: '' } });
  assert.equal(c.i, 3);
  ws().push({ i: 2, x: { code: 'bad_request', message: 'no name' } });
  ws().push({ i: 1, d: ['games', 'general'] });
  ws().push({ i: 3 });
  assert.deepEqual(await list, ['games', 'general']);
  assert.equal(await empty, undefined);
  await assert.rejects(bad, (err) => {
    assert.ok(err instanceof ShockwaveError);
    assert.equal(err.code, 'bad_request');
    assert.equal(err.message, 'no name');
    return true;
  });
  client.close();
});

both('a request times out, and its late reply is ignored', async (t, codec) => {
  const { client, ws, timers } = setup({ codec, timeout: 1000 });
  ws().accept();
  const slow = client.request('slow');
  const custom = client.request('slower', null, { timeout: 5000 });
  timers.advance(999);
  assert.equal(await state(slow), 'pending');
  timers.advance(1);
  const s = await state(slow);
  assert.equal(s.err.code, 'timeout');
  ws().push({ i: 1, d: 'late' }); // nothing happens
  assert.equal(await state(custom), 'pending');
  ws().push({ i: 2, d: 'in time' });
  assert.equal(await custom, 'in time');
  assert.equal(timers.tasks.size, 0, 'timers left behind');
  client.close();
});

both('a request that times out in the queue is never sent', async (t, codec) => {
  const { client, ws, timers } = setup({ codec, timeout: 100 });
  const r = client.request('queued');
  timers.advance(100);
  assert.equal((await state(r)).err.code, 'timeout');
  ws().accept();
  assert.deepEqual(ws().sent, []);
  client.close();
});

both('the connection drops: sent requests fail, queued ones survive, it reconnects', async (t, codec) => {
  const { client, ws, timers } = setup({ codec });
  const events = [];
  client.on('connect', (e) => events.push(['connect', e]));
  client.on('disconnect', (e) => events.push(['disconnect', e]));
  const first = ws();
  first.accept();
  const inflight = client.request('a');
  first.drop(1012, 'restart');
  assert.equal((await state(inflight)).err.code, 'disconnected');
  assert.equal(client.connected, false);
  const later = client.request('b');
  assert.equal(client.emit('c'), true);
  assert.equal(FakeWS.sockets.length, 1, 'reconnected without waiting');
  timers.advance(500);
  assert.equal(FakeWS.sockets.length, 2);
  const second = ws();
  second.accept();
  assert.deepEqual(second.take(), [{ e: 'b', i: 2 }, { e: 'c' }]);
  second.push({ i: 2, d: 'ok' });
  assert.equal(await later, 'ok');
  assert.deepEqual(events, [
    ['connect', { reconnect: false }],
    ['disconnect', { code: 1012, reason: 'restart' }],
    ['connect', { reconnect: true }],
  ]);
  client.close();
});

both('reconnection backs off exponentially, capped, with jitter', (t, codec) => {
  let rnd = 0;
  const { client, ws, timers } = setup({ codec, minDelay: 100, maxDelay: 1000, factor: 2, jitter: 0.5, random: () => rnd });
  const delays = [];
  for (let i = 0; i < 6; i++) {
    ws().drop(); // every attempt fails
    [delays[i]] = timers.delays();
    timers.advance(delays[i]);
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
  // An opening resets the backoff.
  ws().accept();
  ws().drop();
  assert.deepEqual(timers.delays(), [100]);
  // Jitter takes up to half off.
  rnd = 1;
  assert.equal(client.delay(3), 400);
  rnd = 0.5;
  assert.equal(client.delay(3), 600);
  client.close();
  assert.deepEqual(timers.delays(), []);
});

both('joined rooms are joined again after a reconnection, before anything else', async (t, codec) => {
  const { client, ws, timers } = setup({ codec });
  ws().accept();
  const lobby = client.join('lobby');
  const games = client.join('games');
  assert.deepEqual(ws().take(), [
    { e: 'room.join', r: 'lobby', i: 1 },
    { e: 'room.join', r: 'games', i: 2 },
  ]);
  ws().push({ i: 1 });
  ws().push({ i: 2 });
  await Promise.all([lobby, games]);
  const leave = client.leave('games');
  ws().push({ i: 3 });
  await leave;
  ws().take();

  ws().drop();
  client.emit('chat.send', { text: 'after' }, { room: 'lobby' });
  const news = client.join('news'); // while down: sent once, not twice
  timers.advance(500);
  ws().accept();
  assert.deepEqual(ws().take(), [
    { e: 'room.join', r: 'lobby', i: 5 },
    { e: 'chat.send', r: 'lobby', d: { text: 'after' } },
    { e: 'room.join', r: 'news', i: 4 },
  ]);
  ws().push({ i: 4 });
  await news;
  assert.deepEqual([...client.rooms.keys()], ['lobby', 'news']);
  client.close();
});

both('a refused join is forgotten; a failed re-join is reported', async (t, codec) => {
  const { client, ws, timers } = setup({ codec });
  ws().accept();
  const errors = [];
  client.on('error', (err) => errors.push(err));
  const vip = client.join('vip');
  ws().push({ i: 1, x: { code: 'forbidden', message: 'members only' } });
  await assert.rejects(vip, { code: 'forbidden' });
  assert.deepEqual([...client.rooms], []);

  const lobby = client.join('lobby');
  ws().push({ i: 2 });
  await lobby;
  ws().drop();
  timers.advance(500);
  ws().accept();
  const [rejoin] = ws().take();
  assert.deepEqual(rejoin, { e: 'room.join', r: 'lobby', i: 3 });
  ws().push({ i: 3, x: { code: 'full', message: 'room full' } });
  await flush();
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'full');
  client.close();
});

both('server error events reach the error handlers', (t, codec) => {
  const { client, ws } = setup({ codec });
  ws().accept();
  const errors = [];
  client.on('error', (err) => errors.push([err.code, err.message]));
  ws().push({ e: 'error', x: { code: 'unknown_event', message: 'unknown event "x"' } });
  ws().push('not json');
  assert.deepEqual(errors, [
    ['unknown_event', 'unknown event "x"'],
    ['bad_message', 'the server sent a message that is not JSON'],
  ]);
  client.close();
});

both('close stops everything', async (t, codec) => {
  const { client, ws, timers } = setup({ codec });
  ws().accept();
  const p = client.request('x');
  client.close(4000, 'bye');
  assert.deepEqual(ws().closedWith, { code: 4000, reason: 'bye' });
  assert.equal((await state(p)).err.code, 'closed');
  assert.equal(client.emit('y'), false);
  assert.equal((await state(client.request('z'))).err.code, 'closed');
  timers.advance(60000);
  assert.equal(FakeWS.sockets.length, 1, 'reconnected after close');
  assert.equal(timers.tasks.size, 0);
});

both('close while waiting to reconnect cancels the attempt', (t, codec) => {
  const { client, ws, timers } = setup({ codec });
  ws().accept();
  ws().drop();
  assert.equal(timers.tasks.size, 1);
  client.close();
  assert.equal(timers.tasks.size, 0);
});

both('without reconnect, a drop ends the client', async (t, codec) => {
  const { client, ws, timers } = setup({ codec, reconnect: false });
  const queued = client.request('x');
  ws().drop();
  assert.equal((await state(queued)).err.code, 'closed');
  timers.advance(60000);
  assert.equal(FakeWS.sockets.length, 1);
  assert.equal(client.emit('y'), false);
});

both('the queue is bounded', async (t, codec) => {
  const { client } = setup({ codec, maxQueue: 2 });
  assert.equal(client.emit('a'), true);
  assert.equal(client.emit('b'), true);
  assert.equal(client.emit('c'), false);
  assert.equal((await state(client.request('d'))).err.code, 'queue_full');
  client.close();
});

both('stray replies and non-envelopes are ignored', (t, codec) => {
  const { client, ws } = setup({ codec });
  ws().accept();
  let n = 0;
  client.on('error', () => n++);
  ws().push({ i: 77, d: 'nobody asked' });
  ws().push(42);
  ws().push('42');
  ws().push([1, 2]);
  assert.equal(n, 0);
  client.close();
});

test('a JSON client ignores binary messages', () => {
  const { client, ws } = setup();
  ws().accept();
  let n = 0;
  client.on('error', () => n++);
  ws().onmessage({ data: new Uint8Array([1, 2]) });
  ws().push({ i: 77, d: 'nobody asked' });
  ws().push('42');
  assert.equal(n, 0);
  client.close();
});

test('a WebSocket is required', () => {
  const saved = globalThis.WebSocket;
  globalThis.WebSocket = undefined;
  try {
    assert.throws(() => new Client('ws://x'), /no WebSocket/);
  } finally {
    globalThis.WebSocket = saved;
  }
});

test('an option given as undefined keeps its default; each client has its own codes', () => {
  const a = new Client('ws://x', {
    WebSocket: FakeWS, timeout: undefined, minDelay: undefined, maxQueue: undefined,
    reconnect: undefined, random: undefined, unauthorizedCodes: undefined,
  });
  const d = new Client('ws://x', { WebSocket: FakeWS });
  for (const k of ['timeout', 'minDelay', 'maxQueue', 'reconnect', 'random']) {
    assert.equal(a.options[k], d.options[k], k);
  }
  a.options.unauthorizedCodes.push(4001);
  assert.deepEqual(d.options.unauthorizedCodes, [3000]);
  assert.deepEqual(new Client('ws://x', { WebSocket: FakeWS }).options.unauthorizedCodes, [3000]);
  for (const c of [a, d]) c.close();
});

// ------------------------------------------------------------ MessagePack

const hex = (b) => Buffer.from(b).toString('hex');

test('MessagePack: binary envelopes, as docs/protocol.md shows them', async () => {
  const { client, ws } = setup({ codec: 'msgpack' });
  assert.deepEqual(ws().protocols, ['shockwave.msgpack']);
  assert.equal(ws().binaryType, 'arraybuffer');
  ws().accept();
  client.emit('chat.send', { text: 'hi' }, { room: 'lobby' });
  assert.equal(
    hex(ws().raw[0]),
    '83' + 'a165a9636861742e73656e64' + 'a172a56c6f626279' + 'a16481a474657874a26869', // map of 3: e, r, d
  );
  const r = client.request('rooms.list', undefined, { traceparent: 'tp' });
  assert.equal(hex(ws().raw[1]), '83a165aa726f6f6d732e6c697374a16901a174a27470');
  client.close();
  await assert.rejects(r, { code: 'closed' });
});

test('MessagePack: payloads keep bytes, 64-bit integers and times, both ways', async () => {
  const { client, ws } = setup({ codec: 'msgpack' });
  ws().accept();
  const data = { bin: new Uint8Array([0, 255]), big: 2n ** 64n - 1n, neg: -(2 ** 40), when: new Date(1732600000123), f: 0.5 };
  const r = client.request('echo', data);
  const [sent] = ws().take();
  assert.deepEqual(sent, { e: 'echo', i: 1, d: { ...data, big: 2n ** 64n - 1n } });
  ws().push({ i: 1, d: sent.d });
  assert.deepEqual(await r, data);
  client.close();
});

test('MessagePack: text messages are still JSON; bad binary ones are reported', () => {
  const { client, ws } = setup({ codec: 'msgpack' });
  ws().accept();
  const got = [];
  client.on('news', (data, meta) => got.push([data, meta.room]));
  client.on('error', (err) => got.push([err.code, err.message]));
  ws().push('{"e":"news","r":"a","d":1}');
  ws().onmessage({ data: encode({ e: 'news', r: 'b', d: 2 }) }); // a view, not an ArrayBuffer
  ws().onmessage({ data: new Uint8Array([0x91, 0x01, 0x02]).buffer }); // trailing byte
  ws().onmessage({ data: new Uint8Array([0xa5, 0x61]).buffer }); // truncated
  ws().onmessage({ data: { size: 3, type: '' } }); // a Blob: binaryType was not honoured; ignored
  ws().push('not json');
  const bad = 'the server sent a message that is not MessagePack';
  assert.deepEqual(got, [
    [1, 'a'],
    [2, 'b'],
    ['bad_message', bad],
    ['bad_message', bad],
    ['bad_message', 'the server sent a message that is not JSON'],
  ]);
  client.close();
});

test('MessagePack: ids of any integer width settle requests', async () => {
  const { client, ws } = setup({ codec: 'msgpack' });
  ws().accept();
  const r = client.request('x');
  ws().onmessage({ data: new Uint8Array([0x82, 0xa1, 0x69, 0xcf, 0, 0, 0, 0, 0, 0, 0, 1, 0xa1, 0x64, 0x07]).buffer });
  assert.equal(await r, 7);
  client.close();
});

test('codec option: explicit protocols win, unknown codecs are refused', () => {
  let { client, ws } = setup({ codec: 'msgpack', protocols: ['v2', 'shockwave.msgpack'] });
  assert.deepEqual(ws().protocols, ['v2', 'shockwave.msgpack']);
  client.close();
  ({ client, ws } = setup({ codec: undefined }));
  assert.deepEqual(ws().protocols, ['shockwave.json']);
  assert.equal(ws().binaryType, 'blob');
  client.close();
  assert.throws(() => setup({ codec: 'cbor' }), /unknown codec "cbor"/);
  assert.throws(() => setup({ codec: 'toString' }), /unknown codec/);
});

test('an envelope that cannot be encoded fails the call, in both codecs', async () => {
  for (const codec of ['json', 'msgpack']) {
    const { client, ws } = setup({ codec });
    ws().accept();
    const cyclic = {};
    cyclic.self = cyclic;
    assert.throws(() => client.emit('x', cyclic));
    await assert.rejects(client.request('x', cyclic));
    assert.deepEqual(ws().sent, []);
    client.close();
  }
});

// ------------------------------------------------------------ outages and credentials

both('one disconnect per outage, however many attempts fail', (t, codec) => {
  const { client, ws, timers } = setup({ codec });
  const events = [];
  client.on('connect', (e) => events.push(['connect', e]));
  client.on('disconnect', (e) => events.push(['disconnect', e]));
  ws().drop(); // the server is down from the start: no disconnect
  timers.advance(timers.delays()[0]);
  ws().accept();
  ws().drop(1001, 'going away');
  for (let i = 0; i < 4; i++) {
    timers.advance(timers.delays()[0]);
    ws().drop(); // a refused or failed handshake: close 1006 before open
  }
  timers.advance(timers.delays()[0]);
  ws().accept();
  assert.deepEqual(events, [
    ['connect', { reconnect: false }],
    ['disconnect', { code: 1001, reason: 'going away' }],
    ['connect', { reconnect: true }],
  ]);
  client.close();
});

both('beforeConnect runs before every attempt, and may change the URL and protocols', async (t, codec) => {
  const calls = [];
  let token = 'one';
  const { client, ws, timers } = setup({
    codec,
    beforeConnect: async (info) => {
      calls.push(info);
      return { url: `ws://test/ws?token=${token}`, protocols: ['shockwave.json', `token.${token}`] };
    },
  });
  assert.equal(FakeWS.sockets.length, 0, 'dialled before beforeConnect settled');
  client.emit('early'); // waits in the queue meanwhile
  await flush();
  assert.equal(ws().url, 'ws://test/ws?token=one');
  assert.deepEqual(ws().protocols, ['shockwave.json', 'token.one']);
  ws().accept();
  assert.deepEqual(ws().take(), [{ e: 'early' }]);
  token = 'two';
  ws().drop();
  timers.advance(500);
  await flush();
  ws().drop(); // a failed attempt: asked again before the next one
  timers.advance(timers.delays()[0]);
  await flush();
  assert.equal(ws().url, 'ws://test/ws?token=two');
  assert.equal(FakeWS.sockets.length, 3);
  assert.deepEqual(calls, [
    { attempt: 0, reconnect: false },
    { attempt: 1, reconnect: true },
    { attempt: 2, reconnect: true },
  ]);
  client.close();
});

both('beforeConnect returning nothing keeps the URL; throwing retries with backoff', async (t, codec) => {
  let down = true;
  const { client, ws, timers } = setup({
    codec,
    beforeConnect: () => {
      if (down) throw new Error('fetch failed');
    },
  });
  await flush();
  assert.equal(FakeWS.sockets.length, 0);
  assert.deepEqual(timers.delays(), [500], 'a failed check is a failed attempt');
  down = false;
  timers.advance(500);
  await flush();
  assert.equal(ws().url, 'ws://test/ws');
  assert.deepEqual(ws().protocols, [codec === 'json' ? SUBPROTOCOL : SUBPROTOCOL_MSGPACK]);
  ws().accept();
  assert.equal(client.connected, true);
  client.close();
});

both('beforeConnect returning null stops the client with one unauthorized event', async (t, codec) => {
  let signedIn = true;
  const { client, ws, timers } = setup({ codec, beforeConnect: async () => (signedIn ? {} : null) });
  const events = [];
  for (const name of ['connect', 'disconnect', 'unauthorized']) client.on(name, (e) => events.push([name, e]));
  await flush();
  ws().accept();
  signedIn = false;
  ws().drop();
  timers.advance(500);
  const queued = state(client.request('x')); // settled once beforeConnect has answered
  await flush();
  assert.equal(FakeWS.sockets.length, 1, 'dialled without credentials');
  assert.deepEqual(events, [
    ['connect', { reconnect: false }],
    ['disconnect', { code: 1006, reason: '' }],
    ['unauthorized', { code: null, reason: 'no credentials' }],
  ]);
  assert.equal((await queued).err.code, 'unauthorized');
  assert.equal(client.emit('y'), false);
  timers.advance(60000);
  await flush();
  assert.equal(FakeWS.sockets.length, 1);
  assert.equal(timers.tasks.size, 0);
});

both('a close with 3000 stops the client with one unauthorized event, no disconnect', async (t, codec) => {
  const { client, ws, timers } = setup({ codec });
  const events = [];
  for (const name of ['disconnect', 'unauthorized']) client.on(name, (e) => events.push([name, e]));
  ws().accept();
  const sent = client.request('a');
  ws().drop(3000, 'credentials expired');
  assert.equal((await state(sent)).err.code, 'disconnected');
  assert.deepEqual(events, [['unauthorized', { code: 3000, reason: 'credentials expired' }]]);
  assert.equal((await state(client.request('b'))).err.code, 'closed');
  timers.advance(60000);
  assert.equal(FakeWS.sockets.length, 1, 'reconnected after 3000');
  assert.equal(timers.tasks.size, 0);
});

test('unauthorizedCodes adds application codes', () => {
  const { client, ws, timers } = setup({ unauthorizedCodes: [3000, 4003] });
  const got = [];
  client.on('unauthorized', (e) => got.push(e.code));
  ws().accept();
  ws().drop(4003, 'forbidden');
  assert.deepEqual(got, [4003]);
  assert.equal(timers.tasks.size, 0);
});

both('close while beforeConnect runs: no connection is made', async (t, codec) => {
  let release;
  const { client, timers } = setup({ codec, beforeConnect: () => new Promise((r) => (release = r)) });
  client.close();
  release({});
  await flush();
  assert.equal(FakeWS.sockets.length, 0);
  assert.equal(timers.tasks.size, 0);
});

// ------------------------------------------------------------ positions and resume

const EPOCH = 4503599627; // as docs/protocol.md shows it

// joined returns a client on fakes, open, in the rooms given, each join
// answered as a first join is; got logs its events and "resume"s, in
// order.
async function joined(codec, ...rooms) {
  const f = setup({ codec });
  f.ws().accept();
  const replies = rooms.map((room) => f.client.join(room));
  for (const m of f.ws().take()) f.ws().push({ i: m.i, d: { recovered: false } });
  for (const r of await Promise.all(replies)) assert.deepEqual(r, { recovered: false });
  f.got = [];
  f.client.on('news', (d, meta) => f.got.push([meta.room, d]));
  f.client.on('resume', (info) => f.got.push(['resume', info]));
  return f;
}

// news is a published event of room at offset o of epoch g.
const news = (room, o, g = EPOCH) => ({ e: 'news', r: room, g, o, d: `${room} ${o}` });

// reconnect drops the connection and opens the next one, and returns what
// the client sent on it.
function reconnect({ ws, timers }) {
  ws().drop();
  timers.advance(timers.delays()[0]);
  ws().accept();
  return ws().take();
}

both('the client keeps the position of the last event of each room it joined', async (t, codec) => {
  const { client, ws } = await joined(codec, 'lobby', 'plain');
  assert.equal(client.position('lobby'), undefined, 'no event yet');
  const seen = [];
  client.on('news', (d, meta) => seen.push(client.position(meta.room)));
  ws().push(news('lobby', 17));
  ws().push(news('lobby', 18));
  ws().push({ e: 'news', r: 'plain', d: 'no history' });
  ws().push(news('elsewhere', 3)); // a room it did not join
  ws().push({ e: 'news', r: 'lobby', g: 'x', o: 19 }); // not a position
  ws().push({ e: 'news', r: 'lobby', g: EPOCH, o: -1 });
  ws().push({ e: 'news', g: EPOCH, o: 20 }); // no room
  assert.deepEqual(seen[0], { epoch: EPOCH, offset: 17 }, 'a handler sees its event\'s position');
  assert.deepEqual(client.position('lobby'), { epoch: EPOCH, offset: 18 });
  assert.equal(client.position('plain'), undefined);
  assert.equal(client.position('elsewhere'), undefined);
  client.position('lobby').offset = 1; // a copy
  assert.deepEqual(client.position('lobby'), { epoch: EPOCH, offset: 18 });
  client.close();
});

both('a join\'s reply gives the room\'s position, unless a later event came first', async (t, codec) => {
  const f = setup({ codec });
  f.ws().accept();
  const a = f.client.join('lobby');
  const b = f.client.join('games');
  const [ja, jb] = f.ws().take();
  f.ws().push({ i: ja.i, d: { recovered: false, g: EPOCH, o: 9 } });
  f.ws().push(news('games', 5, 77)); // published after the join, before its reply
  f.ws().push({ i: jb.i, d: { recovered: false, g: 77, o: 4 } });
  await Promise.all([a, b]);
  assert.deepEqual(f.client.position('lobby'), { epoch: EPOCH, offset: 9 }, 'taken from the reply');
  assert.deepEqual(f.client.position('games'), { epoch: 77, offset: 5 }, 'the later event kept');
  const joins = reconnect(f);
  assert.deepEqual(joins.map((m) => m.d), [{ g: EPOCH, o: 9 }, { g: 77, o: 5 }], 'so it resumes before the room publishes again');
  f.client.close();
});

both('re-joins carry the last positions; each is reported as its reply arrives, before its replay', async (t, codec) => {
  const f = await joined(codec, 'lobby', 'games', 'plain');
  const { client, ws } = f;
  ws().push(news('lobby', 17));
  ws().push(news('games', 4, 77));
  ws().push({ e: 'news', r: 'plain', d: 'no history' });
  f.got.length = 0;
  const joins = reconnect(f);
  assert.deepEqual(joins, [
    { e: 'room.join', r: 'lobby', i: 4, d: { g: EPOCH, o: 17 } },
    { e: 'room.join', r: 'games', i: 5, d: { g: 77, o: 4 } },
    { e: 'room.join', r: 'plain', i: 6 },
  ]);
  // The server replies, then replays what each room published meanwhile.
  ws().push({ i: 4, d: { recovered: true, replayed: 2, g: EPOCH, o: 17 } });
  ws().push(news('lobby', 18));
  ws().push(news('lobby', 19));
  ws().push({ i: 5, d: { recovered: true, replayed: 1, g: 77, o: 4 } });
  ws().push(news('games', 5, 77));
  ws().push({ i: 6, d: { recovered: false } });
  ws().push(news('lobby', 20)); // live again
  await flush();
  assert.deepEqual(f.got, [
    ['resume', { room: 'lobby', recovered: true, replayed: 2, g: EPOCH, o: 17 }],
    ['lobby', 'lobby 18'],
    ['lobby', 'lobby 19'],
    ['resume', { room: 'games', recovered: true, replayed: 1, g: 77, o: 4 }],
    ['games', 'games 5'],
    ['resume', { room: 'plain', recovered: false }],
    ['lobby', 'lobby 20'],
  ]);
  assert.deepEqual(client.position('lobby'), { epoch: EPOCH, offset: 20 });
  assert.deepEqual(client.position('games'), { epoch: 77, offset: 5 });

  // The next re-join sends the newer position.
  assert.deepEqual(reconnect(f)[0], { e: 'room.join', r: 'lobby', i: 7, d: { g: EPOCH, o: 20 } });
  client.close();
});

both('a re-join that does not recover is reported; the new epoch takes over', async (t, codec) => {
  const f = await joined(codec, 'lobby');
  const { client, ws } = f;
  ws().push(news('lobby', 17));
  f.got.length = 0;
  const errors = [];
  client.on('error', (err) => errors.push(err));
  const [join] = reconnect(f);
  assert.deepEqual(join.d, { g: EPOCH, o: 17 });
  ws().push({ i: join.i, d: { recovered: false, g: EPOCH + 1 } }); // a new room: nothing published yet
  assert.deepEqual(client.position('lobby'), { epoch: EPOCH + 1, offset: 0 }, 'the reply\'s, at once');
  ws().push(news('lobby', 1, EPOCH + 1)); // published after the join
  await flush();
  assert.deepEqual(f.got, [
    ['resume', { room: 'lobby', recovered: false, g: EPOCH + 1 }],
    ['lobby', 'lobby 1'],
  ]);
  assert.deepEqual(client.position('lobby'), { epoch: EPOCH + 1, offset: 1 });
  // A reply without data is a server that knows no resume: not recovered.
  const [again] = reconnect(f);
  assert.deepEqual(again.d, { g: EPOCH + 1, o: 1 });
  ws().push({ i: again.i });
  await flush();
  assert.deepEqual(f.got.at(-1), ['resume', { room: 'lobby', recovered: false }]);
  // A refused re-join is an error, not a resume.
  const [refused] = reconnect(f);
  ws().push({ i: refused.i, x: { code: 'full', message: 'room full' } });
  await flush();
  assert.equal(f.got.length, 3);
  assert.deepEqual(errors.map((e) => e.code), ['full']);
  client.close();
});

both('join() while the connection is down is the re-join: one join, with the position', async (t, codec) => {
  const f = await joined(codec, 'lobby');
  const { client, ws, timers } = f;
  ws().push(news('lobby', 17));
  f.got.length = 0;
  ws().drop();
  const again = client.join('lobby');
  const twice = client.join('lobby'); // the re-join is queued: a plain join
  const fresh = client.join('news'); // never joined: a first join
  timers.advance(timers.delays()[0]);
  ws().accept();
  const [a, b, c, ...rest] = ws().take();
  assert.deepEqual(rest, []);
  assert.deepEqual(a, { e: 'room.join', r: 'lobby', i: 2, d: { g: EPOCH, o: 17 } });
  assert.deepEqual(b, { e: 'room.join', r: 'lobby', i: 3 });
  assert.deepEqual(c, { e: 'room.join', r: 'news', i: 4 });
  ws().push({ i: 2, d: { recovered: true } });
  ws().push(news('lobby', 18));
  ws().push({ i: 3, d: { recovered: false } });
  ws().push({ i: 4, d: { recovered: false } });
  assert.deepEqual(await again, { recovered: true });
  assert.deepEqual(await twice, { recovered: false });
  assert.deepEqual(await fresh, { recovered: false });
  assert.deepEqual(f.got, [
    ['resume', { room: 'lobby', recovered: true }],
    ['lobby', 'lobby 18'],
  ]);
  // Connected, join() of a room it is in sends no position: the server
  // would send again what is on its way.
  const live = client.join('lobby');
  assert.deepEqual(ws().take(), [{ e: 'room.join', r: 'lobby', i: 5 }]);
  ws().push({ i: 5, d: { recovered: false } });
  await live;
  assert.equal(f.got.length, 2, 'no resume for a join while connected');
  client.close();
});

both('leaving a room forgets its position, as does a refused join; close forgets all', async (t, codec) => {
  const f = await joined(codec, 'lobby', 'games', 'vip');
  const { client, ws } = f;
  for (const room of ['lobby', 'games', 'vip']) ws().push(news(room, 3));
  const leave = client.leave('games');
  ws().push({ i: 4 });
  await leave;
  ws().push(news('games', 4)); // on its way before the server left: no position again
  assert.equal(client.position('games'), undefined);
  assert.deepEqual(reconnect(f), [
    { e: 'room.join', r: 'lobby', i: 5, d: { g: EPOCH, o: 3 } },
    { e: 'room.join', r: 'vip', i: 6, d: { g: EPOCH, o: 3 } },
  ]);
  ws().push({ i: 5, d: { recovered: true } });
  ws().push({ i: 6, x: { code: 'forbidden', message: 'members only' } });
  await flush();
  // A join the server refuses forgets the room's position too.
  const vip = client.join('vip');
  ws().push({ i: 7, x: { code: 'forbidden', message: 'members only' } });
  await assert.rejects(vip, { code: 'forbidden' });
  assert.equal(client.position('vip'), undefined);
  assert.deepEqual([...client.rooms.keys()], ['lobby']);
  // Joined again after leaving: a first join, no position.
  const games = client.join('games');
  assert.deepEqual(ws().take().at(-1), { e: 'room.join', r: 'games', i: 8 });
  ws().push({ i: 8, d: { recovered: false } });
  await games;
  assert.notEqual(client.position('lobby'), undefined);
  client.close();
  assert.equal(client.position('lobby'), undefined);
  assert.equal(client.positions.size, 0);
});

both('recent: a join asks for the latest events, and so does each of its re-joins', async (t, codec) => {
  const f = setup({ codec });
  f.ws().accept();
  const j = f.client.join('lobby', { recent: 50, timeout: 1000 });
  const [m] = f.ws().take();
  assert.deepEqual(m, { e: 'room.join', r: 'lobby', i: 1, d: { n: 50 } });
  f.ws().push({ i: 1, d: { recovered: false, replayed: 2, g: EPOCH, o: 7 } });
  assert.deepEqual(await j, { recovered: false, replayed: 2, g: EPOCH, o: 7 });
  f.ws().push(news('lobby', 8));
  f.ws().push(news('lobby', 9));
  assert.deepEqual(reconnect(f), [{ e: 'room.join', r: 'lobby', i: 2, d: { g: EPOCH, o: 9, n: 50 } }]);
  for (const bad of [0, -1, 1.5, '3']) {
    f.client.join(`r${bad}`, { recent: bad }).catch(() => {}); // rejected by close()
    assert.equal(f.ws().take()[0].d, undefined, `recent ${bad} asks for nothing`);
  }
  f.client.close();
});

both('onReply: each reply of a room\'s joins, as it arrives, before the events that follow, with no task in between', async (t, codec) => {
  const f = setup({ codec });
  const { client, ws } = f;
  ws().accept();
  const log = [];
  client.on('news', (d) => log.push(d));
  client.on('resume', (r) => log.push(`resume ${r.recovered}`));
  const joined = client.join('lobby', { recent: 2, onReply: (r) => log.push(`reply ${r.recovered}`) });
  const [m] = ws().take();
  // The reply and the events it queued in one batch, as Node's WebSocket
  // delivers them: no microtask runs in between.
  ws().push({ i: m.i, d: { recovered: false, replayed: 2, g: EPOCH, o: 3 } });
  ws().push(news('lobby', 4));
  ws().push(news('lobby', 5));
  assert.deepEqual(log, ['reply false', 'lobby 4', 'lobby 5']);
  await joined;
  log.length = 0;
  const [again] = reconnect(f);
  assert.deepEqual(again.d, { g: EPOCH, o: 5, n: 2 });
  ws().push({ i: again.i, d: { recovered: true, replayed: 1, g: EPOCH, o: 5 } });
  ws().push(news('lobby', 6));
  assert.deepEqual(log, ['reply true', 'resume true', 'lobby 6']);
  // A throwing onReply stops neither the reply nor the client.
  const quiet = globalThis.reportError;
  globalThis.reportError = () => {};
  t.after(() => (globalThis.reportError = quiet));
  const bad = client.join('bad', { onReply: () => { throw new Error('page bug'); } });
  const [b] = ws().take();
  ws().push({ i: b.i, d: { recovered: false } });
  assert.deepEqual(await bad, { recovered: false });
  client.close();
});

both('offline: the connection drops at once, and comes back as soon as the browser is online', async (t, codec) => {
  const network = new EventTarget();
  const f = setup({ codec, network });
  const { client, ws, timers } = f;
  ws().accept();
  const events = [];
  client.on('disconnect', (e) => events.push(['disconnect', e]));
  client.on('connect', (e) => events.push(['connect', e]));
  const pending = client.request('slow', {});
  network.dispatchEvent(new Event('offline'));
  assert.deepEqual(ws().closedWith, { code: 1000, reason: 'offline' });
  await assert.rejects(pending, { code: 'disconnected' });
  assert.deepEqual(events, [['disconnect', { code: 1006, reason: 'offline' }]]);
  assert.deepEqual(timers.delays(), [], 'no attempt while offline');
  assert.equal(client.emit('queued', 1), true, 'sent once back');
  const sockets = FakeWS.sockets.length;
  network.dispatchEvent(new Event('online'));
  assert.equal(FakeWS.sockets.length, sockets + 1, 'an attempt at once');
  ws().accept();
  assert.deepEqual(ws().take(), [{ e: 'queued', d: 1 }]);
  assert.deepEqual(events.at(-1), ['connect', { reconnect: true }]);
  // Offline during the backoff: the timer goes; online tries at once.
  ws().drop();
  assert.equal(timers.delays().length, 1);
  network.dispatchEvent(new Event('offline'));
  assert.deepEqual(timers.delays(), []);
  network.dispatchEvent(new Event('online'));
  ws().accept();
  assert.equal(client.connected, true);
  // Closed: the client stops listening.
  client.close();
  network.dispatchEvent(new Event('offline'));
  network.dispatchEvent(new Event('online'));
  assert.equal(client.connected, false);
});

test('offline while beforeConnect is under way: that attempt dials nothing; online makes one', async () => {
  const network = new EventTarget();
  const tokens = [];
  const { client, ws } = setup({ network, beforeConnect: () => new Promise((r) => tokens.push(r)) });
  await flush();
  assert.equal(tokens.length, 1);
  network.dispatchEvent(new Event('offline'));
  network.dispatchEvent(new Event('online'));
  await flush();
  assert.equal(tokens.length, 2, 'a new attempt once online');
  tokens[0]();
  tokens[1]();
  await flush();
  assert.equal(FakeWS.sockets.length, 1, 'one socket: the dropped attempt dials nothing');
  const joined = client.join('lobby');
  ws().accept();
  assert.deepEqual(ws().take(), [{ e: 'room.join', r: 'lobby', i: 1 }]);
  ws().push({ i: 1, d: { recovered: false } });
  await joined;
  // Offline again while the next beforeConnect waits: online dials once.
  ws().drop();
  client.timers.advance(client.timers.delays()[0] ?? 0);
  await flush();
  network.dispatchEvent(new Event('offline'));
  tokens.at(-1)();
  await flush();
  assert.equal(FakeWS.sockets.length, 1, 'nothing dialed while offline');
  network.dispatchEvent(new Event('online'));
  await flush();
  tokens.at(-1)();
  await flush();
  assert.equal(FakeWS.sockets.length, 2);
  client.close();
});

test('MessagePack: an epoch beyond 2^53 goes back exact', async () => {
  const f = await joined('msgpack', 'lobby');
  const big = 2n ** 60n + 1n;
  f.ws().push({ e: 'news', r: 'lobby', g: big, o: 5 });
  assert.deepEqual(f.client.position('lobby'), { epoch: big, offset: 5 });
  const [join] = reconnect(f);
  assert.deepEqual(join.d, { g: big, o: 5 });
  f.client.close();
});

test('JSON and MessagePack re-joins carry the same bytes as docs/protocol.md', async () => {
  for (const [codec, want] of [
    ['json', '{"e":"room.join","r":"lobby","i":2,"d":{"g":4503599627,"o":17}}'],
    // map of 4: e, r, i, d: a map of 2, g (a uint64: over 2^32) and o
    ['msgpack', '84a165a9726f6f6d2e6a6f696ea172a56c6f626279a16902a16482a167cf' + (4503599627).toString(16).padStart(16, '0') + 'a16f11'],
  ]) {
    const f = await joined(codec, 'lobby');
    f.ws().push(news('lobby', 17));
    f.ws().raw = [];
    reconnect(f);
    const raw = f.ws().raw[0];
    assert.equal(codec === 'json' ? raw : hex(raw), want, codec);
    f.client.close();
  }
});

// ------------------------------------------------------------ tracing

const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;
const SERVER_TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const SERVER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

// traces collects the client's "trace" events.
function traces(client) {
  const got = [];
  client.on('trace', (tr) => got.push(tr));
  return got;
}

both('tracing is off by default: no "t", no trace events', async (t, codec) => {
  const { client, ws } = setup({ codec });
  ws().accept();
  const got = traces(client);
  client.emit('chat.send', { text: 'hi' }, { room: 'lobby' });
  const r = client.request('rooms.list');
  const sent = ws().take();
  assert.deepEqual(sent, [
    { e: 'chat.send', r: 'lobby', d: { text: 'hi' } },
    { e: 'rooms.list', i: 1 },
  ]);
  ws().push({ i: 1, d: [] });
  await r;
  assert.deepEqual(client.lastTrace, { sent: undefined, received: undefined });
  assert.deepEqual(got, []);
  client.close();
});

both('with trace: true, every emit and request starts a trace of its own', async (t, codec) => {
  const { client, ws } = setup({ codec, trace: true });
  ws().accept();
  const got = traces(client);
  client.emit('chat.send', { text: 'hi' }, { room: 'lobby' });
  const r = client.request('rooms.list');
  client.emit('chat.typing');
  const sent = ws().take();
  const ids = new Set();
  const spans = new Set();
  for (const m of sent) {
    const match = TP.exec(m.t);
    assert.ok(match, `${m.e}: traceparent ${m.t}`);
    ids.add(match[1]);
    spans.add(match[2]);
  }
  assert.equal(ids.size, 3, 'a trace id used twice');
  assert.equal(spans.size, 3, 'a span id used twice');
  assert.deepEqual(
    got,
    sent.map((m) => ({ direction: 'sent', event: m.e, traceId: m.t.slice(3, 35), traceparent: m.t })),
  );
  assert.equal(client.lastTrace.sent, sent[2].t.slice(3, 35));
  assert.equal(client.lastTrace.received, undefined);
  ws().push({ i: sent[1].i, d: [] });
  await r;
  client.close();
});

both('an explicit traceparent wins over the generated one', (t, codec) => {
  const { client, ws } = setup({ codec, trace: true });
  ws().accept();
  const got = traces(client);
  client.emit('chat.send', null, { traceparent: SERVER_TP });
  client.request('x', undefined, { traceparent: SERVER_TP }).catch(() => {});
  assert.deepEqual(
    ws().take().map((m) => m.t),
    [SERVER_TP, SERVER_TP],
  );
  assert.equal(client.lastTrace.sent, SERVER_TRACE);
  assert.deepEqual(got.at(-1), { direction: 'sent', event: 'x', traceId: SERVER_TRACE, traceparent: SERVER_TP });
  client.close();
});

both('options.trace may be switched on and off on a live client', (t, codec) => {
  const { client, ws } = setup({ codec });
  ws().accept();
  client.emit('a');
  client.options.trace = true;
  client.emit('b');
  client.options.trace = false;
  client.emit('c');
  const [a, b, c] = ws().take();
  assert.equal(a.t, undefined);
  assert.match(b.t, TP);
  assert.equal(c.t, undefined);
  assert.equal(client.lastTrace.sent, b.t.slice(3, 35));
  client.close();
});

both('a queued event keeps its traceparent, told when it is queued', (t, codec) => {
  const { client, ws } = setup({ codec, trace: true });
  const got = traces(client);
  client.emit('early', 1);
  assert.equal(got.length, 1);
  ws().accept();
  const [m] = ws().take();
  assert.equal(m.t, got[0].traceparent);
  // Neither a refused nor an unencodable call is told.
  const full = setup({ codec, trace: true, maxQueue: 0 });
  const none = traces(full.client);
  assert.equal(full.client.emit('x'), false);
  const cyclic = {};
  cyclic.self = cyclic;
  assert.throws(() => full.client.emit('y', cyclic));
  assert.deepEqual(none, []);
  assert.equal(full.client.lastTrace.sent, undefined);
  full.client.close();
  client.close();
});

both('received trace context: meta.traceId, lastTrace.received, trace events', async (t, codec) => {
  const { client, ws } = setup({ codec });
  ws().accept();
  const got = traces(client);
  const metas = [];
  client.on('chat.msg', (d, meta) => metas.push(meta));
  const errors = [];
  client.on('error', (err) => errors.push(err));
  ws().push({ e: 'chat.msg', r: 'lobby', t: SERVER_TP, d: 1 });
  ws().push({ e: 'chat.msg', r: 'lobby', d: 2 });
  ws().push({ e: 'chat.msg', t: '00-00000000000000000000000000000000-00f067aa0ba902b7-01', d: 3 });
  assert.deepEqual(metas, [
    { event: 'chat.msg', room: 'lobby', traceparent: SERVER_TP, traceId: SERVER_TRACE },
    { event: 'chat.msg', room: 'lobby', traceparent: undefined, traceId: undefined },
    { event: 'chat.msg', room: undefined, traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01', traceId: undefined },
  ]);
  assert.equal(client.lastTrace.received, undefined, 'the last "t" was not valid');
  ws().push({ e: 'error', t: SERVER_TP, x: { code: 'unknown_event', message: 'no' } });
  assert.equal(errors[0].code, 'unknown_event');
  assert.equal(errors[0].traceId, SERVER_TRACE);
  // A reply with a "t" is told under its request's name.
  const r = client.request('rooms.list');
  ws().push({ i: 1, t: SERVER_TP, d: [] });
  await r;
  assert.deepEqual(
    got.map((g) => [g.direction, g.event, g.traceId]),
    [
      ['received', 'chat.msg', SERVER_TRACE],
      ['received', 'chat.msg', undefined],
      ['received', 'error', SERVER_TRACE],
      ['received', 'rooms.list', SERVER_TRACE],
    ],
  );
  assert.equal(client.lastTrace.received, SERVER_TRACE);
  client.close();
});

both('a traced request that fails says its trace', async (t, codec) => {
  const { client, ws, timers } = setup({ codec, trace: true });
  ws().accept();
  const refused = client.request('chat.send');
  const slow = client.request('slow', undefined, { timeout: 100 });
  const a = client.request('a');
  const b = client.request('b');
  const untraced = client.request('c', undefined, { traceparent: null }); // this one not
  const [m1, m2, m3, m4, m5] = ws().take();
  assert.equal(Object.hasOwn(m5, 't'), false);
  ws().push({ i: m1.i, x: { code: 'not_joined', message: 'join first' } });
  await assert.rejects(refused, { code: 'not_joined', traceId: m1.t.slice(3, 35) });
  timers.advance(100);
  await assert.rejects(slow, { code: 'timeout', traceId: m2.t.slice(3, 35) });
  client.close(); // one error for all: each gets its own trace
  await assert.rejects(a, { code: 'closed', traceId: m3.t.slice(3, 35) });
  await assert.rejects(b, { code: 'closed', traceId: m4.t.slice(3, 35) });
  const err = await untraced.catch((e) => e);
  assert.equal(err.code, 'closed');
  assert.equal(err.traceId, undefined);
});

test('an untraced request that fails has no traceId', async () => {
  const { client, ws } = setup();
  ws().accept();
  const r = client.request('x');
  ws().push({ i: 1, x: { code: 'nope' } });
  const err = await r.catch((e) => e);
  assert.equal(err.code, 'nope');
  assert.equal(err.traceId, undefined);
  client.close();
});

test('newTraceparent: well formed, random, never all zeros', () => {
  const ids = new Set();
  const spans = new Set();
  for (let i = 0; i < 1000; i++) {
    const tp = newTraceparent();
    const m = TP.exec(tp);
    assert.ok(m, tp);
    ids.add(m[1]);
    spans.add(m[2]);
    assert.equal(traceIdOf(tp), m[1]);
  }
  assert.equal(ids.size, 1000);
  assert.equal(spans.size, 1000);

  // The bytes, in order, as hex; an all-zero id is drawn again.
  let calls = 0;
  const fake = {
    getRandomValues(b) {
      calls++;
      if (calls === 1) b.fill(0); // both ids zero
      else if (calls === 2) b.fill(0, 16).fill(7, 0, 16); // the span id zero
      else b.forEach((_, i) => (b[i] = i === 0 ? 0xab : i));
      return b;
    },
  };
  assert.equal(newTraceparent(fake), '00-ab0102030405060708090a0b0c0d0e0f-1011121314151617-01');
  assert.equal(calls, 3);
  const zeros = { getRandomValues: (b) => b.fill(0) };
  assert.throws(() => newTraceparent(zeros), /only zeros/);
  assert.throws(() => newTraceparent(null), /getRandomValues/);

  // The client's option.
  const { client, ws } = setup({ trace: true, crypto: { getRandomValues: (b) => b.fill(1) } });
  ws().accept();
  client.emit('x');
  assert.equal(ws().take()[0].t, '00-01010101010101010101010101010101-0101010101010101-01');
  client.close();
});

test('traceIdOf accepts W3C traceparents only', () => {
  assert.equal(traceIdOf(SERVER_TP), SERVER_TRACE);
  assert.equal(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00'), SERVER_TRACE); // not sampled
  assert.equal(traceIdOf('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more'), SERVER_TRACE); // a later version
  for (const bad of [
    undefined,
    null,
    42,
    '',
    'tp',
    '00-ab-cd-01',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x',
  ]) {
    assert.equal(traceIdOf(bad), undefined, String(bad));
  }
});
