// shockwave.d.ts: the TypeScript declarations of shockwave.js, for the
// editors and builds of applications (the browser loads shockwave.js
// itself; this file is not served). The behaviour is documented in
// shockwave.js and in docs/protocol.md, "The browser client"; this file
// says the types, and types-check.ts, checked by `tsc -p codec/js`
// (codec/js/types_test.go), uses every one of them.
//
// It needs the ES2020 library and a global URL type (the DOM library, or
// @types/node): nothing else from the DOM, so that it checks in Node.js
// code too. The WebSocket, the timers and the crypto the client takes are
// described by what it uses of them, so that the browser's, Node.js's
// and a test's fakes all fit.

import type { Bytes } from './msgpack.js';

/** The subprotocol of the JSON envelope. */
export const SUBPROTOCOL: 'shockwave.json';

/** The subprotocol of the MessagePack envelope. */
export const SUBPROTOCOL_MSGPACK: 'shockwave.msgpack';

/** The envelope's encoding: JSON text messages, or MessagePack binary ones. */
export type Codec = 'json' | 'msgpack';

/**
 * A W3C traceparent as newTraceparent makes them: "00-<32 hex trace
 * id>-<16 hex span id>-01".
 */
export type Traceparent = `00-${string}-${string}-01`;

/** What newTraceparent and the client take random bytes from. */
export interface RandomSource {
  getRandomValues(array: Bytes): unknown;
}

/**
 * Returns a new W3C traceparent, a sampled root span of a new trace, from
 * crypto.getRandomValues (crypto defaults to globalThis.crypto; it throws
 * when there is none), never all zeros.
 */
export function newTraceparent(crypto?: RandomSource): Traceparent;

/**
 * Returns the trace id (32 lower-case hex digits) of a W3C traceparent, or
 * undefined if it is not a valid one (not a string, malformed, version ff,
 * or an all-zero id).
 */
export function traceIdOf(traceparent: unknown): string | undefined;

/** The codes of the errors the client makes itself. */
export type ClientErrorCode =
  /** No reply within the request's timeout. */
  | 'timeout'
  /** The connection dropped after the request was sent. */
  | 'disconnected'
  /** close() was called, or the connection closed with reconnect off. */
  | 'closed'
  /** Too many messages waiting for the connection (options.maxQueue). */
  | 'queue_full'
  /** The client stopped for want of credentials. */
  | 'unauthorized'
  /** An "error" event: a reconnection's WebSocket refused its URL. */
  | 'bad_url'
  /** An "error" event: the server sent a message that does not decode. */
  | 'bad_message';

/**
 * An error from the server (the "x" of a reply or of an "error" event:
 * its code, "error" when it has none) or from the client itself (a
 * ClientErrorCode).
 */
export class ShockwaveError extends Error {
  constructor(code: string, message?: string);
  name: 'ShockwaveError';
  /** A ClientErrorCode, or the server's code. */
  code: ClientErrorCode | (string & {});
  /**
   * The trace id of the request it rejects, when that was sent with a
   * traceparent, or of the "error" event's traceparent.
   */
  traceId?: string;
}

/** What options.beforeConnect is called with. */
export interface BeforeConnectInfo {
  /** Failed attempts since the last opening (0 for the first). */
  attempt: number;
  /** Whether the client has been open before. */
  reconnect: boolean;
}

/** What options.beforeConnect may change for one attempt. */
export interface ConnectTarget {
  url?: string | URL;
  protocols?: string | readonly string[];
}

/**
 * What options.beforeConnect returns (or resolves to): a ConnectTarget to
 * override the URL or the subprotocols of the attempt; nothing (or "") to
 * go on as is; null or false
 * when there are no credentials, which stops the client with
 * "unauthorized".
 */
export type BeforeConnectResult = ConnectTarget | undefined | void | '' | null | false;

/** A close or message event, as far as the client reads it. */
export interface CloseEventLike {
  code: number;
  reason: string;
}

