// End-to-end check of shockwave.js against a real server, on the host's
// WebSocket (Node 22+, or Node 20/21 with --experimental-websocket), in
// one codec. Run by codec/js_test.go (TestJSClient), once per codec, which
// serves the handlers it expects:
//
//   echo (request)     replies with its payload
//   subprotocol (req.) replies with the session's subprotocol
//   publish (event)    publishes "news" with its payload to the envelope's room
//   burst (request)    publishes "tick" {n} to the envelope's room, for n
//                      from its {from} to from+{n}-1, and replies after
//   kick (event)       closes the session with 1012
//   room.join/leave    the Router's built-ins
//
// and whose rooms keep history: 64 events, but "small" only 2.
//
// Usage: node e2e.mjs ws://host:port/path [json|msgpack]
// Prints one line per check; exits 0 when all pass, 1 otherwise.

import { connect } from './shockwave.js';

const url = process.argv[2];
const codec = process.argv[3] || 'json';
if (!url || !['json', 'msgpack'].includes(codec) || typeof WebSocket !== 'function') {
  console.error('usage: node [--experimental-websocket] e2e.mjs ws://host:port/path [json|msgpack] (needs a global WebSocket)');
  process.exit(2);
}

const deadline = setTimeout(() => {
  console.error('FAIL: timed out');
  process.exit(1);
}, 30000);

// next resolves with the next call of event on client.
function next(client, event) {
  return new Promise((resolve) => {
    const stop = client.on(event, (data, meta) => {
      stop();
      resolve({ data, meta });
    });
  });
}

function check(cond, what) {
  if (!cond) throw new Error(what);
  console.log(`ok: ${what}`);
}

// sw reconnects once gate has resolved: the checks of resume publish while
// it is away.
let gate = Promise.resolve();
const sw = connect(url, { codec, minDelay: 50, maxDelay: 200, timeout: 5000, beforeConnect: () => gate });
try {
  await next(sw, 'connect');
  check(sw.connected, `connected (${codec})`);
  const protocol = `shockwave.${codec}`;
  check(sw.ws.protocol === protocol, `the handshake chose ${protocol}`);
  check((await sw.request('subprotocol')) === protocol, `the server speaks ${protocol}`);

  const echoed = await sw.request('echo', { text: 'héllo', n: 3, list: [1, -2, 2.5, null, true], nested: { a: {} } });
  check(
    echoed.text === 'héllo' && echoed.n === 3 && JSON.stringify(echoed.list) === '[1,-2,2.5,null,true]' && echoed.nested.a !== undefined,
    'request gets its reply',
  );

  // A traced request: its envelope carries a generated traceparent in "t".
  sw.options.trace = true;
  const traced = await sw.request('echo', { n: 1 });
  sw.options.trace = false;
  check(traced.n === 1 && /^[0-9a-f]{32}$/.test(sw.lastTrace.sent), 'a traced request is served');

  if (codec === 'msgpack') {
    // What only MessagePack carries: bytes, 64-bit integers, times.
    const when = new Date(1732600000123);
    const big = 2n ** 63n + 5n;
    const got = await sw.request('echo', { bin: new Uint8Array([0, 1, 255]), big, neg: -(2 ** 40), when, f: 0.1 });
    check(got.bin instanceof Uint8Array && got.bin.join() === '0,1,255', 'bytes travel as bin');
    check(got.big === big && got.neg === -(2 ** 40), '64-bit integers come back exact');
    check(got.when instanceof Date && got.when.getTime() === when.getTime() && got.f === 0.1, 'times and floats come back');
  }

  const refused = await sw.request('nope').then(
    () => null,
    (err) => err,
  );
  check(refused && refused.code === 'unknown_event', 'unknown request is rejected with unknown_event');

  const errEvent = next(sw, 'error');
  sw.emit('nope');
  check((await errEvent).data.code === 'unknown_event', 'unknown event gets an error event');

  // A member of the other codec: a publish goes out in both.
  const otherCodec = codec === 'json' ? 'msgpack' : 'json';
  const other = connect(url, { codec: otherCodec, reconnect: false, timeout: 5000 });
  await other.join('lobby');
  await sw.join('lobby');
  let news = next(sw, 'news');
  const otherNews = next(other, 'news');
  sw.emit('publish', { text: 'first' }, { room: 'lobby' });
  let got = await news;
  check(got.data.text === 'first' && got.meta.room === 'lobby', 'room publish arrives');
  got = await otherNews;
  check(got.data.text === 'first' && got.meta.room === 'lobby', `and reaches the ${otherCodec} member`);
  other.close();

  // The server drops the session; the client comes back and re-joins.
  const dropped = next(sw, 'disconnect');
  const back = next(sw, 'connect');
  sw.emit('kick');
  check((await dropped).data.code === 1012, 'server close is seen (1012)');
  check((await back).data.reconnect === true, 'reconnected');
  // The re-join was sent before anything queued, so this publish finds us in
  // the room once the server has processed it: ask with a request first.
  await sw.request('echo', {});
  news = next(sw, 'news');
  sw.emit('publish', { text: 'second' }, { room: 'lobby' });
  got = await news;
  check(got.data.text === 'second', 'room publish arrives after the re-join');

  await resume();

  sw.close();
  clearTimeout(deadline);
  console.log('PASS');
} catch (err) {
  console.error(`FAIL: ${err.stack || err}`);
  process.exit(1);
}

