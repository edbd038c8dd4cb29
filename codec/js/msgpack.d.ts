// msgpack.d.ts: the TypeScript declarations of msgpack.js (see its header
// for every mapping between MessagePack and JavaScript). Not served to
// browsers: it is for the editors and builds of applications, and checked
// with shockwave.d.ts by `tsc -p codec/js` (codec/js/types_test.go).

/**
 * Nesting of arrays and maps deeper than this (1,000) is refused, both
 * ways; it also stops encode on a cyclic value.
 */
export const MAX_DEPTH: number;

/** The error of malformed input to decode, or of a value encode cannot take. */
export class MsgPackError extends Error {
  /** message is prefixed with "msgpack: ". */
  constructor(message: string);
  name: 'MsgPackError';
}

/**
 * An extension value other than a timestamp: its type (-128 to 127) and
 * its bytes. decode returns one; encode writes one as ext.
 */
export class ExtData {
  constructor(type: number, data: Uint8Array);
  type: number;
  data: Uint8Array;
}

/**
 * A Uint8Array over an ArrayBuffer (not a SharedArrayBuffer), as encode
 * returns and decode gives bin: Uint8Array<ArrayBuffer> for TypeScript 5.7
 * and later, whose typed arrays say their buffer, and Uint8Array before.
 */
export type Bytes = ReturnType<Uint8Array['slice']>;

/**
 * What decode returns: nil is null; integers are Numbers, except 64-bit
 * ones beyond 2^53-1 in magnitude, which are BigInts; bin is a Uint8Array;
 * a timestamp is a Date; another extension is an ExtData; a map is a plain
 * object, its keys strings.
 */
export type MsgPackValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Bytes
  | Date
  | ExtData
  | MsgPackValue[]
  | { [key: string]: MsgPackValue };

/**
 * Encodes value as MessagePack into a new Uint8Array. It takes any value
 * (msgpack.js's header says how each is written: undefined, functions and
 * symbols as nil, Maps and Sets, toJSON, ...) and throws a MsgPackError
 * for a BigInt beyond 64 bits, an invalid Date, a bad ExtData type or
 * nesting deeper than MAX_DEPTH.
 */
export function encode(value: unknown): Bytes;

/**
 * Decodes one MessagePack value, the whole of bytes: a Uint8Array (or
 * another ArrayBuffer view) or an ArrayBuffer. Throws a MsgPackError for
 * malformed input, and a TypeError for anything but bytes.
 */
export function decode(bytes: ArrayBuffer | ArrayBufferView): MsgPackValue;
