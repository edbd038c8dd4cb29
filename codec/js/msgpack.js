// msgpack.js: MessagePack (https://msgpack.org, the 2017 spec with
// timestamps) for the JSON-like values of JavaScript. One ES module, no
// dependencies; shockwave.js uses it for the subprotocol
// "shockwave.msgpack".
//
//   import { encode, decode } from './msgpack.js';
//   const bytes = encode({ e: 'chat.send', d: { text: 'hi' } }); // Uint8Array
//   decode(bytes); // { e: 'chat.send', d: { text: 'hi' } }
//
// encode(value) -> Uint8Array, a new array of its own:
//   null, undefined                 nil (undefined properties are left out of
//                                   objects, as JSON.stringify does; functions
//                                   and symbols too, and are nil elsewhere)
//   true, false                     bool
//   safe integer Number             the shortest int: positive/negative
//                                   fixint, uint8..uint64 or int8..int64
//                                   (-0 as 0)
//   other Number                    float64 (also NaN, ±Infinity and
//                                   integers beyond 2^53)
//   BigInt                          uint64 when >= 0, else int64;
//                                   MsgPackError outside [-2^63, 2^64)
//   string                          fixstr/str8/str16/str32, UTF-8 (lone
//                                   surrogates become U+FFFD)
//   Uint8Array, ArrayBuffer,
//   DataView                        bin8/bin16/bin32 of their bytes
//   Date                            timestamp (ext -1), 32, 64 or 96 bits,
//                                   the shortest that holds it
//   ExtData                         ext/fixext of its type and bytes
//   Array, Set, other typed arrays  array
//   Map                             map, with keys of any type
//   other objects                   map of their own enumerable string keys,
//                                   or toJSON() when they have one
//
// decode(bytes) -> value, from a Uint8Array (or any ArrayBuffer view) or an
// ArrayBuffer holding exactly one MessagePack value:
//   nil -> null; bool; ints -> Number, except 64-bit ones beyond 2^53-1 in
//   magnitude -> BigInt; float32, float64 -> Number; str -> string
//   (invalid UTF-8 becomes U+FFFD); bin -> Uint8Array (a copy); array ->
//   Array; map -> plain object, other keys turned into strings (String(k)
//   for numbers, booleans, nil; JSON for arrays and maps) and "__proto__"
//   kept as an own property; timestamp (ext -1) -> Date (to the millisecond); other ext ->
//   ExtData. It throws a MsgPackError for truncated input, bytes after the
//   value, the never-used byte 0xc1, a malformed timestamp or nesting deeper
//   than MAX_DEPTH (1,000); it never allocates more than the input could hold.

/**
 * Nesting of arrays and maps deeper than this is refused, both ways: the
 * encoder and decoder recurse, and a JavaScript stack holds a few thousand
 * levels only. (It also stops encode on a cyclic value.)
 */
export const MAX_DEPTH = 1000;

/** The error of malformed input to decode, or of a value encode cannot take. */
export class MsgPackError extends Error {
  constructor(message) {
    super(`msgpack: ${message}`);
    this.name = 'MsgPackError';
  }
}

/**
 * An extension value other than a timestamp: its type (-128 to 127) and
 * its bytes. decode returns one; encode writes one as ext.
 */
export class ExtData {
  constructor(type, data) {
    this.type = type;
    this.data = data;
  }
}

const TIMESTAMP = -1; // the ext type of timestamps
const POW32 = 0x100000000;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder(); // not fatal: bad UTF-8 becomes U+FFFD

// ---------------------------------------------------------------- encode

// Strings shorter than this are encoded by hand; longer ones by the
// TextEncoder, whose call costs more than a short loop.
const SHORT_STRING = 64;

// The fixext type bytes by data length.
const FIXEXT = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 };

