/**
 * Work that happens outside the proxy, caught from the daemon's event stream: a container
 * started by its restart policy, a daemon restart or the direct socket is (re-)wired; a container
 * removed by `--rm`, the direct socket or anyone else is cleaned up. The stream is re-opened with
 * `since` after any interruption, so no event is missed.
 */
import { Logger } from '../../src/log.js';
import { WorkloadManager } from './manager.js';

interface DockerEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string };
  time?: number;
  timeNano?: number;
}

export class DockerEventWatcher {
  private stopped = false;
  private current?: { destroy(): void };
  private since = Math.floor(Date.now() / 1000);
  private readonly log: Logger;
  private loop?: Promise<void>;

  constructor(private readonly mgr: WorkloadManager, logger: Logger) {
    this.log = logger.child({ component: 'docker-events' });
  }

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.destroy();
    await this.loop;
  }

  private async run(): Promise<void> {
    let delay = 200;
    while (!this.stopped) {
      try {
        await this.follow();
        delay = 200;
      } catch (err) {
        if (this.stopped) return;
        this.log.warn('docker event stream interrupted; reconnecting', { err: err as Error, retryMs: delay });
      }
      if (this.stopped) return;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }

  private async follow(): Promise<void> {
    const filters = encodeURIComponent(JSON.stringify({ type: ['container'], event: ['start', 'destroy'] }));
    const stream = await this.mgr.daemon.openStream(`/events?since=${this.since}&filters=${filters}`);
    this.current = stream;
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) this.handle(line);
        }
      });
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
  }

  private handle(line: string): void {
    let ev: DockerEvent;
    try { ev = JSON.parse(line) as DockerEvent; } catch { return; }
    const id = ev.Actor?.ID ?? ev.id;
    const action = ev.Action ?? ev.status;
    if (ev.time) this.since = Math.max(this.since, ev.time);
    if (!id) return;
    if (action === 'start') {
      this.mgr.ensureWired(id)
        .then((r) => { if (r === 'wired') this.log.info('re-wired a container started outside the proxy', { container: id }); })
        .catch((err: unknown) => this.log.error('could not wire container', { container: id, err: err as Error }));
    } else if (action === 'destroy') {
      this.mgr.withContainerLock(id, () => this.mgr.teardown(id))
        .catch((err: unknown) => this.log.error('could not clean up removed container', { container: id, err: err as Error }));
    }
  }
}
