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
//   stream (request)   the same, one every 5 ms, on its own, and replies
//                      at once (n up to 1000)
//   exists (request)   whether the envelope's room exists
//   kick (event)       closes the session with 1012
//   room.join/leave    the Router's built-ins
//
// and whose rooms keep history: 64 events, but "small" only 2, and
// "race" 1000. Rooms named "presence…" track presence by the "user" of
// the client's URL (?user=…), with info {name: USER}, a grace period of
// 3 s, and room.presence events.
//
// The checks: requests and errors; a room publish reaching a member of
// each codec; a reconnection that re-joins; resumes after drops from
// either side and from the network going offline, with events published
// meanwhile: recovered; not recovered in a room whose history was
// trimmed, nor in one removed and made again (a new epoch), and then the
// latest events asked for; recovered while the room publishes on through
// the outage and the re-join (every event once, in order); in 20 rooms at
// once; and presence: the outage is not seen by the other members, a
// member who does not come back departs after the grace period.
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

// next resolves with the next call of event on client for which accept,
// if given, holds; it fails after ms.
function next(client, event, accept = () => true, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no ${event} in ${ms} ms`));
    }, ms);
    const stop = client.on(event, (data, meta) => {
      if (!accept(data, meta)) return;
      stop();
      clearTimeout(timer);
      resolve({ data, meta });
    });
  });
}

// sleep resolves after ms.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function check(cond, what) {
  if (!cond) throw new Error(what);
  console.log(`ok: ${what}`);
}

// as returns url for user (the server's presence key).
function as(user) {
  const u = new URL(url);
  u.searchParams.set('user', user);
  return u.href;
}

const otherCodec = codec === 'json' ? 'msgpack' : 'json';

// sw reconnects once gate has resolved: the checks of resume publish while
// it is away. network tells it of the network going offline and online,
// as a browser's window would.
let gate = Promise.resolve();
const network = new EventTarget();
const sw = connect(as('sw'), { codec, minDelay: 50, maxDelay: 200, timeout: 5000, network, beforeConnect: () => gate });

// log holds sw's ticks and resumes, in order, as {room, text}: text is
// "<room> <n> @<offset>" (the offset of sw.position) or
// "resume <room> <recovered>".
const log = [];
sw.on('tick', (d, meta) => log.push({ room: meta.room, text: `${meta.room} ${d.n} @${sw.position(meta.room)?.offset}` }));
sw.on('resume', ({ room, recovered }) => log.push({ room, text: `resume ${room} ${recovered}` }));

// said returns the texts of log from index from on of the given rooms,
// joined with commas.
function said(from, ...rooms) {
  return log
    .slice(from)
    .filter((l) => rooms.includes(l.room))
    .map((l) => l.text)
    .join();
}

// away drops sw's connection with drop(), runs publish() meanwhile, then
// lets sw come back; once every room sw re-joins has resumed, it returns
// {from, dropped}: the index of log where what sw logged since the drop
// begins, and what sw's "disconnect" said.
async function away(drop, publish) {
  let release;
  gate = new Promise((r) => (release = r));
  const rooms = [...sw.rooms.keys()]; // what the client re-joins
  const down = next(sw, 'disconnect');
  const from = log.length;
  drop();
  const dropped = (await down).data;
  await publish();
  const resumed = new Set();
  const done = next(sw, 'resume', ({ room }) => {
    resumed.add(room);
    return rooms.every((r) => resumed.has(r));
  });
  release();
  await done;
  await sw.request('echo', {}); // nothing more on its way
  return { from, dropped };
}

// client connects a client of user that does not reconnect.
const client = (user, c = otherCodec) => connect(as(user), { codec: c, reconnect: false, timeout: 5000 });

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
  const other = client('other');
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
  await race();
  await epochs();
  await many();
  await presence();

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
  const keeper = client('keeper');
  await keeper.join('resume');
  await keeper.join('small');
  let from = log.length;
  check((await sw.join('resume')).recovered === false && (await sw.join('small', { recent: 2 })).recovered === false, 'a first join is not recovered');
  await keeper.request('burst', { from: 1, n: 3 }, { room: 'resume' });
  await keeper.request('burst', { from: 1, n: 1 }, { room: 'small' });
  await sw.request('echo', {}); // the ticks, published before, have arrived
  let got = said(from, 'resume', 'small');
  check(got === 'resume 1 @1,resume 2 @2,resume 3 @3,small 1 @1', `events carry their positions: ${got}`);
  const epoch = sw.position('resume').epoch;
  check(Number.isSafeInteger(epoch) && epoch > 0, `the epoch is a Number: ${epoch}`);

  ({ from } = await away(
    () => sw.emit('kick'),
    async () => {
      await keeper.request('burst', { from: 4, n: 5 }, { room: 'resume' });
      await keeper.request('burst', { from: 2, n: 3 }, { room: 'small' });
    },
  ));
  got = said(from, 'resume', 'small');
  check(
    got === 'resume resume true,resume 4 @4,resume 5 @5,resume 6 @6,resume 7 @7,resume 8 @8,resume small false,small 3 @3,small 4 @4',
    `after the server's drop, resume recovered, then the 5 missed events once, in order; "small" not, then its 2 latest: ${got}`,
  );
  // "small" goes on from there.
  from = log.length;
  await keeper.request('burst', { from: 5, n: 1 }, { room: 'small' });
  await sw.request('echo', {});
  got = said(from, 'small');
  check(got === 'small 5 @5', `"small" goes on: ${got}`);

  ({ from } = await away(
    () => sw.ws.close(4000, 'network gone'), // the client's side
    () => keeper.request('burst', { from: 9, n: 3 }, { room: 'resume' }),
  ));
  got = said(from, 'resume', 'small');
  check(
    got === 'resume resume true,resume 9 @9,resume 10 @10,resume 11 @11,resume small true',
    `after the client's drop, resume recovered, then the 3 missed events once, in order: ${got}`,
  );
  check(sw.position('resume').epoch === epoch && sw.position('resume').offset === 11, 'the position is the last event\'s');

  // Live again: the next event follows, once.
  from = log.length;
  await keeper.request('burst', { from: 12, n: 1 }, { room: 'resume' });
  await sw.request('echo', {});
  got = said(from, 'resume');
  check(got === 'resume 12 @12', `live events follow: ${got}`);
  await sw.leave('resume');
  check(sw.position('resume') === undefined, 'leave forgets the position');
  keeper.close();
}

