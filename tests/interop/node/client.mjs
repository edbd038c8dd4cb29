// Interop checks of a WebSocket echo server with Node's `ws` client.
//
// Usage: node client.mjs [--subprotocol NAME] [--no-16mib] [--deflate] ws://host:port/path
//
// The server under test must echo every text and binary message back as it
// came (same type, same bytes) and accept messages of 16 MiB (1 MiB with
// --no-16mib). With --subprotocol the client offers an unknown subprotocol
// and NAME, and expects the server to pick NAME; without it, it offers none.
// With --deflate the client offers permessage-deflate (ws's default offer),
// expects the server to accept it, and compresses every message.
//
// Prints one JSON line per check: {"check", "ok", "ms", and "detail" or
// "error"}, then a summary line {"summary": true, "passed", "failed"}. Exits
// 0 when every check passed, 1 when one failed, 2 on bad usage.

import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';

const MiB = 1 << 20;
const checkTimeoutMs = 20000; // bounds every single wait

function usage(msg) {
  process.stderr.write(`${msg}\nusage: node client.mjs [--subprotocol NAME] [--no-16mib] [--deflate] ws://host:port/path\n`);
  process.exit(2);
}

let url = '';
let subprotocol = '';
let big = true;
let deflate = false;
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--subprotocol') {
    subprotocol = process.argv[++i] ?? usage('--subprotocol needs a value');
  } else if (a === '--no-16mib') {
    big = false;
  } else if (a === '--deflate') {
    deflate = true;
  } else if (a.startsWith('-')) {
    usage(`unknown flag ${a}`);
  } else if (url === '') {
    url = a;
  } else {
    usage('one URL only');
  }
}
if (!/^wss?:\/\//.test(url)) usage('a ws:// URL is required');

// Queue buffers events of one kind (messages, pongs) and hands them to
// next() in arrival order; fail() makes pending and later waits reject.
class Queue {
  constructor(name) {
    this.name = name;
    this.items = [];
    this.waiters = [];
    this.err = null;
  }

  push(v) {
    const w = this.waiters.shift();
    if (w) w.resolve(v);
    else this.items.push(v);
  }

  fail(err) {
    if (this.err === null) this.err = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  next(ms = checkTimeoutMs) {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    if (this.err !== null) return Promise.reject(this.err);
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (v) => { clearTimeout(t); resolve(v); },
        reject: (e) => { clearTimeout(t); reject(e); },
      };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no ${this.name} within ${ms} ms`));
      }, ms);
      this.waiters.push(w);
    });
  }
}

function withTimeout(p, what, ms = checkTimeoutMs) {
  let t;
  return Promise.race([
    p,
    new Promise((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(t));
}

// connect opens a connection and wires its events to queues.
function connect() {
  const protocols = subprotocol ? ['shockwave.unknown', subprotocol] : [];
  const ws = new WebSocket(url, protocols, {
    perMessageDeflate: deflate ? { threshold: 0 } : false,
    maxPayload: 64 * MiB,
    handshakeTimeout: checkTimeoutMs,
  });
  const conn = {
    ws,
    msgs: new Queue('message'),
    pongs: new Queue('pong'),
    closeInfo: null,
  };
  conn.closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      conn.closeInfo = { code, reason: reason.toString('utf8') };
      const err = new Error(`connection closed: code ${code} reason ${JSON.stringify(conn.closeInfo.reason)}`);
      conn.msgs.fail(err);
      conn.pongs.fail(err);
      resolve(conn.closeInfo);
    });
  });
  ws.on('message', (data, isBinary) => conn.msgs.push({ data, isBinary }));
  ws.on('pong', (data) => conn.pongs.push(data));
  ws.on('error', (err) => {
    conn.msgs.fail(err);
    conn.pongs.fail(err);
  });
  conn.opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`closed before open, code ${code}`)));
  });
  return conn;
}

function send(ws, data, opts = {}) {
  return new Promise((resolve, reject) => {
    ws.send(data, opts, (err) => (err ? reject(err) : resolve()));
  });
}

function describe(buf) {
  return `${buf.length} bytes`;
}

// expectEcho waits for the next message and compares it with want.
async function expectEcho(conn, want, isBinary) {
  const m = await conn.msgs.next();
  if (m.isBinary !== isBinary) {
    throw new Error(`got a ${m.isBinary ? 'binary' : 'text'} message, want ${isBinary ? 'binary' : 'text'}`);
  }
  if (!m.data.equals(want)) {
    let i = 0;
    while (i < Math.min(m.data.length, want.length) && m.data[i] === want[i]) i++;
    throw new Error(`echo differs: got ${describe(m.data)}, want ${describe(want)}, first difference at byte ${i}`);
  }
  return m;
}

function asciiText(n) {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = 0x61 + (i % 26); // a..z
  return b.toString('latin1');
}

const results = [];
let current = null; // the connection under test

async function check(name, fn) {
  const start = process.hrtime.bigint();
  let line;
  try {
    const detail = await fn();
    line = { check: name, ok: true, ms: msSince(start) };
    if (detail !== undefined) line.detail = detail;
  } catch (err) {
    line = { check: name, ok: false, ms: msSince(start), error: String(err && err.message ? err.message : err) };
  }
  results.push(line);
  if (!line.ok && current !== null) current.msgs.items.length = 0; // stale echoes would shift later checks
  process.stdout.write(JSON.stringify(line) + '\n');
  return line.ok;
}

function msSince(start) {
  return Math.round(Number(process.hrtime.bigint() - start) / 1e4) / 100;
}

async function main() {
  const conn = connect();
  current = conn;
  const ws = conn.ws;

  const open = await check('open', async () => {
    await withTimeout(conn.opened, 'opening handshake');
    return { protocol: ws.protocol, extensions: ws.extensions };
  });
  if (!open) return;

  await check('extensions', async () => {
    const want = deflate ? 'permessage-deflate' : '';
    if (!ws.extensions.startsWith(want) || (!deflate && ws.extensions !== '')) {
      throw new Error(`negotiated ${JSON.stringify(ws.extensions)}, want ${JSON.stringify(want)}`);
    }
    return { extensions: ws.extensions };
  });

  await check('subprotocol', async () => {
    if (ws.protocol !== subprotocol) {
      throw new Error(`negotiated ${JSON.stringify(ws.protocol)}, want ${JSON.stringify(subprotocol)}`);
    }
    return { offered: subprotocol ? ['shockwave.unknown', subprotocol] : [], protocol: ws.protocol };
  });

  const sizes = [0, 1, 125, 126, 65535, 65536, MiB];
  if (big) sizes.push(16 * MiB);
  for (const n of sizes) {
    await check(`echo text ${n}`, async () => {
      const s = asciiText(n);
      await send(ws, s);
      await expectEcho(conn, Buffer.from(s, 'latin1'), false);
    });
    await check(`echo binary ${n}`, async () => {
      const b = randomBytes(n);
      await send(ws, b);
      await expectEcho(conn, b, true);
    });
  }

  await check('echo text utf8', async () => {
    const s = 'héllo wörld — 世界 日本語 한국어 🎉🚀 👨‍👩‍👧‍👦 ∑∞ \u{10FFFF}';
    await send(ws, s);
    const m = await expectEcho(conn, Buffer.from(s, 'utf8'), false);
    if (m.data.toString('utf8') !== s) throw new Error('decoded echo differs');
    return { chars: [...s].length, bytes: m.data.length };
  });

  await check('echo text utf8 large', async () => {
    // Multi-byte characters across the server's read buffer boundaries.
    const s = '世界🎉é'.repeat(20000);
    await send(ws, s);
    const m = await expectEcho(conn, Buffer.from(s, 'utf8'), false);
    return { bytes: m.data.length };
  });

  await check('echo text fragmented, emoji split across frames', async () => {
    const whole = Buffer.from('ab🎉cd', 'utf8'); // the emoji is bytes 2..5
    await send(ws, whole.subarray(0, 4), { binary: false, fin: false });
    await send(ws, whole.subarray(4), { binary: false, fin: true });
    await expectEcho(conn, whole, false);
  });

  await check('echo binary fragmented', async () => {
    const whole = randomBytes(3000);
    await send(ws, whole.subarray(0, 1000), { binary: true, fin: false });
    await send(ws, whole.subarray(1000, 2000), { binary: true, fin: false });
    await send(ws, whole.subarray(2000), { binary: true, fin: true });
    await expectEcho(conn, whole, true);
  });

  await check('sequence in order', async () => {
    const count = 2000;
    const sent = [];
    for (let i = 0; i < count; i++) {
      const binary = i % 3 === 0;
      const data = binary ? Buffer.from(`bin-${i}`) : `text-${i}`;
      sent.push(send(ws, data));
    }
    await Promise.all(sent);
    for (let i = 0; i < count; i++) {
      const binary = i % 3 === 0;
      await expectEcho(conn, Buffer.from(binary ? `bin-${i}` : `text-${i}`), binary);
    }
    return { messages: count };
  });

  await check('ping with payload', async () => {
    const payloads = [Buffer.alloc(0), Buffer.from('ping from node'), randomBytes(125)];
    for (const p of payloads) {
      ws.ping(p);
      const got = await conn.pongs.next();
      if (!got.equals(p)) throw new Error(`pong payload ${got.toString('hex')}, want ${p.toString('hex')}`);
    }
    return { pings: payloads.length };
  });

  await check('ping between messages', async () => {
    // A ping sent while messages flow is answered, and the data is intact.
    const a = randomBytes(200000);
    await send(ws, a);
    ws.ping(Buffer.from('mid'));
    await send(ws, 'after ping');
    await expectEcho(conn, a, true);
    await expectEcho(conn, Buffer.from('after ping'), false);
    const got = await conn.pongs.next();
    if (got.toString() !== 'mid') throw new Error(`pong payload ${JSON.stringify(got.toString())}, want "mid"`);
  });

  await check('close 4000 echoed', async () => {
    ws.close(4000, 'bye from node');
    const info = await withTimeout(conn.closed, 'closing handshake');
    if (info.code !== 4000) throw new Error(`close event code ${info.code} (reason ${JSON.stringify(info.reason)}), want 4000`);
    return info;
  });
}

const overall = setTimeout(() => {
  process.stdout.write(JSON.stringify({ check: 'overall', ok: false, error: 'client took longer than 120 s' }) + '\n');
  process.exit(1);
}, 120000);

try {
  await main();
} catch (err) {
  results.push({ check: 'client', ok: false });
  process.stdout.write(JSON.stringify({ check: 'client', ok: false, error: String(err && err.stack ? err.stack : err) }) + '\n');
}
clearTimeout(overall);
const failed = results.filter((r) => !r.ok).length;
process.stdout.write(JSON.stringify({ summary: true, passed: results.length - failed, failed }) + '\n');
process.exit(failed === 0 ? 0 : 1);