class Encoder {
  constructor(size) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
    this.pos = 0;
  }

  // ensure makes room for n more bytes.
  ensure(n) {
    const need = this.pos + n;
    if (need <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < need) size *= 2;
    const bytes = new Uint8Array(size);
    bytes.set(this.bytes.subarray(0, this.pos));
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer);
  }

  u8(c) {
    this.ensure(1);
    this.bytes[this.pos++] = c;
  }

  // head writes a type byte followed by an unsigned integer of size bytes.
  head(c, size, n) {
    this.ensure(1 + size);
    const v = this.view;
    const p = this.pos;
    v.setUint8(p, c);
    if (size === 1) v.setUint8(p + 1, n);
    else if (size === 2) v.setUint16(p + 1, n);
    else v.setUint32(p + 1, n);
    this.pos = p + 1 + size;
  }

  value(x, depth) {
    switch (typeof x) {
      case 'string':
        this.str(x);
        return;
      case 'number':
        this.num(x);
        return;
      case 'boolean':
        this.u8(x ? 0xc3 : 0xc2);
        return;
      case 'bigint':
        this.bigint(x);
        return;
      case 'object':
        if (x === null) this.u8(0xc0);
        else this.object(x, depth);
        return;
      default: // undefined, function, symbol
        this.u8(0xc0);
    }
  }

  num(x) {
    if (!Number.isSafeInteger(x)) {
      this.ensure(9);
      this.view.setUint8(this.pos, 0xcb);
      this.view.setFloat64(this.pos + 1, x);
      this.pos += 9;
    } else if (x >= 0) {
      if (x < 0x80) this.u8(x);
      else if (x < 0x100) this.head(0xcc, 1, x);
      else if (x < 0x10000) this.head(0xcd, 2, x);
      else if (x < POW32) this.head(0xce, 4, x);
      else this.u64(0xcf, Math.floor(x / POW32), x >>> 0);
    } else if (x >= -32) {
      this.u8(x & 0xff);
    } else if (x >= -0x80) {
      this.head(0xd0, 1, x & 0xff);
    } else if (x >= -0x8000) {
      this.head(0xd1, 2, x & 0xffff);
    } else if (x >= -0x80000000) {
      this.head(0xd2, 4, x >>> 0);
    } else {
      // Two's complement of a safe negative integer: the high word is
      // floor(x / 2^32) (negative), the low word what remains.
      const hi = Math.floor(x / POW32);
      this.u64(0xd3, hi >>> 0, (x - hi * POW32) >>> 0);
    }
  }

  u64(c, hi, lo) {
    this.ensure(9);
    const v = this.view;
    v.setUint8(this.pos, c);
    v.setUint32(this.pos + 1, hi);
    v.setUint32(this.pos + 5, lo);
    this.pos += 9;
  }

  bigint(x) {
    this.ensure(9);
    if (x >= 0n) {
      if (x >= 1n << 64n) throw new MsgPackError(`integer ${x} does not fit in 64 bits`);
      this.view.setUint8(this.pos, 0xcf);
      this.view.setBigUint64(this.pos + 1, x);
    } else {
      if (x < -(1n << 63n)) throw new MsgPackError(`integer ${x} does not fit in 64 bits`);
      this.view.setUint8(this.pos, 0xd3);
      this.view.setBigInt64(this.pos + 1, x);
    }
    this.pos += 9;
  }

  str(s) {
    const len = s.length;
    if (len < SHORT_STRING) {
      // Count the UTF-8 bytes, write the header, then the bytes.
      let n = len;
      for (let i = 0; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x80) continue;
        if (c < 0x800) n += 1;
        else if (c < 0xd800 || c > 0xdbff) n += 2; // lone low surrogates too: U+FFFD
        else {
          const d = i + 1 < len ? s.charCodeAt(i + 1) : 0;
          if (d >= 0xdc00 && d <= 0xdfff) {
            n += 2; // a pair: 2 units, 4 bytes
            i++;
          } else {
            n += 2; // a lone high surrogate: U+FFFD
          }
        }
      }
      this.strHead(n);
      this.ensure(n);
      utf8Write(this.bytes, this.pos, s);
      this.pos += n;
      return;
    }
    // A long string: encode it where its header is expected to end, for
    // the largest header its worst case (3 bytes per unit) could need,
    // then move it if the header turns out smaller.
    const max = len * 3;
    const headMax = max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
    this.ensure(headMax + max);
    const start = this.pos;
    const { written } = textEncoder.encodeInto(s, this.bytes.subarray(start + headMax, start + headMax + max));
    this.strHead(written);
    const headLen = this.pos - start;
    if (headLen !== headMax) this.bytes.copyWithin(this.pos, start + headMax, start + headMax + written);
    this.pos += written;
  }

  strHead(n) {
    if (n < 32) this.u8(0xa0 | n);
    else if (n < 0x100) this.head(0xd9, 1, n);
    else if (n < 0x10000) this.head(0xda, 2, n);
    else this.head(0xdb, 4, n);
  }

  bin(b) {
    const n = b.length;
    if (n < 0x100) this.head(0xc4, 1, n);
    else if (n < 0x10000) this.head(0xc5, 2, n);
    else this.head(0xc6, 4, n);
    this.ensure(n);
    this.bytes.set(b, this.pos);
    this.pos += n;
  }

  ext(type, data) {
    const n = data.length;
    const fix = FIXEXT[n];
    if (fix !== undefined) this.u8(fix);
    else if (n < 0x100) this.head(0xc7, 1, n);
    else if (n < 0x10000) this.head(0xc8, 2, n);
    else this.head(0xc9, 4, n);
    this.u8(type & 0xff);
    this.ensure(n);
    this.bytes.set(data, this.pos);
    this.pos += n;
  }

  date(d) {
    const ms = d.getTime();
    if (Number.isNaN(ms)) throw new MsgPackError('invalid Date');
    const sec = Math.floor(ms / 1000);
    const nsec = (ms - sec * 1000) * 1e6;
    if (sec >= 0 && sec < 0x400000000) {
      if (nsec === 0 && sec < POW32) {
        this.head(0xd6, 1, 0xff); // fixext4, type -1
        this.ensure(4);
        this.view.setUint32(this.pos, sec);
        this.pos += 4;
        return;
      }
      // fixext8: 30 bits of nanoseconds, 34 of seconds.
      this.head(0xd7, 1, 0xff);
      this.ensure(8);
      this.view.setUint32(this.pos, nsec * 4 + Math.floor(sec / POW32));
      this.view.setUint32(this.pos + 4, sec >>> 0);
      this.pos += 8;
      return;
    }
    // ext8 of 12 bytes: 32 bits of nanoseconds, 64 of signed seconds.
    this.head(0xc7, 1, 12);
    this.u8(0xff);
    this.ensure(12);
    this.view.setUint32(this.pos, nsec);
    this.view.setBigInt64(this.pos + 4, BigInt(sec));
    this.pos += 12;
  }

  object(x, depth) {
    if (++depth > MAX_DEPTH) throw new MsgPackError('value nested too deeply (or cyclic)');
    if (Array.isArray(x)) {
      const n = x.length;
      this.arrayHead(n);
      for (let i = 0; i < n; i++) this.value(x[i], depth);
    } else if (x instanceof Uint8Array) {
      this.bin(x);
    } else if (x instanceof ArrayBuffer) {
      this.bin(new Uint8Array(x));
    } else if (x instanceof DataView) {
      this.bin(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    } else if (x instanceof Date) {
      this.date(x);
    } else if (x instanceof ExtData) {
      if (!Number.isInteger(x.type) || x.type < -128 || x.type > 127) {
        throw new MsgPackError(`ext type ${x.type} is not an integer from -128 to 127`);
      }
      this.ext(x.type, x.data);
    } else if (ArrayBuffer.isView(x) || x instanceof Set) {
      const a = Array.from(x);
      this.arrayHead(a.length);
      for (const v of a) this.value(v, depth);
    } else if (x instanceof Map) {
      this.mapHead(x.size);
      for (const [k, v] of x) {
        this.value(k, depth);
        this.value(v, depth);
      }
    } else if (typeof x.toJSON === 'function') {
      this.value(x.toJSON(), depth);
    } else {
      this.plain(x, depth);
    }
  }

  plain(x, depth) {
    const keys = Object.keys(x);
    let n = 0;
    for (let i = 0; i < keys.length; i++) if (present(x[keys[i]])) n++;
    this.mapHead(n);
    for (let i = 0; i < keys.length; i++) {
      const v = x[keys[i]];
      if (present(v)) {
        this.str(keys[i]);
        this.value(v, depth);
      }
    }
  }

  arrayHead(n) {
    if (n < 16) this.u8(0x90 | n);
    else if (n < 0x10000) this.head(0xdc, 2, n);
    else this.head(0xdd, 4, n);
  }

  mapHead(n) {
    if (n < 16) this.u8(0x80 | n);
    else if (n < 0x10000) this.head(0xde, 2, n);
    else this.head(0xdf, 4, n);
  }
}