// race checks that sw gets every event of a room once, in order, when the
// room publishes on while sw is away and while it re-joins: a keeper has
// the server stream 200 ticks to "race", one every 5 ms; the server drops
// sw midway, and sw is held away until 20 more are out. What sw logs is
// then the ticks up to its position when it dropped, its resume, and all
// the others, the replayed and the live ones.
async function race() {
  const n = 200;
  const keeper = client('keeper');
  await keeper.join('race');
  check((await sw.join('race')).recovered === false, 'sw joins "race"');
  const from = log.length;
  const tick = (c, accept) => next(c, 'tick', (d, meta) => meta.room === 'race' && accept(d.n));
  const midway = tick(sw, (i) => i === 50);
  const last = tick(sw, (i) => i === n);
  last.catch(() => {}); // awaited below, once sw is back
  await keeper.request('stream', { from: 1, n }, { room: 'race' });
  await midway;
  let seen;
  const resumed = next(sw, 'resume', ({ room }) => room === 'race');
  await away(
    () => sw.emit('kick'),
    async () => {
      seen = sw.position('race').offset; // nothing arrives while away
      await tick(keeper, (i) => i >= seen + 20);
    },
  );
  const reply = (await resumed).data;
  await last;
  const want = [];
  for (let i = 1; i <= n; i++) {
    want.push(`race ${i} @${i}`);
    if (i === seen) want.push('resume race true');
  }
  const got = said(from, 'race');
  check(got === want.join(), `while "race" publishes on: its ticks up to ${seen}, then resume recovered, then ${seen + 1} to ${n}, once each, in order`);
  check(reply.replayed >= 20, `the re-join replayed those missed (${reply.replayed}), the rest came live`);
  await sw.leave('race');
  keeper.close();
}

