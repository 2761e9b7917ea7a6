/** The lossless JSON editor used on create bodies and inspect answers (pure logic). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonDocument, LosslessNumber, serialize } from '../../proxy/json-document.js';
import { JsonSyntaxError } from '../../proxy/errors.js';

const CREATE = `{
  "Image": "busybox",
  "Env": ["CALICO_IP=10.0.0.5", "A=b"],
  "HostConfig": {"Memory": 9007199254740993, "NanoCpus": 1.50, "MemorySwap": -1, "FutureField": {"x": [1e400]}},
  "Labels": {"__proto__": "kept"},
  "Unknown": null
}
trailing bytes the daemon ignores`;

test('an unedited document gives back the exact bytes it was parsed from', () => {
  const buf = Buffer.from(CREATE);
  const doc = JsonDocument.parse(buf);
  assert.equal(doc.changed, false);
  assert.equal(doc.toBuffer(), buf);
});

test('int64 and unusual number spellings survive an edit elsewhere', () => {
  const doc = JsonDocument.parse(CREATE);
  doc.set(['HostConfig', 'NetworkMode'], 'none');
  const out = doc.toString();
  assert.match(out, /"Memory":9007199254740993/);
  assert.match(out, /"NanoCpus":1\.50/);
  assert.match(out, /"FutureField":\{"x": \[1e400\]\}/, 'an untouched sub-object keeps its own text, whitespace included');
  assert.match(out, /"NetworkMode":"none"/);
  assert.ok(out.endsWith('\ntrailing bytes the daemon ignores'));
  // Values outside the edited path keep their own text (objects on the path are re-joined compactly).
  assert.ok(out.includes('"Env":["CALICO_IP=10.0.0.5", "A=b"]'));
  assert.deepEqual(JSON.parse(out.slice(0, out.indexOf('\ntrailing')).replace('9007199254740993', '0').replace('1e400', '0')).Labels, { ['__proto__']: 'kept' });
});

test('reading gives plain values, with LosslessNumber where a JS number would round', () => {
  const doc = JsonDocument.parse(CREATE);
  assert.deepEqual(doc.get(['Env']), ['CALICO_IP=10.0.0.5', 'A=b']);
  assert.equal(doc.get(['HostConfig', 'MemorySwap']), -1);
  const mem = doc.get(['HostConfig', 'Memory']);
  assert.ok(mem instanceof LosslessNumber);
  assert.equal((mem as LosslessNumber).text, '9007199254740993');
  assert.equal(doc.get(['Unknown']), null);
  assert.equal(doc.get(['Nope']), undefined);
  const labels = doc.get(['Labels']) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(labels), Object.prototype, '__proto__ key does not replace the prototype');
  assert.equal(Object.getOwnPropertyDescriptor(labels, '__proto__')?.value, 'kept');
});

test('keys match case-insensitively and the last duplicate wins, as in Go', () => {
  const doc = JsonDocument.parse('{"hostconfig":{"NetworkMode":"bridge"},"HOSTCONFIG":{"networkmode":"host"}}');
  assert.equal(doc.get(['HostConfig', 'NetworkMode']), 'host');
  doc.set(['HostConfig', 'NetworkMode'], 'none');
  // The value Go would use (the last HostConfig's networkmode) is the one replaced; nothing else moves.
  assert.equal(doc.toString(), '{"hostconfig":{"NetworkMode":"bridge"},"HOSTCONFIG":{"networkmode":"none"}}');
});

test('set creates missing objects and replaces a null in the way', () => {
  const doc = JsonDocument.parse('{"Image":"busybox","HostConfig":null}');
  doc.set(['HostConfig', 'NetworkMode'], 'none');
  doc.set(['NetworkingConfig', 'EndpointsConfig', 'calico'], {});
  assert.equal(doc.toString(), '{"Image":"busybox","HostConfig":{"NetworkMode":"none"},"NetworkingConfig":{"EndpointsConfig":{"calico":{}}}}');
  assert.deepEqual(JSON.parse(doc.toString()), {
    Image: 'busybox', HostConfig: { NetworkMode: 'none' }, NetworkingConfig: { EndpointsConfig: { calico: {} } },
  });
});

test('values set by hooks keep exact integers (bigint, LosslessNumber) and can be read back', () => {
  const doc = JsonDocument.parse('{"A":1}');
  doc.set(['Big'], 18446744073709551615n);
  doc.set(['Exact'], new LosslessNumber('1.000'));
  doc.set(['List'], ['x', 2, true, null, { k: 'v' }]);
  assert.equal(doc.toString(), '{"A":1,"Big":18446744073709551615,"Exact":1.000,"List":["x",2,true,null,{"k":"v"}]}');
  assert.deepEqual(doc.get(['List', 4]), { k: 'v' });
  doc.set(['List', 4, 'k'], 'w');
  assert.equal(doc.get(['List', 4, 'k']), 'w');
});

test('array elements: replace by index, out-of-range is refused without modifying anything', () => {
  const doc = JsonDocument.parse('{"Env":["A=1","B=2"]}');
  doc.set(['Env', 1], 'B=3');
  assert.equal(doc.toString(), '{"Env":["A=1","B=3"]}');
  const before = doc.toString();
  assert.throws(() => doc.set(['Env', 2], 'C=1'), RangeError);
  assert.throws(() => doc.set(['New', 'Deep', 0], 'x'), RangeError);
  assert.throws(() => doc.set(['Env', 'name'], 'x'), TypeError);
  assert.equal(doc.toString(), before);
});

test('delete removes every case variant Go would decode into the field', () => {
  const doc = JsonDocument.parse('{"Hostname":"a","hostname":"b","Image":"x"}');
  assert.equal(doc.delete(['HOSTNAME']), true);
  assert.equal(doc.toString(), '{"Image":"x"}');
  assert.equal(doc.delete(['Missing']), false);
});

test('invalid JSON is a JsonSyntaxError with an offset', () => {
  for (const bad of ['', '{', '{"a":}', '{"a" 1}', '[1,]', '{"a":01}', '"\u0001"', '{"a":tru}', '\ufeff{}', '{"a":"\\x"}']) {
    assert.throws(() => JsonDocument.parse(bad), JsonSyntaxError, `should reject ${JSON.stringify(bad)}`);
  }
  const deep = '['.repeat(5000) + ']'.repeat(5000);
  assert.throws(() => JsonDocument.parse(deep), JsonSyntaxError);
});

test('strings with escapes and non-ASCII text round-trip through an edit', () => {
  const src = '{"Cmd":["sh","-c","echo \\"h\\u00e9\\" ✓"],"Labels":{"k\\n":"v"}}';
  const doc = JsonDocument.parse(src);
  assert.deepEqual(doc.get(['Cmd']), ['sh', '-c', 'echo "hé" ✓']);
  assert.equal(doc.get(['Labels', 'k\n']), 'v');
  doc.set(['Labels', 'new'], 'é');
  assert.equal(doc.toString(), '{"Cmd":["sh","-c","echo \\"h\\u00e9\\" ✓"],"Labels":{"k\\n":"v","new":"é"}}');
});

test('serialize refuses values JSON cannot hold', () => {
  assert.throws(() => serialize(Number.NaN), TypeError);
  assert.throws(() => serialize(Infinity), TypeError);
  assert.throws(() => serialize((() => 1) as unknown as string), TypeError);
});