// resume checks that sw gets what its rooms published while it was away,
// once each, in order, after a drop by the server and one of its own: a
// member of the other codec stays in the rooms (so that they, and their
// history, live on) and publishes meanwhile. In "small", which keeps 2
// events, the re-join cannot recover 3, and says so: the 2 latest, which
// it asks for, follow.
async function resume() {
  const keeper = connect(url, { codec: codec === 'json' ? 'msgpack' : 'json', reconnect: false, timeout: 5000 });
  await keeper.join('resume');
  await keeper.join('small');
  const log = []; // ticks and resumes of sw, in order
  sw.on('tick', (d, meta) => log.push(`${meta.room} ${d.n} @${sw.position(meta.room)?.offset}`));
  sw.on('resume', ({ room, recovered }) => log.push(`resume ${room} ${recovered}`));
  check((await sw.join('resume')).recovered === false && (await sw.join('small', { recent: 2 })).recovered === false, 'a first join is not recovered');
  await keeper.request('burst', { from: 1, n: 3 }, { room: 'resume' });
  await keeper.request('burst', { from: 1, n: 1 }, { room: 'small' });
  await sw.request('echo', {}); // the ticks, published before, have arrived
  check(log.join() === 'resume 1 @1,resume 2 @2,resume 3 @3,small 1 @1', `events carry their positions: ${log}`);
  const epoch = sw.position('resume').epoch;
  check(Number.isSafeInteger(epoch) && epoch > 0, `the epoch is a Number: ${epoch}`);

  // away drops sw's connection with drop(), publishes meanwhile, lets sw
  // come back and returns what it logged until its rooms have resumed.
  async function away(drop, publish) {
    let release;
    gate = new Promise((r) => (release = r));
    const down = next(sw, 'disconnect');
    log.length = 0;
    drop();
    await down;
    await publish();
    const resumed = new Set();
    const done = new Promise((resolve) => {
      const stop = sw.on('resume', ({ room }) => {
        resumed.add(room);
        if (resumed.has('resume') && resumed.has('small') && resumed.has('lobby')) {
          stop();
          resolve();
        }
      });
    });
    release();
    await done;
    await sw.request('echo', {}); // nothing more on its way
    return log.filter((l) => !l.startsWith('resume lobby')).join();
  }

  let got = await away(
    () => sw.emit('kick'),
    async () => {
      await keeper.request('burst', { from: 4, n: 5 }, { room: 'resume' });
      await keeper.request('burst', { from: 2, n: 3 }, { room: 'small' });
    },
  );
  check(
    got === 'resume resume true,resume 4 @4,resume 5 @5,resume 6 @6,resume 7 @7,resume 8 @8,resume small false,small 3 @3,small 4 @4',
    `after the server's drop, resume recovered, then the 5 missed events once, in order; "small" not, then its 2 latest: ${got}`,
  );
  // "small" goes on from there.
  log.length = 0;
  await keeper.request('burst', { from: 5, n: 1 }, { room: 'small' });
  await sw.request('echo', {});
  check(log.join() === 'small 5 @5', `"small" goes on: ${log}`);

  got = await away(
    () => sw.ws.close(4000, 'network gone'), // the client's side
    () => keeper.request('burst', { from: 9, n: 3 }, { room: 'resume' }),
  );
  check(
    got === 'resume resume true,resume 9 @9,resume 10 @10,resume 11 @11,resume small true',
    `after the client's drop, resume recovered, then the 3 missed events once, in order: ${got}`,
  );
  check(sw.position('resume').epoch === epoch && sw.position('resume').offset === 11, 'the position is the last event\'s');

  // Live again: the next event follows, once.
  log.length = 0;
  await keeper.request('burst', { from: 12, n: 1 }, { room: 'resume' });
  await sw.request('echo', {});
  check(log.join() === 'resume 12 @12', `live events follow: ${log}`);
  await sw.leave('resume');
  check(sw.position('resume') === undefined, 'leave forgets the position');
  keeper.close();
}
