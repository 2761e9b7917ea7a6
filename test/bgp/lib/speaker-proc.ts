/**
 * Runs a BgpSpeaker in a child process inside a network namespace (`nsenter --net=...`), so that
 * it binds and programs routes there. The child reaches the test's etcd (on the root namespace's
 * loopback) through a relay over a Unix socket, which crosses namespaces because it is a file.
 * The parent talks to the child over Node's IPC channel: status, routes, stop.
 */
import { spawn, ChildProcess } from 'node:child_process';
import net from 'node:net';
import { openSync, closeSync, rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { BgpSpeakerOptions } from '../../../node/bgp/speaker.js';

const owned = new Set<ChildProcess>();
process.on('exit', () => { for (const c of owned) { try { process.kill(c.pid!, 'SIGKILL'); } catch { /* gone */ } } });

export type ChildSpeakerOptions = Omit<BgpSpeakerOptions, 'kv' | 'logger' | 'nodeName'>;

let relayCount = 0;

/** Unix socket -> 127.0.0.1:port relay in this (root namespace) process. */
export function startRelay(port: number): Promise<{ path: string; close(): void }> {
  const path = join(tmpdir(), `bgp-etcd-${process.pid}-${relayCount++}.sock`);
  rmSync(path, { force: true });
  const conns = new Set<net.Socket>();
  const server = net.createServer((c) => {
    const up = net.connect(port, '127.0.0.1');
    conns.add(c); conns.add(up);
    c.pipe(up); up.pipe(c);
    const done = () => { c.destroy(); up.destroy(); conns.delete(c); conns.delete(up); };
    c.on('error', done); up.on('error', done); c.on('close', done); up.on('close', done);
  });
  return new Promise((resolve) => server.listen(path, () => resolve({
    path,
    close: () => { for (const c of conns) c.destroy(); server.close(); rmSync(path, { force: true }); },
  })));
}

export interface SpeakerProc {
  pid: number;
  logFile: string;
  call<T = unknown>(cmd: string, arg?: unknown): Promise<T>;
  /** Stops via IPC (graceful or not), then waits for exit. */
  stop(graceful?: boolean): Promise<void>;
  /** SIGKILL, as in a crash. */
  kill(): Promise<void>;
  exited: Promise<number | null>;
  log(): string;
}

export async function startSpeakerInNs(ns: string, etcdEndpoint: string, nodeName: string, opts: ChildSpeakerOptions, logFile: string, nodeArgs: string[] = []): Promise<SpeakerProc> {
  const port = Number(new URL(etcdEndpoint).port);
  const relay = await startRelay(port);
  const fd = openSync(logFile, 'a');
  const script = join(__dirname, 'speaker-child.js');
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, ...nodeArgs, script], {
    stdio: ['ignore', fd, fd, 'ipc'],
    env: { ...process.env, BGP_NODE: nodeName, BGP_ETCD_PORT: String(port), BGP_RELAY: relay.path, BGP_OPTS: JSON.stringify(opts), CALICO_LOG_LEVEL: process.env.CALICO_LOG_LEVEL ?? 'info' },
  });
  closeSync(fd);
  owned.add(child);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => { owned.delete(child); relay.close(); r(code); }));
  let seq = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (m: { id: number; result?: unknown; error?: string; ready?: boolean }) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.error) w.reject(new Error(m.error)); else w.resolve(m.result);
  });
  void exited.then(() => { for (const w of waiting.values()) w.reject(new Error('speaker process exited')); waiting.clear(); });
  const call = <T>(cmd: string, arg?: unknown): Promise<T> => new Promise<T>((resolve, reject) => {
    const id = ++seq;
    waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
    if (!child.connected) { waiting.delete(id); reject(new Error('speaker process is not running')); return; }
    child.send({ id, cmd, arg });
  });
  await call('ready').catch(async (err) => {
    throw new Error(`speaker did not start: ${String(err)}\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
  });
  return {
    pid: child.pid!,
    logFile,
    call,
    exited,
    log: () => readFileSync(logFile, 'utf8'),
    async stop(graceful = false) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await call('stop', { graceful }).catch(() => undefined);
      const t = setTimeout(() => { try { process.kill(child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 15000);
      await exited;
      clearTimeout(t);
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(child.pid!, 'SIGKILL');
      await exited;
    },
  };
}