/** The WebSocket the client uses: the browser's, Node.js's, or a fake. */
export interface WebSocketLike {
  readonly readyState: number;
  /** Set to "arraybuffer" by a MessagePack client. */
  binaryType?: string;
  onopen: ((event: any) => unknown) | null;
  onmessage: ((event: any) => unknown) | null;
  onclose: ((event: any) => unknown) | null;
  onerror: ((event: any) => unknown) | null;
  /** A string (JSON) or a Uint8Array (MessagePack). */
  send(data: string | Bytes): void;
  close(code?: number, reason?: string): void;
}

/** The class of options.WebSocket. */
export interface WebSocketConstructor {
  new (url: string | URL, protocols: string | string[]): WebSocketLike;
}

/** options.timers: setTimeout's handle goes back to clearTimeout. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The options of connect. An option left out takes its default; one set
 * to undefined does not, except codec, protocols and unauthorizedCodes.
 */
export interface ConnectOptions {
  /** 'json' (text messages; the default) or 'msgpack' (binary messages). */
  codec?: Codec;
  /** Offered in the handshake; defaults to the codec's subprotocol. */
  protocols?: string | readonly string[];
  /** Milliseconds a request waits for its reply; 10000 by default. */
  timeout?: number;
  /** Re-open the connection after it drops; true by default. */
  reconnect?: boolean;
  /** Milliseconds before the first reconnection attempt; 500 by default. */
  minDelay?: number;
  /** Milliseconds, the cap of the backoff; 30000 by default. */
  maxDelay?: number;
  /** The backoff's growth per failed attempt; 2 by default. */
  factor?: number;
  /** Each delay is cut by a random fraction up to this; 0.5 by default. */
  jitter?: number;
  /** Messages that may wait for the connection; 1000 by default. */
  maxQueue?: number;
  /**
   * Called, and awaited, before every attempt, reconnections included:
   * see BeforeConnectResult. A throw (or rejection) fails the attempt,
   * which is retried with backoff.
   */
  beforeConnect?: (info: BeforeConnectInfo) => BeforeConnectResult | PromiseLike<BeforeConnectResult>;
  /** Close codes that stop the client with "unauthorized"; [3000] by default. */
  unauthorizedCodes?: readonly number[];
  /** Start a trace (send a traceparent) for every emit and request; false by default. */
  trace?: boolean;
  /** Defaults to globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Defaults to the global setTimeout and clearTimeout. */
  timers?: Timers;
  /** For the jitter: a number in [0, 1); Math.random by default. */
  random?: () => number;
  /** For traceparents; defaults to globalThis.crypto. */
  crypto?: RandomSource;
  /**
   * Tells the client that the network went "offline" (it drops the
   * connection at once, and makes no attempt until) and came back
   * "online" (it tries at once). Defaults to the browser's window; null
   * for none.
   */
  network?: NetworkEvents | null;
}

/** What ConnectOptions.network must be: an EventTarget such as window. */
export interface NetworkEvents {
  addEventListener(type: 'offline' | 'online', listener: () => void): void;
  removeEventListener(type: 'offline' | 'online', listener: () => void): void;
}

/**
 * client.options: the options with their defaults. Those read at each use
 * may be changed on a running client (options.trace, a page's debug
 * switch, say); the readonly ones are read once, by the constructor.
 */
export interface ResolvedOptions {
  readonly codec: Codec;
  protocols: string | readonly string[];
  timeout: number;
  reconnect: boolean;
  minDelay: number;
  maxDelay: number;
  factor: number;
  jitter: number;
  maxQueue: number;
  beforeConnect: ConnectOptions['beforeConnect'];
  unauthorizedCodes: readonly number[];
  trace: boolean;
  readonly WebSocket: WebSocketConstructor | undefined;
  readonly timers: Timers | undefined;
  random: () => number;
  crypto: RandomSource | undefined;
  readonly network: NetworkEvents | null | undefined;
}

