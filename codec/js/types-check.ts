// types-check.ts: uses every declaration of shockwave.d.ts and
// msgpack.d.ts as an application would, and checks the types they give.
// It is never run, only type-checked: `tsc -p codec/js` (strict; see
// tsconfig.json), which codec/js/types_test.go runs. Each
// `// @ts-expect-error` line is a wrong use that must be refused: tsc fails
// if it is accepted.

import {
  Client,
  connect,
  newTraceparent,
  ShockwaveError,
  SUBPROTOCOL,
  SUBPROTOCOL_MSGPACK,
  traceIdOf,
  type BeforeConnectInfo,
  type BeforeConnectResult,
  type ClientErrorCode,
  type Codec,
  type ConnectInfo,
  type ConnectOptions,
  type ConnectTarget,
  type DisconnectInfo,
  type EmitOptions,
  type EventHandler,
  type EventMeta,
  type JoinOptions,
  type JoinReply,
  type LastTrace,
  type NetworkEvents,
  type Position,
  type RandomSource,
  type RequestOptions,
  type ReservedEventName,
  type ReservedEvents,
  type ResolvedOptions,
  type ResumeInfo,
  type RoomOptions,
  type ServerEventName,
  type Timers,
  type TraceInfo,
  type Traceparent,
  type UnauthorizedInfo,
  type WebSocketConstructor,
  type WebSocketLike,
} from './shockwave.js';
import { decode, encode, ExtData, MAX_DEPTH, MsgPackError, type Bytes, type MsgPackValue } from './msgpack.js';
// The package's own names, as an application that installed it imports
// them: package.json's "exports" must lead to the same declarations.
import * as pkg from 'shockwave-client';
import * as pkgMsgpack from 'shockwave-client/msgpack.js';

// Equal<A, B> is true only when A and B are the same type; check<true>
// takes only true.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function check<T extends true>(_?: T): void {}

check<Equal<typeof pkg.connect, typeof connect>>();
check<Equal<typeof pkgMsgpack.decode, typeof decode>>();

// ------------------------------------------------------------ constants

check<Equal<typeof SUBPROTOCOL, 'shockwave.json'>>();
check<Equal<typeof SUBPROTOCOL_MSGPACK, 'shockwave.msgpack'>>();
const codecs: Codec[] = ['json', 'msgpack'];
// @ts-expect-error: no such codec
const badCodec: Codec = 'cbor';

// ------------------------------------------------------------ tracing

const tp: Traceparent = newTraceparent();
const tp2: string = newTraceparent(globalThis.crypto);
const fixed: RandomSource = { getRandomValues: (b: Uint8Array) => b.fill(7) };
const nodeCrypto: RandomSource = { getRandomValues: <T extends ArrayBufferView | null>(b: T) => b };
newTraceparent(fixed);
check<Equal<ReturnType<typeof traceIdOf>, string | undefined>>();
traceIdOf(tp);
traceIdOf(undefined); // anything: undefined for what is not a traceparent
// @ts-expect-error: a traceparent as newTraceparent makes them starts with "00-"
const notTp: Traceparent = 'ff-abc-def-01';
// @ts-expect-error: crypto gives random bytes, not a string
newTraceparent('seed');

// ------------------------------------------------------------ options

// A fake WebSocket, as tests use: only what the client touches.
class FakeWS implements WebSocketLike {
  readyState = 0;
  binaryType = 'blob';
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: DisconnectInfo) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(
    readonly url: string | URL,
    readonly protocols: string | string[],
  ) {}
  send(data: string | Uint8Array): void {}
  close(code?: number, reason?: string): void {}
}

const timers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (t: number) => globalThis.clearTimeout(t),
};

const beforeConnect = async ({ attempt, reconnect }: BeforeConnectInfo): Promise<BeforeConnectResult> => {
  const token: string | null = attempt > 3 && reconnect ? null : 'secret';
  // The idiom of shockwave.js's header: '' or null, or a new URL.
  return token ? { url: `wss://example.com/ws?token=${encodeURIComponent(token)}` } : null;
};

