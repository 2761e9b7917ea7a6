/**
 * Route reflector at scale (bench/bgp/rr-scale.ts with a shorter churn): our speaker, configured from
 * etcd as a reflector (rr_cluster_id, one passive peer per client, kernel programming on), with
 * 500 route-reflector clients (the issue's size; RR_TEST_CLIENTS to change it) that each announce 20 /32s
 * and then churn for 20 s (every second 10% of them withdraw everything and re-announce it).
 * Hold time 9 s on both sides, and the clients enforce it, so a stalled reflector shows as a drop.
 * Asserted, with no timing: every session stays Established throughout (clients saw no
 * NOTIFICATION, reset or hold expiry; our peerStatus shows the same sessions up at the end), every
 * client ends with exactly the other clients' routes, and every reflected route carries the
 * originating client as next hop and ORIGINATOR_ID and our cluster id as CLUSTER_LIST.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startEtcd, TestEtcd } from '../harness/etcd.js';
import { runScenario, ScenarioResult } from '../../bench/bgp/rr-clients-scenario.js';

const N = Number(process.env.RR_TEST_CLIENTS ?? 500);
const R = 20;
let etcd: TestEtcd;
let dir: string;
let r: ScenarioResult;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bgp-rr-scale-test-'));
  etcd = await startEtcd();
  r = await runScenario({
    reflector: 'ours', clients: N, routesPerClient: R, churnMs: 20_000, churnPeriodMs: 1000, churnFraction: 0.1, holdTime: 9,
    // Bounds on waiting only (a hung run fails instead of hanging); nothing is asserted about time.
    convergeTimeoutMs: 120_000, etcd, workDir: dir, tag: 't',
    log: process.env.BGP_TEST_DEBUG ? (m) => console.log(m) : undefined,
  });
});

after(async () => {
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test(`${N} route-reflector clients: every session stays Established while routes churn`, () => {
  assert.equal(r.establishedStart, N, `all sessions up at the start (${r.connectFailures.slice(0, 3).join('; ')})`);
  assert.deepEqual(r.stats.drops, [], 'no client saw its session drop');
  assert.equal(r.stats.notificationsReceived, 0);
  assert.equal(r.stats.established, N);
  assert.equal(r.stats.everEstablished, N, 'each client established exactly once');
  assert.equal(r.reflectorUpEnd, N, 'our peerStatus: every session up at the end');
  assert.equal(r.reflectorReestablished, 0, 'our peerStatus: no session was re-established');
  assert.deepEqual(r.reflectorLogDrops, [], 'our log has no hold expiry or session down');
  assert.ok(r.churn.waves >= 20 && r.churn.prefixesReceived > 0, 'the churn happened and was reflected');
});

test('every client ends with exactly the other clients\' routes; the reflector programs them all', () => {
  assert.ok(r.initialComplete, 'the initial routes reached every client');
  assert.ok(r.afterChurnComplete, 'the routes converged after the churn');
  assert.equal(r.stats.complete, N);
  assert.equal(r.stats.missingTotal, 0);
  assert.equal(r.stats.extraTotal, 0, 'nobody got its own routes back or anything else');
  assert.equal(r.kernelRoutes, N * R, 'every client route is in our kernel');
});

test('reflected routes carry ORIGINATOR_ID and CLUSTER_LIST, next hop unchanged', () => {
  assert.ok(r.stats.attrsChecked >= N * (N - 1) * R, `every reflected route was checked (${r.stats.attrsChecked})`);
  assert.equal(r.stats.badAttrs, 0, r.stats.badAttrExamples.join('\n'));
});