// present reports whether an object's property is encoded: JSON.stringify
// leaves out the same ones.
function present(v) {
  const t = typeof v;
  return t !== 'undefined' && t !== 'function' && t !== 'symbol';
}

// utf8Write writes s, short, as UTF-8 at bytes[p], as TextEncoder would.
function utf8Write(bytes, p, s) {
  const len = s.length;
  for (let i = 0; i < len; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      bytes[p++] = c;
    } else if (c < 0x800) {
      bytes[p++] = 0xc0 | (c >> 6);
      bytes[p++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < len ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          bytes[p++] = 0xf0 | (c >> 18);
          bytes[p++] = 0x80 | ((c >> 12) & 0x3f);
          bytes[p++] = 0x80 | ((c >> 6) & 0x3f);
          bytes[p++] = 0x80 | (c & 0x3f);
          continue;
        }
        c = 0xfffd; // a lone surrogate
      }
      bytes[p++] = 0xe0 | (c >> 12);
      bytes[p++] = 0x80 | ((c >> 6) & 0x3f);
      bytes[p++] = 0x80 | (c & 0x3f);
    }
  }
}

// One encoder's buffer is kept between calls; encode copies out of it.
let spare = null;

/** Encodes value as MessagePack into a new Uint8Array. */
export function encode(value) {
  const e = spare || new Encoder(256);
  spare = null; // toJSON may call encode again: it gets a buffer of its own
  try {
    e.value(value, 0);
    return e.bytes.slice(0, e.pos);
  } finally {
    e.pos = 0;
    if (e.bytes.length <= 1 << 20) spare = e; // keep no huge buffer alive
  }
}