const options: ConnectOptions = {
  codec: 'msgpack',
  protocols: [SUBPROTOCOL_MSGPACK, 'token.abc'],
  timeout: 5000,
  reconnect: true,
  minDelay: 250,
  maxDelay: 10_000,
  factor: 1.5,
  jitter: 0.25,
  maxQueue: 100,
  beforeConnect,
  unauthorizedCodes: [3000, 4001] as const,
  trace: true,
  WebSocket: FakeWS,
  timers,
  random: Math.random,
  crypto: globalThis.crypto,
};

// The browser's own WebSocket, timers and crypto fit the options.
connect(new URL('wss://example.com/ws'), {
  WebSocket: globalThis.WebSocket,
  timers: { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout },
  crypto: globalThis.crypto,
  protocols: SUBPROTOCOL,
});

// beforeConnect may be synchronous, return a target, nothing, or stop.
const targets: ConnectOptions['beforeConnect'][] = [
  () => {},
  () => undefined,
  () => null,
  () => false,
  () => ({ protocols: 'shockwave.json' }),
  async () => ({ url: new URL('wss://example.com/other') }),
  (info) => (info.attempt > 5 ? false : undefined),
];
const target: ConnectTarget = { url: 'wss://example.com', protocols: ['a', 'b'] };

// @ts-expect-error: timeout is a number of milliseconds
connect('wss://example.com/ws', { timeout: '5s' });
// @ts-expect-error: no such codec
connect('wss://example.com/ws', { codec: 'protobuf' });
// @ts-expect-error: no such option
connect('wss://example.com/ws', { retries: 3 });
// @ts-expect-error: beforeConnect returns a target, not a URL string
connect('wss://example.com/ws', { beforeConnect: () => 'wss://example.com/other' });
// @ts-expect-error: reconnect is a boolean
connect('wss://example.com/ws', { reconnect: 'yes' });
// @ts-expect-error: unauthorizedCodes are close codes, numbers
connect('wss://example.com/ws', { unauthorizedCodes: ['3000'] });

// ------------------------------------------------------------ the client

const sw: Client = connect('wss://example.com/ws', options);
const network: NetworkEvents = new EventTarget();
connect('wss://example.com/ws', { network });
connect('wss://example.com/ws', { network: null });
// @ts-expect-error: network is an EventTarget of offline and online events
connect('wss://example.com/ws', { network: true });
const sw2 = new Client('wss://example.com/ws');
check<Equal<typeof sw2, Client>>();

const url: string | URL = sw.url;
const connected: boolean = sw.connected;
const resolved: ResolvedOptions = sw.options;
const timeout: number = sw.options.timeout; // defaults filled in
const codec: Codec = sw.options.codec;
sw.options.trace = false; // a page's debug switch
sw.options.timeout = 1000;
// @ts-expect-error: the codec is chosen once, by the constructor
sw.options.codec = 'json';
// @ts-expect-error: shared with the defaults: replace it, do not change it
sw.options.unauthorizedCodes.push(4001);
sw.options.unauthorizedCodes = [3000, 4001];
// @ts-expect-error: the client reports the trace ids; they are not set
sw.lastTrace.sent = 'x';
// @ts-expect-error: connected is read-only
sw.connected = true;
const last: LastTrace = sw.lastTrace;
const sent: string | undefined = sw.lastTrace.sent;
const received: string | undefined = last.received;
const wait: number = sw.delay(3);

// ------------------------------------------------------------ events

interface ChatMsg {
  text: string;
  from: string;
}

// A server event: T types its data; meta is always there.
const stop: () => void = sw.on<ChatMsg>('chat.msg', (msg, meta) => {
  const text: string = msg.text;
  const m: EventMeta = meta;
  const event: string = meta.event;
  const room: string | undefined = meta.room;
  const traceparent: string | undefined = meta.traceparent;
  const traceId: string | undefined = meta.traceId;
});
stop();
sw.on('chat.any', (data, meta) => {
  check<Equal<typeof data, unknown>>();
});
const onMsg: EventHandler<ChatMsg> = (msg) => console.log(msg.from);
sw.on('chat.msg', onMsg);
sw.off('chat.msg', onMsg);

