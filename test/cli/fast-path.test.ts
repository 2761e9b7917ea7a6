/**
 * The fast path (cli/fast.ts) against commander (cli/program.ts): for every command line the fast
 * parser takes, both must call the same handler with the same arguments, options and global
 * options; everything else (help, usage errors, unusual spellings) must be left to commander.
 * Pure parsing logic, so the three handlers are replaced by recorders here; the real commands run
 * end to end through bin/calicoctl in the other cli tests (errors.test.ts checks --help and usage
 * exit codes).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseFast } from '../../cli/fast.js';
import { buildProgram } from '../../cli/program.js';
import { main } from '../../cli/main.js';
import { getGlobals } from '../../cli/context.js';

interface Call { handler: string; args: unknown[]; globals: unknown }

let calls: Call[] = [];
const restore: Array<() => void> = [];

before(() => {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const modules: Array<[Record<string, unknown>, string, string]> = [
    [require('../../cli/commands/resources.js') as Record<string, unknown>, 'get', 'resources.get'],
    [require('../../cli/commands/profile.js') as Record<string, unknown>, 'show', 'profile.show'],
    [require('../../cli/commands/pool.js') as Record<string, unknown>, 'show', 'pool.show'],
  ];
  /* eslint-enable @typescript-eslint/no-require-imports */
  for (const [mod, fn, handler] of modules) {
    const original = mod[fn];
    mod[fn] = async (...args: unknown[]) => { calls.push({ handler, args: structuredClone(args), globals: { ...getGlobals() } }); };
    restore.push(() => { mod[fn] = original; });
  }
});
after(() => { for (const r of restore) r(); });

async function viaCommander(argv: string[]): Promise<Call[]> {
  calls = [];
  await buildProgram().parseAsync(argv, { from: 'user' });
  return calls;
}

async function viaMain(argv: string[]): Promise<Call[]> {
  calls = [];
  await main(argv);
  return calls;
}

const TAKEN: string[][] = [
  ['get', 'workloadEndpoint'],
  ['get'],
  ['get', 'wep', 'a', 'b'],
  ['get', 'profiles', '-o', 'yaml'],
  ['get', '-o', 'wide', 'profiles'],
  ['get', 'wep', 'a', '-o', 'json', 'b'],
  ['get', 'wep', '--node=host-1', '--orchestrator', 'docker', '--workload', 'w1'],
  ['get', 'bgpPeer', '--scope', 'global', '-o', 'json', '-o', 'yaml'],
  ['get', 'wep', '--output='],
  ['get', '-f', '-'],
  ['get', '--filename=x.yaml'],
  ['get', '-', 'x'],
  ['-c', '/tmp/calicoctl.cfg', 'get', 'profile'],
  ['--config=/tmp/calicoctl.cfg', '-l', 'debug', 'get', 'profile'],
  ['--log-level', 'debug', 'profile', 'show'],
  ['-c', 'get', 'profile', 'show'],
  ['profile', 'show'],
  ['profile', 'show', '--detailed'],
  ['profile', 'show', '-o', 'json', '--detailed'],
  ['pool', 'show'],
  ['pool', 'show', '--ipv4', '--ipv6', '--output', 'yaml'],
];

test('the fast path calls the same handlers as commander, with the same arguments and globals', async () => {
  for (const argv of TAKEN) {
    const fast = parseFast(argv);
    assert.ok(fast, `fast path takes ${argv.join(' ')}`);
    const expected = await viaCommander(argv);
    assert.equal(expected.length, 1, `commander ran one handler for ${argv.join(' ')}`);
    assert.deepEqual(await viaMain(argv), expected, argv.join(' '));
  }
  assert.equal(process.exitCode, 0);
});

test('help, usage errors and unusual spellings are left to commander', () => {
  const LEFT: string[][] = [
    [],
    ['--help'], ['-h'], ['help', 'get'], ['get', '--help'], ['get', '-h'], ['profile', 'show', '--help'],
    ['version'], ['profile'], ['profile', 'add', 'p'], ['profile', 'p', 'rule', 'show'], ['pool', 'add', '10.0.0.0/24'],
    ['get', 'wep', '--bogus'],
    ['get', '-owide'],
    ['get', 'wep', '-c', 'x.cfg'],
    ['get', 'wep', '-l', 'debug'],
    ['get', '--node'],
    ['get', '--node', '-o', 'yaml'],
    ['get', '--', 'wep'],
    ['profile', 'show', 'extra'],
    ['profile', 'show', '--at', '2'],
    ['profile', 'show', '--detailed=yes'],
    ['pool', 'show', '-'],
    ['-x', 'get'],
    ['-c'],
    ['-c=x.cfg', 'get'],
    ['show', 'profile'],
  ];
  for (const argv of LEFT) assert.equal(parseFast(argv), undefined, argv.join(' '));
});
