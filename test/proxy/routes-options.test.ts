/** Route matching, listen-address parsing and the browser guard (pure logic). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseApiPath, matchRoute } from '../../proxy/routes.js';
import { parseListenAddress, resolveProxyOptions, isLoopbackHost } from '../../proxy/options.js';
import { refusalReason } from '../../proxy/guard.js';
import { ProxyConfigError, InterceptRefusal } from '../../proxy/errors.js';

test('versioned and unversioned paths route alike; the query is ignored', () => {
  for (const url of ['/v1.41/containers/create?name=web', '/containers/create', '/v1.24/containers/create']) {
    const p = parseApiPath(url)!;
    assert.deepEqual(matchRoute('POST', p.path), { kind: 'create' }, url);
  }
  const p = parseApiPath('/v1.41/containers/create?name=web')!;
  assert.equal(p.apiVersion, '1.41');
  assert.equal(p.query.get('name'), 'web');
  assert.equal(parseApiPath('/containers/create')!.apiVersion, undefined);
});

test('percent-encoded paths are decoded before matching, as the daemon routes them', () => {
  assert.deepEqual(matchRoute('POST', parseApiPath('/v1.41/containers/cr%65ate')!.path), { kind: 'create' });
  assert.deepEqual(matchRoute('POST', parseApiPath('/v%31.41/containers/abc/st%61rt')!.path), { kind: 'start', containerRef: 'abc' });
  assert.equal(parseApiPath('/containers/%zz/json'), undefined);
});

test('start, restart, inspect and delete carry the container reference; others are not intercepted', () => {
  const m = (method: string, url: string) => matchRoute(method, parseApiPath(url)!.path);
  assert.deepEqual(m('POST', '/v1.41/containers/web/start'), { kind: 'start', containerRef: 'web' });
  assert.deepEqual(m('POST', '/containers/0123abc/restart?t=1'), { kind: 'restart', containerRef: '0123abc' });
  assert.deepEqual(m('GET', '/v1.41/containers/web/json'), { kind: 'inspect', containerRef: 'web' });
  assert.deepEqual(m('DELETE', '/v1.41/containers/web?force=1'), { kind: 'delete', containerRef: 'web' });
  assert.equal(m('GET', '/v1.41/containers/json'), undefined, 'the container list is not an inspect');
  assert.equal(m('POST', '/v1.41/containers/web/stop'), undefined);
  assert.equal(m('GET', '/v1.41/containers/create'), undefined);
  assert.equal(m('DELETE', '/v1.41/containers/a/b'), undefined);
  assert.equal(m('POST', '/v1.41/exec/abc/start'), undefined);
});

test('listen addresses: host:port, tcp://, [v6]:port and unix sockets; bad ones are refused clearly', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:2377'), { kind: 'tcp', host: '127.0.0.1', port: 2377 });
  assert.deepEqual(parseListenAddress('tcp://localhost:0'), { kind: 'tcp', host: 'localhost', port: 0 });
  assert.deepEqual(parseListenAddress('[::1]:2377'), { kind: 'tcp', host: '::1', port: 2377 });
  assert.deepEqual(parseListenAddress('/run/calico/docker.sock'), { kind: 'unix', path: '/run/calico/docker.sock' });
  assert.deepEqual(parseListenAddress('unix:///run/x.sock'), { kind: 'unix', path: '/run/x.sock' });
  for (const bad of ['2377', ':2377', 'host', '1.2.3.4:99999', '[zz]:1', 'unix://', '/' + 'x'.repeat(120)]) {
    assert.throws(() => parseListenAddress(bad), ProxyConfigError, bad);
  }
});

test('a non-loopback listener without tlsverify is refused; loopback is the default', () => {
  assert.deepEqual(resolveProxyOptions({}).listen, { kind: 'tcp', host: '127.0.0.1', port: 2377 });
  assert.equal(resolveProxyOptions({}).dockerSocket, '/var/run/docker.sock');
  assert.throws(() => resolveProxyOptions({ proxyListen: '0.0.0.0:2377' }), (err: unknown) => {
    assert.ok(err instanceof ProxyConfigError);
    assert.match(err.message, /without --tlsverify/);
    assert.ok(err.hint);
    return true;
  });
  assert.throws(() => resolveProxyOptions({ proxyListen: '10.1.2.3:2377', tls: true, tlscert: '/nonexistent', tlskey: '/nonexistent' }), /without --tlsverify/);
  assert.throws(() => resolveProxyOptions({ proxyListen: '10.1.2.3:2377', tlsverify: true, tlscert: '/nonexistent/cert.pem' }), /cannot read tlscert \/nonexistent\/cert\.pem/);
  assert.throws(() => resolveProxyOptions({ dockerSocket: 'tcp://1.2.3.4:2375' }), /unix socket/);
  assert.equal(resolveProxyOptions({ dockerSocket: 'unix:///x/d.sock' }).dockerSocket, '/x/d.sock');
  assert.ok(isLoopbackHost('127.0.0.2') && isLoopbackHost('::1') && isLoopbackHost('localhost'));
  assert.ok(!isLoopbackHost('0.0.0.0') && !isLoopbackHost('::') && !isLoopbackHost('example.com'));
});

test('browser headers and foreign Host names are refused; docker clients pass', () => {
  const policy = { trustAnyHost: false, allowedHostNames: new Set(['docker.internal.test']) };
  assert.equal(refusalReason(raw({ host: '127.0.0.1:2377', 'user-agent': 'Docker-Client/28.2.2 (linux)' }), policy), undefined);
  assert.equal(refusalReason(raw({ host: 'api.moby.localhost' }), policy), undefined);
  assert.equal(refusalReason(raw({ host: 'localhost:2377' }), policy), undefined);
  assert.equal(refusalReason(raw({ host: '[::1]:2377' }), policy), undefined);
  assert.equal(refusalReason(raw({ host: 'docker.internal.test:2377' }), policy), undefined);
  assert.match(refusalReason(raw({ host: '127.0.0.1:2377', origin: 'http://evil.example' }), policy)!, /web browsers.*origin/);
  assert.match(refusalReason(raw({ host: '127.0.0.1:2377', 'sec-fetch-mode': 'no-cors' }), policy)!, /sec-fetch-mode/);
  assert.match(refusalReason(raw({ host: '127.0.0.1:2377', referer: 'http://x/' }), policy)!, /referer/);
  assert.match(refusalReason(raw({ host: 'rebind.evil.example:2377' }), policy)!, /refuses Host "rebind\.evil\.example:2377"/);
  assert.equal(refusalReason(raw({ host: 'anything.example' }), { ...policy, trustAnyHost: true }), undefined);
});

/** {name: value} -> [name, value, ...] as Node's rawHeaders. */
function raw(headers: Record<string, string>): string[] {
  return Object.entries(headers).flat();
}

test('InterceptRefusal only takes error statuses', () => {
  assert.equal(new InterceptRefusal(409, 'x').status, 409);
  assert.throws(() => new InterceptRefusal(200, 'x'), RangeError);
});