// The client's own events: their payload, and no meta.
sw.on('connect', (info) => {
  check<Equal<typeof info, ConnectInfo>>();
  const again: boolean = info.reconnect;
});
sw.on('disconnect', ({ code, reason }) => {
  check<Equal<typeof code, number>>();
  check<Equal<typeof reason, string>>();
});
sw.on('unauthorized', (info: UnauthorizedInfo) => {
  check<Equal<typeof info.code, number | null>>();
});
sw.on('unauthorized', () => {}); // fewer parameters are fine
sw.on('error', (err) => {
  check<Equal<typeof err, ShockwaveError>>();
  const code: string = err.code;
  const traceId: string | undefined = err.traceId;
});
const onTrace = ({ direction, event, traceId, traceparent }: TraceInfo) => {
  check<Equal<typeof direction, 'sent' | 'received'>>();
  const e: string = event;
  const id: string | undefined = traceId;
  const t: string = traceparent;
};
sw.on('trace', onTrace);
sw.off('trace', onTrace);
sw.on('resume', (info) => {
  check<Equal<typeof info, ResumeInfo>>();
  const room: string = info.room;
  const replayed: number | undefined = info.replayed;
  const st: unknown = info.state;
  if (!info.recovered) sw.request('chat.history', { room }); // resynchronise
});
const reserved: ReservedEventName[] = ['connect', 'disconnect', 'unauthorized', 'error', 'trace', 'resume'];
check<Equal<ReservedEventName, 'connect' | 'disconnect' | 'unauthorized' | 'error' | 'trace' | 'resume'>>();
const handlers: Partial<ReservedEvents> = { connect: () => {} };

// @ts-expect-error: "connect" gives {reconnect}, not a server event's data
sw.on('connect', (info: ChatMsg) => {});
// @ts-expect-error: the client's own events have no meta
sw.on('disconnect', (info, meta) => {});
// @ts-expect-error: the code of "unauthorized" may be null
sw.on('unauthorized', (info) => info.code.toFixed());
// @ts-expect-error: "error" gives a ShockwaveError, whose code is a string
sw.on('error', (err) => err.code.toFixed());
// @ts-expect-error: "resume" says whether it recovered, a boolean
sw.on('resume', (info) => info.recovered === 'yes');
// @ts-expect-error: "resume" is the client's: its handler gets no meta
sw.on('resume', (info, meta) => {});
// @ts-expect-error: "trace" says a direction, sent or received
sw.on('trace', (info) => info.direction === 'both');
// @ts-expect-error: the meta of a server event is always there: not optional
sw.on('chat.msg', (msg: ChatMsg, meta: EventMeta, extra: string) => {});
// @ts-expect-error: an event name is a string
sw.on(42, () => {});
// ServerEventName leaves the reserved names out.
check<Equal<ServerEventName<'connect'>, never>>();
check<Equal<ServerEventName<'resume'>, never>>();
check<Equal<ServerEventName<'chat.msg'>, 'chat.msg'>>();

// ------------------------------------------------------------ sending

const emitOptions: EmitOptions = { room: 'lobby', traceparent: newTraceparent() };
const queued: boolean = sw.emit('chat.send', { text: 'hi' }, { room: 'lobby' });
sw.emit('chat.typing');
sw.emit('chat.send', { text: 'hi' }, emitOptions);
sw.emit('chat.send', { text: 'hi' }, { traceparent: null }); // none, even when tracing
// @ts-expect-error: a room is a name
sw.emit('chat.send', {}, { room: 7 });
// @ts-expect-error: emit waits for nothing: no timeout
sw.emit('chat.send', {}, { timeout: 10 });

interface Rooms {
  names: string[];
}

