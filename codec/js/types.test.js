// Checks that shockwave.d.ts and msgpack.d.ts declare every export of
// shockwave.js and msgpack.js, and nothing they do not export, each as what
// it is (a function, a class, a constant). It reads the declarations as
// text, so it needs no TypeScript: `node --test codec/js/`. That the
// declarations are right and complete in their types is checked by tsc
// (codec/js/types_test.go, with types-check.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

// declared returns the values a declaration file exports, by name: kind
// 'function', 'class' or 'const'. Types and interfaces are left out: they
// have no value at run time. An export statement it does not know fails
// the test, so that no export escapes it.
function declared(file) {
  const text = readFileSync(new URL(file, import.meta.url), 'utf8');
  const values = new Map();
  for (const [i, line] of text.split('\n').entries()) {
    if (!/^\s*export\b/.test(line)) continue;
    const m = /^export (?:declare )?(function|class|const|let|var|type|interface) ([A-Za-z_$][\w$]*)/.exec(line);
    assert.ok(m, `${file}:${i + 1}: an export this test cannot read: ${line}`);
    const [, kind, name] = m;
    if (kind === 'type' || kind === 'interface') continue;
    // Overloads declare a function more than once.
    assert.ok(!values.has(name) || (kind === 'function' && values.get(name) === 'function'), `${file}: ${name} declared twice`);
    values.set(name, kind === 'let' || kind === 'var' ? 'const' : kind);
  }
  return values;
}

// kindOf says what a module's export is, in the words of declared.
function kindOf(value) {
  if (typeof value !== 'function') return 'const';
  return /^class\b/.test(Function.prototype.toString.call(value)) ? 'class' : 'function';
}

for (const [module, types] of [
  ['./shockwave.js', './shockwave.d.ts'],
  ['./msgpack.js', './msgpack.d.ts'],
]) {
  test(`${types} declares every export of ${module}, as what it is`, async () => {
    const exports = await import(module);
    const values = declared(types);
    const actual = new Map(Object.keys(exports).map((name) => [name, kindOf(exports[name])]));
    const undeclared = [...actual.keys()].filter((name) => !values.has(name));
    const missing = [...values.keys()].filter((name) => !actual.has(name));
    assert.deepEqual(undeclared, [], `exported by ${module} but not declared in ${types}`);
    assert.deepEqual(missing, [], `declared in ${types} but not exported by ${module}`);
    for (const [name, kind] of actual) {
      assert.equal(values.get(name), kind, `${name}: ${module} exports a ${kind}, ${types} declares a ${values.get(name)}`);
    }
  });
}

test('the string constants are declared with their values', async () => {
  const { SUBPROTOCOL, SUBPROTOCOL_MSGPACK } = await import('./shockwave.js');
  const text = readFileSync(new URL('./shockwave.d.ts', import.meta.url), 'utf8');
  for (const [name, value] of Object.entries({ SUBPROTOCOL, SUBPROTOCOL_MSGPACK })) {
    assert.match(text, new RegExp(`^export const ${name}: '${value.replace(/\./g, '\\.')}';$`, 'm'), name);
  }
});

test('the error classes name themselves as declared', async () => {
  const { ShockwaveError } = await import('./shockwave.js');
  const { MsgPackError } = await import('./msgpack.js');
  const types = readFileSync(new URL('./shockwave.d.ts', import.meta.url), 'utf8') + readFileSync(new URL('./msgpack.d.ts', import.meta.url), 'utf8');
  for (const err of [new ShockwaveError('x'), new MsgPackError('x')]) {
    assert.match(types, new RegExp(`^  name: '${err.name}';$`, 'm'), err.name);
  }
});
