// Tests of msgpack.js with Node's test runner: node --test codec/js/
// Every format at its boundaries, both ways; what JavaScript values become;
// malformed input. codec/js_test.go (TestJSMsgPack) checks the same module
// against the Go library.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode, ExtData, MAX_DEPTH, MsgPackError } from './msgpack.js';

const hex = (b) => Buffer.from(b).toString('hex');
// bytes turns hex (spaces allowed) into a plain Uint8Array.
const bytes = (h) => new Uint8Array(Buffer.from(h.replace(/\s/g, ''), 'hex'));
const utf8 = (s) => hex(Buffer.from(s, 'utf8'));
const u16 = (n) => n.toString(16).padStart(4, '0');
const u32 = (n) => n.toString(16).padStart(8, '0');

// exact checks a table of [name, value, hex, back]: value encodes to hex,
// and hex decodes to back (value when absent).
function exact(rows) {
  for (const [name, value, h, ...rest] of rows) {
    const back = rest.length ? rest[0] : value;
    assert.equal(hex(encode(value)), h.replace(/\s/g, ''), `encode ${name}`);
    assert.deepEqual(decode(bytes(h)), back, `decode ${name}`);
  }
}

test('integers take the shortest format', () => {
  exact([
    ['0', 0, '00'],
    ['127', 127, '7f'],
    ['128', 128, 'cc 80'],
    ['255', 255, 'cc ff'],
    ['256', 256, 'cd 0100'],
    ['65535', 65535, 'cd ffff'],
    ['65536', 65536, 'ce 00010000'],
    ['2^32-1', 2 ** 32 - 1, 'ce ffffffff'],
    ['2^32', 2 ** 32, 'cf 00000001 00000000'],
    ['2^32+1', 2 ** 32 + 1, 'cf 00000001 00000001'],
    ['2^53-1', 2 ** 53 - 1, 'cf 001fffff ffffffff'],
    ['-1', -1, 'ff'],
    ['-32', -32, 'e0'],
    ['-33', -33, 'd0 df'],
    ['-128', -128, 'd0 80'],
    ['-129', -129, 'd1 ff7f'],
    ['-32768', -32768, 'd1 8000'],
    ['-32769', -32769, 'd2 ffff7fff'],
    ['-2^31', -(2 ** 31), 'd2 80000000'],
    ['-2^31-1', -(2 ** 31) - 1, 'd3 ffffffff 7fffffff'],
    ['-2^32', -(2 ** 32), 'd3 ffffffff 00000000'],
    ['-2^32-1', -(2 ** 32) - 1, 'd3 fffffffe ffffffff'],
    ['-(2^53-1)', -(2 ** 53 - 1), 'd3 ffe00000 00000001'],
    ['-0', -0, '00', 0],
  ]);
});

test('BigInts are 64-bit; 64-bit integers decode to Number when safe', () => {
  exact([
    ['0n', 0n, 'cf 0000000000000000', 0],
    ['5n', 5n, 'cf 0000000000000005', 5],
    ['2^53-1', 2n ** 53n - 1n, 'cf 001fffffffffffff', 2 ** 53 - 1],
    ['2^53', 2n ** 53n, 'cf 0020000000000000'],
    ['2^63', 2n ** 63n, 'cf 8000000000000000'],
    ['2^64-1', 2n ** 64n - 1n, 'cf ffffffffffffffff'],
    ['-1n', -1n, 'd3 ffffffffffffffff', -1],
    ['-(2^53-1)', -(2n ** 53n) + 1n, 'd3 ffe0000000000001', -(2 ** 53 - 1)],
    ['-2^53', -(2n ** 53n), 'd3 ffe0000000000000'],
    ['-2^63', -(2n ** 63n), 'd3 8000000000000000'],
  ]);
  assert.throws(() => encode(2n ** 64n), MsgPackError);
  assert.throws(() => encode(-(2n ** 63n) - 1n), MsgPackError);
});

