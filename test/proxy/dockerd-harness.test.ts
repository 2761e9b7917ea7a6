/**
 * The shared test harness for a real dockerd (test/harness/dockerd.ts) and the busybox image
 * (test/harness/busybox-image.ts): two daemons side by side, a daemon inside a network namespace,
 * and nothing left behind after stop() — no process, no mount, no directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { startDockerd, mountPointsUnder, TestDockerd } from '../harness/dockerd.js';
import { importBusybox } from '../harness/busybox-image.js';
import { docker, uniq, TEST_TIMEOUT_MS } from './helpers.js';

function processesMentioning(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes(dir)) found.push(`${pid}: ${cmd.replace(/\0/g, ' ')}`);
    } catch { /* exited */ }
  }
  return found;
}

function assertGone(d: TestDockerd): void {
  assert.equal(existsSync(d.dir), false, `${d.dir} removed`);
  assert.deepEqual(mountPointsUnder(d.dir), []);
  assert.deepEqual(processesMentioning(d.dir), []);
  assert.throws(() => process.kill(d.pid, 0), 'dockerd has exited');
}

test('two dockerds run side by side, each with its own containers, and stop cleanly', { timeout: TEST_TIMEOUT_MS }, async () => {
  const [a, b] = await Promise.all([startDockerd(), startDockerd()]);
  try {
    assert.notEqual(a.socket, b.socket);
    const [ia, ib] = await Promise.all([importBusybox(a.env), importBusybox(b.env)]);
    assert.match(ia, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await importBusybox(a.env), ia, 'importing again keeps the image');
    assert.match(ib, /^sha256:/);
    const name = uniq('side');
    assert.equal((await docker(a.env, ['run', '-d', '--name', name, 'busybox', 'sleep', '600'])).status, 0);
    assert.equal((await docker(b.env, ['run', '-d', '--name', name, 'busybox', 'sleep', '600'])).status, 0, 'same name on the other daemon');
    assert.equal((await docker(a.env, ['ps', '-q'])).stdout.trim().split('\n').length, 1);
    assert.equal((await docker(b.env, ['ps', '-q'])).stdout.trim().split('\n').length, 1);
    // Mounts exist while containers run; stop() must take them away.
    assert.ok(mountPointsUnder(a.dir).length > 0);
    const applets = await docker(a.env, ['run', '--rm', 'busybox', 'ls', '/bin/sh', '/bin/ping', '/usr/bin/nc', '/sbin/ip', '/sbin/ifconfig',
      '/bin/sleep', '/bin/cat', '/bin/echo', '/bin/ls', '/usr/bin/wget', '/bin/hostname', '/usr/bin/top', '/sbin/route', '/sbin/arp']);
    assert.equal(applets.status, 0, applets.stderr);
    assert.equal(applets.stdout.trim().split('\n').length, 14, applets.stdout);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  assertGone(a);
  assertGone(b);
});

test('a dockerd inside a network namespace (nsenter --net) sees only that namespace', { timeout: TEST_TIMEOUT_MS }, async () => {
  const ns = uniq('dkh').slice(0, 15);
  assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
  let d: TestDockerd | undefined;
  try {
    spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    assert.equal(spawnSync('ip', ['-n', ns, 'link', 'add', 'dkh0', 'type', 'veth', 'peer', 'name', 'dkh1']).status, 0);
    d = await startDockerd({ netns: ns });
    assert.equal(statSync(`/proc/${d.pid}/ns/net`).ino, statSync(`/run/netns/${ns}`).ino, 'dockerd runs in the namespace');
    await importBusybox(d.env);
    const links = await docker(d.env, ['run', '--rm', '--network', 'host', 'busybox', 'ls', '/sys/class/net']);
    assert.equal(links.stdout, 'dkh0\ndkh1\nlo\n');
  } finally {
    await d?.stop();
    spawnSync('ip', ['netns', 'delete', ns]);
  }
  if (d) assertGone(d);
  await assert.rejects(startDockerd({ netns: 'no-such-netns-xyz' }), /network namespace no-such-netns-xyz does not exist/);
});

test('a dockerd that cannot start fails with its log and leaves nothing', { timeout: TEST_TIMEOUT_MS }, async () => {
  let dir = '';
  await assert.rejects(startDockerd({ extraArgs: ['--no-such-flag'] }), (err: Error) => {
    assert.match(err.message, /dockerd did not start/);
    assert.match(err.message, /no-such-flag/);
    return true;
  });
  // The temp dir name is not returned on failure; check that no /tmp/dkd-* dir mentions the flag.
  for (const name of readdirSync('/tmp').filter((n) => n.startsWith('dkd-'))) {
    const log = `/tmp/${name}/dockerd.log`;
    if (existsSync(log) && readFileSync(log, 'utf8').includes('no-such-flag')) dir = name;
  }
  assert.equal(dir, '');
});