/** The options of emit. */
export interface EmitOptions {
  /** The envelope's room ("r"). */
  room?: string;
  /**
   * The envelope's traceparent ("t"): this one, whatever options.trace
   * says; null for none, when the client traces.
   */
  traceparent?: string | null;
}

/** The options of request. */
export interface RequestOptions extends EmitOptions {
  /** Milliseconds to wait for the reply; the client's options.timeout by default. */
  timeout?: number;
}

/** The options of leave: those of request but the room. */
export type RoomOptions = Omit<RequestOptions, 'room'>;

/** The options of join. */
export interface JoinOptions extends RoomOptions {
  /**
   * When the join does not recover (a first join included), up to this
   * many of the room's latest events follow the reply; the room's
   * re-joins ask for as many. A positive integer; none by default.
   */
  recent?: number;
  /**
   * Called with the reply of this join and of each of the room's
   * re-joins after reconnections, as it arrives, before the events that
   * follow it: the place to show the room (where messages come in
   * batches, as on Node's WebSocket, the promise's handlers may run after
   * those events).
   */
  onReply?: (reply: JoinReply) => void;
}

/** The second argument of a handler of the server's events. */
export interface EventMeta {
  /** The event's name. */
  event: string;
  /** The envelope's room, if it has one. */
  room: string | undefined;
  /** The envelope's traceparent ("t"), if it has one. */
  traceparent: string | undefined;
  /** Its trace id; undefined without a valid traceparent. */
  traceId: string | undefined;
}

/** The "connect" event: after every successful opening. */
export interface ConnectInfo {
  /** Whether the client had been open before. */
  reconnect: boolean;
}

/** The "disconnect" event: an open connection dropped (once per outage). */
export interface DisconnectInfo {
  code: number;
  reason: string;
}

/** The "unauthorized" event: the client stopped for want of credentials. */
export interface UnauthorizedInfo {
  /** The close code (3000, or one of options.unauthorizedCodes), or null when beforeConnect returned null or false. */
  code: number | null;
  reason: string;
}

/** The reply to room.join, what join resolves with by default. */
export interface JoinReply {
  /**
   * Whether the events missed since the position sent follow the reply,
   * so that nothing is lost; false for a first join, and when the room
   * could not tell (another epoch, history trimmed, a room that keeps
   * none): resynchronise.
   */
  recovered: boolean;
  /** How many of the room's events follow the reply: those missed, or the recent ones asked for. */
  replayed?: number;
  /** The position just before the events that follow ("g" and "o"; o absent: the room has published nothing), in a room that keeps history: the client takes it as its own unless it has seen a later event. */
  g?: number | bigint;
  o?: number | bigint;
  /** Who is in the room, key to info, when the room tracks presence and has at most codec.Rooms.MaxPresent users (1000 by default). */
  present?: Record<string, unknown>;
  /** How many users are present, listed or not. */
  count?: number;
  /** The application's state of the room (codec.Rooms.State), as of the reply's position. */
  state?: unknown;
}

/**
 * The "resume" event: after each re-join of a room, as its reply arrives,
 * before the events that follow it: the reply and the room.
 */
export interface ResumeInfo extends JoinReply {
  room: string;
}

/**
 * The position of an event in a room that keeps history: the envelope's
 * "g" (the epoch of the room's history, under 2^53) and "o" (the event's
 * offset in it, from 1).
 */
export interface Position {
  epoch: number;
  offset: number;
}

/** The "trace" event: a traceparent sent or received. */
export interface TraceInfo {
  direction: 'sent' | 'received';
  /** The envelope's name; a reply's is its request's. */
  event: string;
  /** undefined when the traceparent is not valid. */
  traceId: string | undefined;
  traceparent: string;
}

/**
 * The client's own events and the argument of their handlers (they get no
 * EventMeta). Server events should not use these names.
 */