test('other numbers are float64; float32 decodes', () => {
  exact([
    ['1.5', 1.5, 'cb 3ff8000000000000'],
    ['-0.25', -0.25, 'cb bfd0000000000000'],
    ['0.1', 0.1, 'cb 3fb999999999999a'],
    ['2^53', 2 ** 53, 'cb 4340000000000000'],
    ['-2^53', -(2 ** 53), 'cb c340000000000000'],
    ['1e300', 1e300, 'cb 7e37e43c8800759c'],
    ['NaN', NaN, 'cb 7ff8000000000000'],
    ['Infinity', Infinity, 'cb 7ff0000000000000'],
    ['-Infinity', -Infinity, 'cb fff0000000000000'],
  ]);
  assert.equal(decode(bytes('ca 3fc00000')), 1.5);
  assert.equal(decode(bytes('ca 3dcccccd')), Math.fround(0.1));
  assert.equal(decode(bytes('ca ff800000')), -Infinity);
});

test('nil and booleans', () => {
  exact([
    ['null', null, 'c0'],
    ['undefined', undefined, 'c0', null],
    ['true', true, 'c3'],
    ['false', false, 'c2'],
  ]);
});

test('integers in longer formats than needed decode', () => {
  const rows = [
    ['cc 05', 5],
    ['cd 0005', 5],
    ['ce 00000005', 5],
    ['cf 0000000000000005', 5],
    ['d0 05', 5],
    ['d0 ff', -1],
    ['d1 ff80', -128],
    ['d1 7fff', 32767],
    ['d2 ffffffff', -1],
    ['d2 7fffffff', 2 ** 31 - 1],
    ['d3 ffffffffffffffff', -1],
    ['d3 7fffffffffffffff', 2n ** 63n - 1n],
    ['d3 0000000000000005', 5],
  ];
  for (const [h, v] of rows) assert.deepEqual(decode(bytes(h)), v, h);
});

// strHead is the str header of n bytes.
function strHead(n) {
  if (n < 32) return (0xa0 | n).toString(16);
  if (n < 0x100) return 'd9' + n.toString(16).padStart(2, '0');
  if (n < 0x10000) return 'da' + u16(n);
  return 'db' + u32(n);
}

test('strings: every header at its boundaries', () => {
  const rows = [];
  for (const n of [0, 1, 31, 32, 63, 64, 85, 86, 255, 256, 21845, 21846, 65535, 65536, 100000]) {
    const s = 'a'.repeat(n);
    rows.push([`${n} ASCII`, s, strHead(n) + '61'.repeat(n)]);
  }
  // Multi-byte characters: the header counts bytes, not characters.
  for (const [c, n] of [
    ['é', 15],
    ['é', 16],
    ['é', 127],
    ['é', 128],
    ['€', 10],
    ['€', 11],
    ['€', 85],
    ['€', 86],
    ['€', 21845],
    ['€', 21846],
    ['😀', 7],
    ['😀', 8],
    ['😀', 63],
    ['😀', 64],
  ]) {
    const s = c.repeat(n);
    rows.push([`${n} × ${c}`, s, strHead(Buffer.byteLength(s)) + utf8(s)]);
  }
  exact(rows);
  assert.equal(hex(encode('héllo')), 'a668c3a96c6c6f');
});

test('strings: UTF-8 as TextEncoder writes it, lone surrogates included', () => {
  const samples = [
    'ascii',
    'héllo, 世界',
    '😀 emoji 👋🏽',
    '\u0000\u007f\u0080\u07ff\u0800\uffff',
    '\ud800',
    'a\udc00b',
    'end \ud83d',
    '\ud83d\ud83d\ude00',
    '\udfff\ud800',
  ];
  for (const base of samples) {
    for (const s of [base, base.repeat(20)]) {
      // Node's Buffer writes U+FFFD for lone surrogates, as TextEncoder does.
      const want = Buffer.from(s, 'utf8');
      assert.equal(hex(encode(s)), strHead(want.length) + hex(want), JSON.stringify(s));
      assert.equal(decode(encode(s)), s.toWellFormed ? s.toWellFormed() : Buffer.from(s).toString(), JSON.stringify(s));
    }
  }
});

