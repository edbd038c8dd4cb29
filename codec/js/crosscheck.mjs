// Cross-check of msgpack.js against the Go library (vmihailenco/msgpack),
// run by codec/js_test.go (TestJSMsgPack): Go encodes a table of values,
// this script decodes each one and encodes the result again, and Go checks
// both what it decoded and that the new bytes decode in Go to the same
// value.
//
// Usage: node crosscheck.mjs cases.json
// cases.json: [{"name": "...", "hex": "<Go's encoding>"}, ...]
// Prints to stdout: [{"name", "value": <tagged JSON>, "hex": "<encoding
// of the decoded value>"} or {"name", "error"}, ...]. Tagged JSON is the
// decoded value as JSON, with what JSON cannot say tagged:
// {"$bigint": "123"}, {"$bin": "<hex>"}, {"$date": "<ISO 8601>"},
// {"$ext": type, "data": "<hex>"}, {"$num": "NaN" | "Infinity" | "-Infinity"}.

import { readFileSync } from 'node:fs';
import { decode, encode, ExtData } from './msgpack.js';

const hex = (b) => Buffer.from(b).toString('hex');

function tag(v) {
  if (typeof v === 'bigint') return { $bigint: String(v) };
  if (typeof v === 'number' && !Number.isFinite(v)) return { $num: String(v) };
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof Uint8Array) return { $bin: hex(v) };
  if (v instanceof Date) return { $date: v.toISOString() };
  if (v instanceof ExtData) return { $ext: v.type, data: hex(v.data) };
  if (Array.isArray(v)) return v.map(tag);
  const o = {};
  for (const k of Object.keys(v)) o[k] = tag(v[k]);
  return o;
}

const cases = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const out = cases.map(({ name, hex: h }) => {
  try {
    const v = decode(Buffer.from(h, 'hex'));
    return { name, value: tag(v), hex: hex(encode(v)) };
  } catch (err) {
    return { name, error: String(err) };
  }
});
process.stdout.write(JSON.stringify(out));