// ---------------------------------------------------------------- decode

class Decoder {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  // need checks that n more bytes are there and returns where they start.
  need(n) {
    const p = this.pos;
    if (n > this.bytes.length - p) throw new MsgPackError(`unexpected end of input at byte ${p}`);
    this.pos = p + n;
    return p;
  }

  value(depth) {
    const c = this.bytes[this.need(1)];
    if (c < 0x80) return c; // positive fixint
    if (c >= 0xe0) return c - 0x100; // negative fixint
    if (c < 0x90) return this.map(c & 0x0f, depth);
    if (c < 0xa0) return this.array(c & 0x0f, depth);
    if (c < 0xc0) return this.str(c & 0x1f);
    const v = this.view;
    switch (c) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(v.getUint8(this.need(1)));
      case 0xc5:
        return this.bin(v.getUint16(this.need(2)));
      case 0xc6:
        return this.bin(v.getUint32(this.need(4)));
      case 0xc7:
        return this.ext(v.getUint8(this.need(1)));
      case 0xc8:
        return this.ext(v.getUint16(this.need(2)));
      case 0xc9:
        return this.ext(v.getUint32(this.need(4)));
      case 0xca:
        return v.getFloat32(this.need(4));
      case 0xcb:
        return v.getFloat64(this.need(8));
      case 0xcc:
        return v.getUint8(this.need(1));
      case 0xcd:
        return v.getUint16(this.need(2));
      case 0xce:
        return v.getUint32(this.need(4));
      case 0xcf: {
        const p = this.need(8);
        const hi = v.getUint32(p);
        return hi < 0x200000 ? hi * POW32 + v.getUint32(p + 4) : v.getBigUint64(p);
      }
      case 0xd0:
        return v.getInt8(this.need(1));
      case 0xd1:
        return v.getInt16(this.need(2));
      case 0xd2:
        return v.getInt32(this.need(4));
      case 0xd3: {
        const p = this.need(8);
        const hi = v.getInt32(p);
        if (hi >= -0x200000 && hi < 0x200000) {
          const n = hi * POW32 + v.getUint32(p + 4); // exact: |n| <= 2^53
          if (n !== -0x20000000000000) return n;
        }
        return v.getBigInt64(p);
      }
      case 0xd4:
        return this.ext(1);
      case 0xd5:
        return this.ext(2);
      case 0xd6:
        return this.ext(4);
      case 0xd7:
        return this.ext(8);
      case 0xd8:
        return this.ext(16);
      case 0xd9:
        return this.str(v.getUint8(this.need(1)));
      case 0xda:
        return this.str(v.getUint16(this.need(2)));
      case 0xdb:
        return this.str(v.getUint32(this.need(4)));
      case 0xdc:
        return this.array(v.getUint16(this.need(2)), depth);
      case 0xdd:
        return this.array(v.getUint32(this.need(4)), depth);
      case 0xde:
        return this.map(v.getUint16(this.need(2)), depth);
      case 0xdf:
        return this.map(v.getUint32(this.need(4)), depth);
      default: // 0xc1
        throw new MsgPackError(`byte 0x${c.toString(16)} at ${this.pos - 1} is not MessagePack`);
    }
  }

  // count checks that n elements of at least size bytes each could be
  // there, before anything is allocated for them.
  count(n, size, depth) {
    if (n * size > this.bytes.length - this.pos) throw new MsgPackError(`unexpected end of input at byte ${this.pos}`);
    if (depth >= MAX_DEPTH) throw new MsgPackError('value nested too deeply');
  }

  array(n, depth) {
    this.count(n, 1, depth);
    const a = new Array(n);
    for (let i = 0; i < n; i++) a[i] = this.value(depth + 1);
    return a;
  }

  map(n, depth) {
    this.count(n, 2, depth);
    const o = {};
    for (let i = 0; i < n; i++) {
      const c = this.bytes[this.pos];
      let k;
      if (c >= 0xa0 && c < 0xc0) {
        this.pos++;
        k = this.str(c & 0x1f); // the usual key: a fixstr
      } else {
        k = this.value(depth + 1);
        if (typeof k !== 'string') k = keyString(k);
      }
      const v = this.value(depth + 1);
      if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
      else o[k] = v;
    }
    return o;
  }

  str(n) {
    const bytes = this.bytes;
    const p = this.need(n);
    if (n < SHORT_STRING) {
      // ASCII by hand; anything else by the TextDecoder.
      let s = '';
      for (let i = p; i < p + n; i++) {
        const c = bytes[i];
        if (c >= 0x80) return textDecoder.decode(bytes.subarray(p, p + n));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return textDecoder.decode(bytes.subarray(p, p + n));
  }

  bin(n) {
    const p = this.need(n);
    return this.bytes.slice(p, p + n);
  }

  ext(n) {
    const type = this.view.getInt8(this.need(1));
    const p = this.need(n);
    if (type !== TIMESTAMP) return new ExtData(type, this.bytes.slice(p, p + n));
    const v = this.view;
    let sec, nsec;
    if (n === 4) {
      sec = v.getUint32(p);
      nsec = 0;
    } else if (n === 8) {
      const hi = v.getUint32(p);
      nsec = hi >>> 2;
      sec = (hi & 3) * POW32 + v.getUint32(p + 4);
    } else if (n === 12) {
      nsec = v.getUint32(p);
      sec = Number(v.getBigInt64(p + 4));
    } else {
      throw new MsgPackError(`timestamp of ${n} bytes`);
    }
    if (nsec > 999999999) throw new MsgPackError(`timestamp with ${nsec} nanoseconds`);
    return new Date(sec * 1000 + Math.floor(nsec / 1e6));
  }
}

// keyString turns a map key that is not a string into one.
function keyString(k) {
  if (k === null || typeof k !== 'object') return String(k);
  return JSON.stringify(k, (_, v) => (typeof v === 'bigint' ? String(v) : v));
}

/**
 * Decodes one MessagePack value, the whole of bytes: a Uint8Array (or
 * another ArrayBuffer view) or an ArrayBuffer.
 */
export function decode(bytes) {
  // A plain Uint8Array over the bytes, whatever their view: the slices of
  // subclasses such as Node's Buffer are views, not copies.
  let b;
  if (bytes instanceof ArrayBuffer) b = new Uint8Array(bytes);
  else if (ArrayBuffer.isView(bytes)) b = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  else throw new TypeError('msgpack: decode takes a Uint8Array or an ArrayBuffer');
  const d = new Decoder(b);
  const v = d.value(0);
  if (d.pos !== b.length) throw new MsgPackError(`${b.length - d.pos} bytes after the value`);
  return v;
}