test('strings: invalid UTF-8 decodes to U+FFFD', () => {
  assert.equal(decode(bytes('a3 61ff62')), 'a\ufffdb');
  assert.equal(decode(bytes('a2 c3a9')), 'é');
  assert.equal(decode(bytes('a1 c3')), '\ufffd');
  const long = 'd9 40' + '61'.repeat(63) + 'ff';
  assert.equal(decode(bytes(long)), 'a'.repeat(63) + '\ufffd');
});

test('binary: every header at its boundaries, from every kind of buffer', () => {
  for (const [n, head] of [
    [0, 'c400'],
    [1, 'c401'],
    [255, 'c4ff'],
    [256, 'c50100'],
    [65535, 'c5ffff'],
    [65536, 'c600010000'],
  ]) {
    const b = new Uint8Array(n).map((_, i) => i * 7);
    const want = head + hex(b);
    assert.equal(hex(encode(b)), want, `Uint8Array ${n}`);
    assert.equal(hex(encode(b.buffer)), want, `ArrayBuffer ${n}`);
    assert.equal(hex(encode(new DataView(b.buffer))), want, `DataView ${n}`);
    assert.equal(hex(encode(Buffer.from(b))), want, `Buffer ${n}`);
    assert.deepEqual(decode(bytes(want)), b, `decode ${n}`);
  }
  // A view encodes its own bytes only.
  const big = new Uint8Array([9, 1, 2, 3, 9]);
  assert.equal(hex(encode(big.subarray(1, 4))), 'c403010203');
  assert.equal(hex(encode(new DataView(big.buffer, 1, 3))), 'c403010203');
});

test('arrays: every header at its boundaries', () => {
  for (const [n, head] of [
    [0, '90'],
    [1, '91'],
    [15, '9f'],
    [16, 'dc0010'],
    [65535, 'dcffff'],
    [65536, 'dd00010000'],
  ]) {
    const a = new Array(n).fill(1);
    const want = head + '01'.repeat(n);
    assert.equal(hex(encode(a)), want, `array ${n}`);
    assert.deepEqual(decode(bytes(want)), a, `decode ${n}`);
  }
  assert.deepEqual(decode(bytes('dc0000')), []);
  assert.deepEqual(decode(bytes('dd00000002 01 02')), [1, 2]);
});

test('maps: every header at its boundaries', () => {
  for (const [n, head] of [
    [0, '80'],
    [1, '81'],
    [15, '8f'],
    [16, 'de0010'],
    [65535, 'deffff'],
    [65536, 'df00010000'],
  ]) {
    const o = {};
    for (let i = 0; i < n; i++) o[`k${i}`] = i % 100;
    const b = encode(o);
    assert.equal(hex(b.subarray(0, head.length / 2)), head, `map ${n}`);
    if (n > 0) assert.equal(hex(b.subarray(head.length / 2, head.length / 2 + 4)), 'a26b3000', `map ${n}: first pair`);
    assert.deepEqual(decode(b), o, `decode ${n}`);
  }
  assert.deepEqual(decode(bytes('de0000')), {});
  assert.deepEqual(decode(bytes('df00000001 a161 01')), { a: 1 });
});

test('maps: keys become strings; __proto__ stays an own property', () => {
  // {1: "a", true: "b", nil: "c", -1.5: "d", [1, 2]: "e", 2^64-1: "f", "long…": "g"}
  const long = 'k'.repeat(40);
  const h = '87 01 a161  c3 a162  c0 a163  cb bff8000000000000 a164  92 01 02 a165  cf ffffffffffffffff a166' + ` d928 ${'6b'.repeat(40)} a167`;
  assert.deepEqual(decode(bytes(h)), {
    1: 'a',
    true: 'b',
    null: 'c',
    '-1.5': 'd',
    '[1,2]': 'e',
    '18446744073709551615': 'f',
    [long]: 'g',
  });
  const o = decode(bytes('82 a9 5f5f70726f746f5f5f 81 a1 78 01  a1 79 02')); // {"__proto__": {x: 1}, y: 2}
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.deepEqual(Object.keys(o), ['__proto__', 'y']);
  assert.deepEqual(Object.getOwnPropertyDescriptor(o, '__proto__').value, { x: 1 });
  assert.equal(o.x, undefined);
  assert.equal({}.x, undefined);
  // A map with a repeated key keeps the last value, as JSON.parse does.
  assert.deepEqual(decode(bytes('82 a161 01 a161 02')), { a: 2 });
});