export interface ReservedEvents {
  connect: (info: ConnectInfo) => void;
  disconnect: (info: DisconnectInfo) => void;
  unauthorized: (info: UnauthorizedInfo) => void;
  /** The server's "error" events and failed re-joins, bad messages and bad URLs. */
  error: (err: ShockwaveError) => void;
  trace: (info: TraceInfo) => void;
  resume: (info: ResumeInfo) => void;
}

export type ReservedEventName = keyof ReservedEvents;

/** A handler of a server event whose "d" is of type T. */
export type EventHandler<T = unknown> = (data: T, meta: EventMeta) => void;

/**
 * Event names other than the reserved ones: the parameter type of a
 * server event's name, never for "connect", "error" and the others.
 */
export type ServerEventName<E extends string> = E extends ReservedEventName ? never : E;

/** The trace ids of the last envelopes sent and received with a traceparent. */
export interface LastTrace {
  readonly sent: string | undefined;
  readonly received: string | undefined;
}

/** Opens a client; see Client. */
export function connect(url: string | URL, options?: ConnectOptions): Client;

/**
 * A connection to a Shockwave server that survives reconnections. The
 * constructor throws when options.codec is unknown, when there is no
 * WebSocket, and for a URL the WebSocket refuses.
 */
export class Client {
  constructor(url: string | URL, options?: ConnectOptions);

  /** The URL given to connect. */
  readonly url: string | URL;
  /** The options with their defaults. */
  readonly options: ResolvedOptions;
  /** Trace ids of the last envelope sent and received with a traceparent. */
  readonly lastTrace: LastTrace;
  /** Whether the connection is open now. */
  readonly connected: boolean;

  /** Calls fn for each of the client's own event; returns a function that stops it. */
  on<K extends ReservedEventName>(event: K, fn: ReservedEvents[K]): () => void;
  /**
   * Calls fn(data, meta) for every server event of that name; returns a
   * function that stops it. T is the type of its data, unchecked.
   */
  on<T = unknown, E extends string = string>(event: ServerEventName<E>, fn: EventHandler<T>): () => void;

  /** Stops calling fn for event. */
  off(event: string, fn: (...args: never[]) => unknown): void;

  /**
   * Sends an event without waiting for anything. Returns false if it
   * could not be sent or queued (the queue is full, or the client is
   * closed). Throws the codec's error (a TypeError from JSON, a
   * MsgPackError) for data it cannot encode.
   */
  emit(event: string, data?: unknown, options?: EmitOptions): boolean;

  /**
   * Sends a request and returns a promise of the server's reply (its "d",
   * or undefined), rejected with a ShockwaveError (or with the codec's
   * error, for data it cannot encode). R is the type of the reply,
   * unchecked.
   */
  request<R = unknown>(event: string, data?: unknown, options?: RequestOptions): Promise<R>;

  /**
   * Joins a room ("room.join") and remembers it, to join it again after
   * every reconnection, with the room's position (and options.recent).
   * The promise is that of
   * the request, R the type of the server's reply (a JoinReply from a
   * codec.Router: {recovered: false} on a first join); if the server
   * refuses, the room is forgotten. Called while the connection is down
   * for a room joined before, it is the room's re-join, with its position
   * and a "resume" event (the first such call only).
   */
  join<R = JoinReply>(room: string, options?: JoinOptions): Promise<R>;

  /** Leaves a room ("room.leave"), forgets its position and stops re-joining it. */
  leave<R = unknown>(room: string, options?: RoomOptions): Promise<R>;

  /**
   * The position of the last event the client got in a room it joined (a
   * copy), or undefined: no event yet, or a room without history. In a
   * handler, that of the event being handled.
   */
  position(room: string): Position | undefined;

  /**
   * Closes the connection for good (1000 and "" by default): no
   * reconnection; requests still waiting are rejected with code "closed";
   * the rooms' positions are forgotten.
   */
  close(code?: number, reason?: string): void;

  /** The wait before reconnection attempt n (0 first), in ms. */
  delay(n: number): number;
}