// epochs checks a room removed while sw is away, its only member, and
// made again (a new epoch) by another client, which publishes 4 events
// there: sw's re-join, which asks for 3 of the latest, is not recovered,
// and its resume comes before those 3, with the new epoch's positions.
async function epochs() {
  const newcomer = client('newcomer');
  check((await sw.join('gone', { recent: 3 })).recovered === false, 'sw joins "gone", alone');
  await sw.request('burst', { from: 1, n: 1 }, { room: 'gone' }); // its tick comes before the reply
  const old = sw.position('gone');
  check(old?.offset === 1, `sw has a position in "gone": ${JSON.stringify(old)}`);
  let epoch;
  const resumed = next(sw, 'resume', ({ room }) => room === 'gone');
  const { from } = await away(
    () => sw.ws.close(4000, 'network gone'),
    async () => {
      for (let i = 0; await newcomer.request('exists', undefined, { room: 'gone' }); i++) {
        if (i === 250) throw new Error('"gone" outlived its last member by 5 s');
        await sleep(20);
      }
      check(true, '"gone" is removed with its last member');
      await newcomer.join('gone');
      epoch = newcomer.position('gone').epoch;
      await newcomer.request('burst', { from: 1, n: 4 }, { room: 'gone' });
    },
  );
  const reply = (await resumed).data;
  const got = said(from, 'gone');
  check(got === 'resume gone false,gone 2 @2,gone 3 @3,gone 4 @4', `in a new epoch, not recovered, then the 3 latest: ${got}`);
  check(reply.replayed === 3 && reply.g === epoch, `the reply says so, with the new epoch: ${JSON.stringify(reply)}`);
  check(epoch !== old.epoch && sw.position('gone').epoch === epoch, 'sw\'s position is in the new epoch');
  await sw.leave('gone');
  newcomer.close();
}

// many checks 20 rooms resumed at once, after the network went offline:
// a keeper stays in them and publishes one event to each meanwhile.
async function many() {
  const rooms = Array.from({ length: 20 }, (_, i) => `many${i}`);
  const keeper = client('keeper');
  await Promise.all(rooms.map((room) => keeper.join(room)));
  const joined = await Promise.all(rooms.map((room) => sw.join(room)));
  check(joined.every((reply) => reply.recovered === false), `sw joins ${rooms.length} rooms`);
  const { from, dropped } = await away(
    () => network.dispatchEvent(new Event('offline')),
    async () => {
      await Promise.all(rooms.map((room, i) => keeper.request('burst', { from: i, n: 1 }, { room })));
      network.dispatchEvent(new Event('online'));
    },
  );
  check(dropped.code === 1006 && dropped.reason === 'offline', `going offline drops the connection: ${JSON.stringify(dropped)}`);
  const wrong = rooms.map((room) => said(from, room)).filter((got, i) => got !== `resume many${i} true,many${i} ${i} @1`);
  check(wrong.length === 0, `each of the ${rooms.length} rooms resumed recovered, then its missed event once${wrong.length ? `: ${wrong.join(' | ')}` : ''}`);
  await Promise.all(rooms.map((room) => sw.leave(room)));
  keeper.close();
}

// presence checks a room that tracks presence, with a grace period of 3 s:
// a watcher sees sw arrive, and neither leave nor arrive again when sw
// drops and comes back; it sees a ghost, who leaves for good, arrive and
// depart after the grace. (Had sw been seen to depart, it would have been
// before the ghost: sw dropped before the ghost came.)
async function presence() {
  const room = 'presence';
  const who = (reply) => Object.keys(reply.present ?? {}).sort().join();
  const watcher = client('watcher');
  const seen = [];
  watcher.on('room.presence', (d, meta) => meta.room === room && seen.push(`${d.key} ${d.present}`));
  const change = (key, present) => next(watcher, 'room.presence', (d, meta) => meta.room === room && d.key === key && d.present === present);

  let arrived = change('watcher', true);
  check(who(await watcher.join(room)) === 'watcher', 'the first join\'s reply lists its user');
  await arrived;
  arrived = change('sw', true);
  let reply = await sw.join(room);
  check(who(reply) === 'sw,watcher' && reply.present.sw.name === 'SW', `the join's reply lists who is there: ${who(reply)}`);
  await arrived;

  const resumed = next(sw, 'resume', (r) => r.room === room);
  await away(() => sw.emit('kick'), () => {});
  reply = (await resumed).data;
  check(reply.recovered === true && who(reply) === 'sw,watcher', `sw comes back within the grace: recovered, present ${who(reply)}`);

  const ghost = client('ghost', codec);
  arrived = change('ghost', true);
  const departed = change('ghost', false);
  departed.catch(() => {}); // awaited below
  check(who(await ghost.join(room)) === 'ghost,sw,watcher', 'the ghost joins');
  await arrived;
  ghost.close();
  await departed;
  check(seen.join() === 'watcher true,sw true,ghost true,ghost false', `the watcher saw sw arrive once and never leave, the ghost arrive and depart after the grace: ${seen}`);
  await sw.leave(room);
  watcher.close();
}