test('ext and fixext: every header, with ExtData', () => {
  for (const [n, head] of [
    [1, 'd4'],
    [2, 'd5'],
    [4, 'd6'],
    [8, 'd7'],
    [16, 'd8'],
    [0, 'c700'],
    [3, 'c703'],
    [17, 'c711'],
    [255, 'c7ff'],
    [256, 'c80100'],
    [65535, 'c8ffff'],
    [65536, 'c900010000'],
  ]) {
    for (const type of [5, -2, 127, -128]) {
      const data = new Uint8Array(n).map((_, i) => i);
      const want = head + (type & 0xff).toString(16).padStart(2, '0') + hex(data);
      assert.equal(hex(encode(new ExtData(type, data))), want, `ext ${n} type ${type}`);
      assert.deepEqual(decode(bytes(want)), new ExtData(type, data), `decode ext ${n} type ${type}`);
    }
  }
  assert.throws(() => encode(new ExtData(200, new Uint8Array(1))), MsgPackError);
  assert.throws(() => encode(new ExtData(1.5, new Uint8Array(1))), MsgPackError);
});

test('timestamps: Date both ways, in the shortest of 32, 64 and 96 bits', () => {
  exact([
    ['epoch', new Date(0), 'd6ff 00000000'],
    ['2^32-1 s', new Date((2 ** 32 - 1) * 1000), 'd6ff ffffffff'],
    ['2^32 s', new Date(2 ** 32 * 1000), 'd7ff 00000001 00000000'],
    ['1 ms', new Date(1), 'd7ff 003d0900 00000000'], // 1e6 ns << 2
    ['now-ish', new Date(1732600000123), 'd7ff 1d535300 674560c0'],
    ['2^34 s - 1 ms', new Date(2 ** 34 * 1000 - 1), `d7ff ${u32(999000000 * 4 + 3)} ffffffff`],
    ['2^34 s', new Date(2 ** 34 * 1000), 'c70cff 00000000 0000000400000000'],
    ['-1 ms', new Date(-1), 'c70cff 3b8b87c0 ffffffffffffffff'],
    ['-1 s', new Date(-1000), 'c70cff 00000000 ffffffffffffffff'],
    ['year 1', new Date('0001-01-01T00:00:00.000Z'), 'c70cff 00000000 fffffff1886e0900'],
  ]);
  // Nanoseconds are cut to milliseconds.
  assert.deepEqual(decode(bytes(`d7ff ${u32(123456789 * 4)} 00000005`)), new Date(5123));
  assert.deepEqual(decode(bytes('c70cff 075bcd15 fffffffffffffffb')), new Date(-5000 + 123));
  assert.throws(() => encode(new Date(NaN)), MsgPackError);
});

