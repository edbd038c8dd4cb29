// Check of shockwave.js over permessage-deflate (RFC 7692), against a Go
// server that compresses (runtime.WithCompression, no context takeover,
// from 512 bytes). Run by deflate_test.go (TestDeflate), once per codec,
// which serves the handlers it expects:
//
//   echo (request)         replies with its payload
//   compression (request) replies {enabled} of the session's deflate
//   publish (event)        publishes "news" with its payload to the
//                          envelope's room
//   room.join/leave        the Router's built-ins
//
// The client needs nothing to speak deflate: the WebSocket does it. Three
// clients, on three WebSockets: Node's ws (tests/interop/node) offering
// deflate and compressing every message, as a browser does; Node's own
// WebSocket, which offers it too; and ws with deflate off. The checks: the
// first two agree on deflate and the third does not; a request and its
// reply of 7 to 9 KB take a fraction of that on ws's TCP connection, both ways,
// and come back whole; a like event published to a room holding all
// three reaches each whole, compressed (once, for all who take it) to
// those that agreed and plain to the other.
//
// Usage: node deflate.mjs ws://host:port/path /path/to/node_modules/ws [json|msgpack]
// Prints one line per check; exits 0 when all pass, 1 otherwise.

import { deepStrictEqual } from 'node:assert';
import { createRequire } from 'node:module';
import { encode } from './msgpack.js';
import { connect } from './shockwave.js';

const [url, wsPath, codec = 'json'] = process.argv.slice(2);
if (!url || !wsPath || !['json', 'msgpack'].includes(codec) || typeof WebSocket !== 'function') {
  console.error('usage: node [--experimental-websocket] deflate.mjs ws://host:port/path path/to/ws [json|msgpack] (needs a global WebSocket)');
  process.exit(2);
}
const WS = createRequire(import.meta.url)(wsPath);

const deadline = setTimeout(() => {
  console.error('FAIL: timed out');
  process.exit(1);
}, 30000);

function check(cond, what) {
  if (!cond) throw new Error(what);
  console.log(`ok: ${what}`);
}

// wsWith returns ws's WebSocket with the given perMessageDeflate option,
// for the client's options.WebSocket, and the TCP sockets of the
// connections it made, whose bytesRead and bytesWritten count what went
// on the wire.
function wsWith(perMessageDeflate) {
  const sockets = [];
  class Socket extends WS {
    constructor(url, protocols) {
      super(url, protocols, { perMessageDeflate });
      this.on('upgrade', (res) => sockets.push(res.socket));
    }
  }
  return { WebSocket: Socket, sockets };
}

// next resolves with the next call of event on client, within 10 s.
function next(client, event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} in 10 s`)), 10000);
    const stop = client.on(event, (data) => {
      stop();
      clearTimeout(timer);
      resolve(data);
    });
  });
}

// counter returns a function that returns the bytes read and written on
// socket since its last call.
function counter(socket) {
  let read = socket.bytesRead;
  let written = socket.bytesWritten;
  return () => {
    const d = { read: socket.bytesRead - read, written: socket.bytesWritten - written };
    read = socket.bytesRead;
    written = socket.bytesWritten;
    return d;
  };
}

// 7 to 9 KB of text and numbers, as compressible as a chat's messages.
const big = {
  rows: Array.from({ length: 120 }, (_, i) => ({ id: i, from: `user${i % 7}`, text: 'hello there, how is the weather today' })),
};
const size = codec === 'json' ? JSON.stringify(big).length : encode(big).length;

const deflating = wsWith({ threshold: 0 }); // compresses every message, as browsers do
const plain = wsWith(false);
const clients = {
  ws: connect(url, { codec, WebSocket: deflating.WebSocket, network: null, reconnect: false }),
  node: connect(url, { codec, network: null, reconnect: false }),
  plain: connect(url, { codec, WebSocket: plain.WebSocket, network: null, reconnect: false }),
};

try {
  for (const [name, c] of Object.entries(clients)) {
    const { enabled } = await c.request('compression');
    check(enabled === (name !== 'plain'), `${name}: deflate ${enabled ? 'agreed' : 'not agreed'}`);
  }

  // A request and its reply, compressed both ways on ws's connection.
  const wire = counter(deflating.sockets[0]);
  deepStrictEqual(await clients.ws.request('echo', big), big);
  const echo = wire();
  check(echo.written < size / 4 && echo.read < size / 4,
    `ws: echo of ${size} bytes, whole, with ${echo.written} bytes written and ${echo.read} read on the wire`);

  // A publish to all three: compressed to those that agreed, plain to the
  // other.
  for (const c of Object.values(clients)) await c.join('deflate');
  const wirePlain = counter(plain.sockets[0]);
  const got = Object.values(clients).map((c) => next(c, 'news'));
  clients.node.emit('publish', big, { room: 'deflate' });
  for (const [i, data] of (await Promise.all(got)).entries()) deepStrictEqual(data, big, Object.keys(clients)[i]);
  const news = wire();
  const newsPlain = wirePlain();
  check(news.read < size / 4 && newsPlain.read > size,
    `a publish of ${size} bytes reaches all three whole: ${news.read} bytes on ws's deflating connection, ${newsPlain.read} on the plain one`);
} catch (err) {
  console.error(`FAIL: ${err.stack || err}`);
  process.exitCode = 1;
} finally {
  for (const c of Object.values(clients)) c.close();
  clearTimeout(deadline);
}