async function requests(): Promise<void> {
  const rooms = await sw.request<Rooms>('rooms.list', { prefix: 'g' }, { timeout: 5000 });
  const first: string | undefined = rooms.names[0];
  const reply = await sw.request('ping');
  check<Equal<typeof reply, unknown>>();
  // @ts-expect-error: an untyped reply is unknown until checked
  reply.names;
  // @ts-expect-error: the reply is a Rooms, not a string
  const s: string = await sw.request<Rooms>('rooms.list');
  // @ts-expect-error: request returns a promise, not the reply
  const names: string[] = sw.request<Rooms>('rooms.list').names;
  const requestOptions: RequestOptions = { room: 'lobby', timeout: 100, traceparent: null };
  await sw.request('chat.send', { text: 'hi' }, requestOptions);
  // @ts-expect-error: timeout is a number of milliseconds
  await sw.request('chat.send', {}, { timeout: '1s' });

  try {
    await sw.request('slow', undefined, { timeout: 10 });
  } catch (err) {
    if (err instanceof ShockwaveError) {
      const code: ClientErrorCode | string = err.code;
      if (err.code === 'timeout' || err.code === 'queue_full' || err.code === 'not_found') {
        const id: string | undefined = err.traceId;
      }
      const name: 'ShockwaveError' = err.name;
      const message: string = err.message;
      const isError: Error = err;
    }
  }

  // Rooms: the join's reply, a JoinReply by default, and the position.
  const joinReply = await sw.join('lobby');
  check<Equal<typeof joinReply, JoinReply>>();
  const recovered: boolean = joinReply.recovered;
  const pos: Position | undefined = sw.position('lobby');
  if (pos !== undefined) {
    const epoch: number = pos.epoch;
    const offset: number = pos.offset;
  }
  // @ts-expect-error: a room may have no position yet
  sw.position('lobby').offset;
  // @ts-expect-error: a position is not a string
  const posText: string = sw.position('lobby') ?? '';
  // A join's reply of an application's own type, and options but the room.
  const state = await sw.join<{ members: string[] }>('lobby', { timeout: 2000 });
  const members: string[] = state.members;
  const roomOptions: RoomOptions = { traceparent: tp };
  await sw.join('game', roomOptions);
  const joinOptions: JoinOptions = { recent: 50, timeout: 2000, onReply: (r) => r.recovered || r.replayed === 0 };
  // @ts-expect-error: onReply gets a JoinReply, whose recovered is a boolean
  await sw.join('chat', { onReply: (r) => r.recovered === 'yes' });
  const withRecent = await sw.join('chat', joinOptions);
  const replayedN: number | undefined = withRecent.replayed;
  // @ts-expect-error: recent is a number of events
  await sw.join('chat', { recent: 'all' });
  // @ts-expect-error: leave asks for no events
  await sw.leave('chat', { recent: 5 });
  await sw.leave('game');
  // @ts-expect-error: the room is join's first argument, not an option
  await sw.join('lobby', { room: 'other' });
  // @ts-expect-error: a room is a name
  await sw.join(1);
}

sw.close();
sw.close(4000, 'bye');

// The errors the client makes itself.
const own: ClientErrorCode[] = ['timeout', 'disconnected', 'closed', 'queue_full', 'unauthorized', 'bad_url', 'bad_message'];
const made = new ShockwaveError('timeout');
const withMessage = new ShockwaveError('not_found', 'no such room');
// @ts-expect-error: a code is a string
new ShockwaveError(404);

// The WebSocket option needs a class.
const ctor: WebSocketConstructor = FakeWS;
// @ts-expect-error: an object is not a WebSocket class
connect('wss://example.com/ws', { WebSocket: {} });

// ------------------------------------------------------------ msgpack

const bytes = encode({ e: 'chat.send', d: { text: 'hi', at: new Date(), big: 1n << 60n } });
const asBytes: Bytes = bytes;
const asUint8Array: Uint8Array = bytes;
encode(new Map([[1, 'one']]));
const value: MsgPackValue = decode(bytes);
decode(bytes.buffer);
decode(new DataView(bytes.buffer));
if (value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array)) {
  if (!(value instanceof Date) && !(value instanceof ExtData)) {
    const d: MsgPackValue = value['d'];
  }
}
// @ts-expect-error: decode takes bytes, not a string
decode('\x93\x01\x02\x03');
// @ts-expect-error: a decoded value must be narrowed before use
decode(bytes).toFixed();
const ext = new ExtData(5, new Uint8Array([1, 2]));
const extType: number = ext.type;
const extData: Uint8Array = ext.data;
const depth: number = MAX_DEPTH;
try {
  decode(new Uint8Array([0xc1]));
} catch (err) {
  if (err instanceof MsgPackError) {
    const name: 'MsgPackError' = err.name;
    const message: string = err.message;
  }
}
// @ts-expect-error: ExtData's bytes are a Uint8Array
new ExtData(1, [1, 2]);