test('what JavaScript values become', () => {
  class Point {
    constructor() {
      this.x = 1;
      this.y = 2;
    }
    norm() {
      return 3;
    }
  }
  const rows = [
    ['undefined properties are left out', { a: 1, b: undefined, c: () => 1, d: Symbol('s') }, { a: 1 }],
    ['undefined elements are nil', [undefined, () => 1, Symbol('s')], [null, null, null]],
    ['toJSON', { toJSON: () => ({ v: 1 }) }, { v: 1 }],
    ['class instances are their own properties', new Point(), { x: 1, y: 2 }],
    ['Map', new Map([[1, 'a'], ['b', new Map([[true, 2]])]]), { 1: 'a', b: { true: 2 } }],
    ['Set', new Set([1, 'a', 1]), [1, 'a']],
    ['typed arrays other than bytes are arrays', new Int16Array([-1, 300]), [-1, 300]],
    ['BigInt64Array', new BigInt64Array([-(2n ** 63n), 1n]), [-(2n ** 63n), 1]],
    ['Float64Array', new Float64Array([0.5, -1]), [0.5, -1]],
    ['nested', { a: [{ b: [[], {}, [null]] }] }, { a: [{ b: [[], {}, [null]] }] }],
  ];
  for (const [name, value, want] of rows) assert.deepEqual(decode(encode(value)), want, name);
  assert.equal(hex(encode(new Map([[1, 2]]))), '810102');
});

test('snapshots round-trip', () => {
  const snap = {
    e: 'game.snapshot',
    r: 'arena',
    d: {
      tick: 918273,
      ents: Array.from({ length: 50 }, (_, i) => ({
        id: 1000 + i,
        k: i % 4,
        x: 100.25 + i * 3.5,
        y: -40.75 + i * 1.25,
        vx: 0.5 - i / 16,
        a: i * 0.1,
        hp: 100 - i,
        n: i % 5 ? '' : `player-${i}`,
        seen: new Date(1732600000000 + i),
      })),
    },
  };
  const b = encode(snap);
  assert.deepEqual(decode(b), snap);
  assert.ok(b.length < JSON.stringify(snap).length);
});

test('random values round-trip', () => {
  // A small deterministic PRNG (mulberry32).
  let seed = 42;
  const rnd = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(rnd() * n);
  const scalars = [
    () => null,
    () => rnd() < 0.5,
    () => int(300) - 150,
    () => Math.round((rnd() - 0.5) * 2 ** (int(60) + 1)),
    () => (rnd() - 0.5) * 10 ** int(30),
    () => (rnd() < 0.5 ? BigInt.asIntN : BigInt.asUintN)(64, BigInt(int(2 ** 32)) * 2n ** 32n + BigInt(int(2 ** 32))),
    () => String.fromCodePoint(...Array.from({ length: int(80) }, () => (rnd() < 0.8 ? 32 + int(95) : int(0x10ffff) & ~0x800))),
    () => new Uint8Array(int(40)).map(() => int(256)),
    () => new Date(int(2 ** 40) - 2 ** 39),
    () => new ExtData(int(128), new Uint8Array(int(20))),
  ];
  const gen = (depth) => {
    const k = int(depth > 3 ? scalars.length : scalars.length + 2);
    if (k < scalars.length) return scalars[k]();
    if (k === scalars.length) return Array.from({ length: int(20) }, () => gen(depth + 1));
    const o = {};
    for (let i = int(20); i > 0; i--) o[`k${int(1000)}`] = gen(depth + 1);
    return o;
  };
  const norm = (v) => {
    // What decoding gives back: safe 64-bit integers as Numbers; lone
    // surrogates were replaced.
    if (typeof v === 'bigint') return v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n ? Number(v) : v;
    if (typeof v === 'string') return Buffer.from(v).toString();
    if (Array.isArray(v)) return v.map(norm);
    if (v && v.constructor === Object) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
    return v;
  };
  for (let i = 0; i < 300; i++) {
    const v = gen(0);
    assert.deepEqual(decode(encode(v)), norm(v), `value ${i}`);
  }
});

test('truncated input fails at every length', () => {
  const v = {
    s: 'héllo',
    long: 'x'.repeat(300),
    n: [0, 128, 300, 70000, 2 ** 40, -1, -100, -300, -70000, -(2 ** 40), 1.5, 2n ** 63n],
    b: new Uint8Array(300),
    t: [new Date(0), new Date(1), new Date(-1)],
    x: new ExtData(3, new Uint8Array(5)),
    m: new Map([[1, null]]),
    big: new Array(20).fill(true),
  };
  const b = encode(v);
  for (let i = 0; i < b.length; i++) {
    assert.throws(() => decode(b.subarray(0, i)), MsgPackError, `${i} bytes of ${b.length}`);
  }
  assert.throws(() => decode(new Uint8Array(0)), /unexpected end of input at byte 0/);
});

test('bytes after the value fail', () => {
  assert.throws(() => decode(bytes('01 02')), /1 bytes after the value/);
  assert.throws(() => decode(bytes('90 c0')), MsgPackError);
  const b = encode({ a: 1 });
  assert.throws(() => decode(Uint8Array.of(...b, 0)), MsgPackError);
});

test('malformed input fails without allocating what it claims', () => {
  for (const h of [
    'c1', // never used
    '91 c1',
    'dd ffffffff', // array32 of 4G
    'df ffffffff', // map32 of 4G
    'dc ffff 01',
    'de 0002 a161 01', // one pair of two
    'db ffffffff 61',
    'c6 ffffffff 00',
    'c9 ffffffff 05',
    'd4ff 00', // timestamp of 1 byte
    'c703ff 000000', // timestamp of 3 bytes
    `d7ff ${u32(1000000000 * 4)} 00000000`, // 10^9 ns
    'c70cff 3b9aca00 0000000000000000', // 10^9 ns
  ]) {
    assert.throws(() => decode(bytes(h)), MsgPackError, h);
  }
});

test('decode reads views at their offset and copies what it keeps', () => {
  const inner = encode({ f: 1.5, i: -70000, u: 2 ** 40, b: new Uint8Array([7, 8]), t: new Date(1) });
  const buf = new Uint8Array(inner.length + 7);
  buf.set(inner, 3);
  const view = buf.subarray(3, 3 + inner.length);
  const want = { f: 1.5, i: -70000, u: 2 ** 40, b: new Uint8Array([7, 8]), t: new Date(1) };
  assert.deepEqual(decode(view), want);
  assert.deepEqual(decode(new DataView(buf.buffer, 3, inner.length)), want);
  assert.deepEqual(decode(Buffer.from(inner)), want);
  assert.deepEqual(decode(inner.slice().buffer), want);
  const got = decode(view);
  view.fill(0);
  assert.deepEqual(got.b, new Uint8Array([7, 8]));
  assert.throws(() => decode('c0'), TypeError);
  assert.throws(() => decode(null), TypeError);
  assert.throws(() => decode([0xc0]), TypeError);
});

test('encode returns arrays of their own', () => {
  const a = encode('a');
  const b = encode('b');
  assert.equal(hex(a), 'a161');
  assert.equal(hex(b), 'a162');
  assert.equal(a.byteOffset, 0);
  assert.equal(a.buffer.byteLength, 2);
  // toJSON may encode, in the middle of an encoding.
  const inner = { toJSON: () => hex(encode([1, 2])) };
  assert.deepEqual(decode(encode({ x: inner, y: 'x'.repeat(1000) })), { x: '920102', y: 'x'.repeat(1000) });
  // A failed encoding leaves nothing behind.
  assert.throws(() => encode(['x'.repeat(500), 2n ** 64n]));
  assert.equal(hex(encode(1)), '01');
});

test('nesting is bounded both ways; cycles fail', () => {
  const nested = (n) => {
    let v = null;
    for (let i = 0; i < n; i++) v = [v];
    return v;
  };
  const ok = encode(nested(MAX_DEPTH));
  assert.equal(ok.length, MAX_DEPTH + 1);
  assert.deepEqual(decode(ok), nested(MAX_DEPTH));
  assert.throws(() => encode(nested(MAX_DEPTH + 1)), /nested too deeply/);
  assert.throws(() => decode(bytes('91'.repeat(MAX_DEPTH + 1) + 'c0')), /nested too deeply/);
  assert.throws(() => decode(bytes('81a161'.repeat(MAX_DEPTH + 1) + 'c0')), /nested too deeply/);
  const cyclic = { a: [] };
  cyclic.a.push(cyclic);
  assert.throws(() => encode(cyclic), MsgPackError);
});
