/**
 * The fast path for ordinary requests on plain (non-TLS) listeners. Bytes are relayed unchanged
 * both ways between a client connection and a daemon connection of its own (taken from the idle
 * ones when there is one: idle daemon connections serve later clients, as an agent's would), with
 * just enough HTTP/1.1 parsing (http1.ts) to know where each request and each answer ends.
 *
 * Why: on the 2-vCPU VM the benchmark runs on, Node's http server and client (forward.ts) cost
 * 290-470 µs of CPU per `GET /containers/json` and added 0.24-0.31 ms at p50 against a goal of
 * 0.2 ms, while a bare byte relay in Node adds 0.09-0.21 ms. The time went to the objects and
 * stream machinery of core http on both sides (ClientRequest, agent, two parsers,
 * IncomingMessage, ServerResponse, re-chunking), none of which a request the proxy does not touch
 * needs. This path adds 0.04-0.06 ms to the bare relay (bench/results/proxy.md, and
 * proxy-profile.md next to it for where the time goes).
 *
 * A connection is handed to Node's http server (server.ts: guard, hooks, tunnels, 502 answers),
 * for the rest of its life, at the first request this path does not take:
 *  - the guard would refuse it (the http server sends the 403),
 *  - an interceptor hooks its endpoint,
 *  - it is an upgrade (attach, exec, BuildKit), has Expect, or is not in the plainest HTTP/1.1
 *    form (http1.ts),
 *  - its head did not arrive whole in one read (large X-Registry-Config heads, slow senders: the
 *    http server's header size limit and headers timeout then apply),
 *  - the daemon cannot be reached (the http server answers 502 in the CLI's format).
 * The hand-over waits until the daemon has answered every request already relayed on the
 * connection, so answers never interleave; the bytes read but not relayed are put back on the
 * socket for the http server to parse.
 *
 * Otherwise the connection behaves like one to the daemon's own socket: a client's FIN while a
 * request is in flight is passed on (its answer still comes back), one between requests is
 * answered as the daemon would answer it (and the daemon connection kept for another client); a
 * client that goes away mid-answer closes the daemon connection (so `events` and `logs -f` stop);
 * a daemon that closes closes the client connection; there are no timeouts (waits and event
 * streams are silent for hours).
 */
import net from 'node:net';
import type http from 'node:http';
import type { Logger } from '../src/log.js';
import { parseRequestHead, BodyTracker, ResponseTracker, type RequestHead } from './http1.js';
import { HttpFramingError } from './errors.js';
import { sendRawJsonError } from './respond.js';

export interface FastPathOptions {
  dockerSocket: string;
  logger: Logger;
  /** May this request be relayed here? False hands the connection to the http server. */
  admit(head: RequestHead): boolean;
  /** Registers a daemon-side socket, so closing the proxy closes it. */
  track(socket: net.Socket): void;
}

/** Idle daemon connections kept for later client connections (a docker CLI command opens a new one each time). */
const MAX_IDLE_DAEMON_CONNECTIONS = 16;

/**
 * Puts the fast path in front of `server`'s own connection handling, which is kept for the
 * connections handed over. Node's http server sets up its parser in its 'connection' listener
 * (which is why injecting a connection with `emit('connection')` works, as its docs say).
 */
export function putFastPathInFront(server: http.Server, opts: FastPathOptions): void {
  const core = server.listeners('connection');
  if (core.length !== 1) throw new Error(`expected one 'connection' listener on a fresh http server, found ${core.length}`);
  const httpConnection = core[0] as (socket: net.Socket) => void;
  server.removeListener('connection', httpConnection);
  const handOff = (socket: net.Socket): void => httpConnection.call(server, socket);
  const idle = new IdleDaemonConnections(MAX_IDLE_DAEMON_CONNECTIONS);
  server.on('connection', (socket: net.Socket) => new FastConnection(socket, opts, idle, handOff));
}

/**
 * Daemon connections with every request on them answered, kept for the next client connection
 * as an http agent keeps its free sockets: HTTP/1.1 connections carry no state between requests,
 * and reusing one saves a connect and the daemon's accept. One the daemon closes, or that says
 * anything while idle, is dropped.
 */
class IdleDaemonConnections {
  private readonly idle = new Map<net.Socket, () => void>();

  constructor(private readonly max: number) {}

  take(): net.Socket | undefined {
    let last: net.Socket | undefined;
    for (const s of this.idle.keys()) last = s; // the most recently used: the warmest
    if (last !== undefined) this.unwatch(last);
    return last;
  }

  put(sock: net.Socket): void {
    if (this.idle.size >= this.max || sock.destroyed || !sock.readable || !sock.writable) {
      sock.destroy();
      return;
    }
    const drop = (): void => {
      this.unwatch(sock);
      sock.destroy();
    };
    this.idle.set(sock, drop);
    sock.on('data', drop);
    sock.on('end', drop);
    sock.on('error', drop);
    sock.on('close', drop);
    sock.resume();
  }

  private unwatch(sock: net.Socket): void {
    const drop = this.idle.get(sock);
    if (drop === undefined) return;
    this.idle.delete(sock);
    sock.removeListener('data', drop);
    sock.removeListener('end', drop);
    sock.removeListener('error', drop);
    sock.removeListener('close', drop);
  }
}

class FastConnection {
  private upstream: net.Socket | undefined;
  private connected = false;
  /** Bytes written to a new daemon connection before it was up: replayed to the http server if it never comes up. */
  private unconfirmed: Buffer[] = [];
  private readonly responses = new ResponseTracker();
  /** The body of the request being relayed, when its end is still to come. */
  private body: BodyTracker | undefined;
  /** Client bytes for the http server, once a hand-over is decided (it waits for owed answers). */
  private handOffBytes: Buffer | undefined;
  private clientEnded = false;
  /** We passed the client's FIN on to the daemon: the daemon connection cannot be reused. */
  private upstreamEnded = false;
  /** The daemon closed its side: the client's further bytes go nowhere. */
  private daemonClosed = false;

  constructor(
    private readonly client: net.Socket,
    private readonly opts: FastPathOptions,
    private readonly idle: IdleDaemonConnections,
    private readonly handOff: (socket: net.Socket) => void,
  ) {
    client.on('data', this.onClientData);
    client.on('end', this.onClientEnd);
    client.on('error', this.onClientError);
    client.on('close', this.onClientClose);
  }

  private readonly onClientData = (chunk: Buffer): void => {
    if (this.daemonClosed) return;
    let pos = 0;
    try {
      while (pos < chunk.length) {
        if (this.body !== undefined) {
          pos = this.body.consume(chunk, pos);
          if (this.body.done) this.body = undefined;
          continue;
        }
        const head = parseRequestHead(chunk, pos);
        if (typeof head === 'string' || !this.opts.admit(head)) {
          this.beginHandOff(chunk.subarray(pos));
          break;
        }
        this.responses.expect(head.method);
        pos = head.end;
        if (head.body.kind !== 'none') this.body = new BodyTracker(head.body);
      }
    } catch (err) {
      this.fail(err, 'client');
      return;
    }
    if (pos > 0) this.sendUpstream(pos === chunk.length ? chunk : chunk.subarray(0, pos));
  };

  private sendUpstream(bytes: Buffer): void {
    const up = this.upstream ?? this.openUpstream();
    if (!this.connected) this.unconfirmed.push(bytes);
    if (!up.write(bytes) && this.handOffBytes === undefined) {
      this.client.pause();
      up.once('drain', this.resumeClient);
    }
  }

  private readonly resumeClient = (): void => {
    if (this.handOffBytes === undefined) this.client.resume();
  };

  private openUpstream(): net.Socket {
    let up = this.idle.take();
    if (up !== undefined) {
      this.connected = true;
    } else {
      up = net.connect({ path: this.opts.dockerSocket, allowHalfOpen: true });
      this.opts.track(up);
      up.once('connect', () => {
        this.connected = true;
        this.unconfirmed = [];
      });
    }
    this.upstream = up;
    up.on('data', this.onUpstreamData);
    up.on('end', this.onUpstreamEnd);
    up.on('error', this.onUpstreamError);
    up.on('close', this.onUpstreamClose);
    return up;
  }

  private readonly onUpstreamData = (chunk: Buffer): void => {
    try {
      this.responses.feed(chunk);
    } catch (err) {
      this.fail(err, 'daemon');
      return;
    }
    if (!this.client.write(chunk)) {
      this.upstream?.pause();
      this.client.once('drain', this.resumeUpstream);
    }
    if (this.handOffBytes !== undefined && this.responses.idle) this.completeHandOff();
  };

  private readonly resumeUpstream = (): void => {
    this.upstream?.resume();
  };

  private readonly onUpstreamEnd = (): void => {
    this.responses.closed();
    this.daemonClosed = true;
    // Nothing will answer what the client still sends: read and drop it until the client closes.
    if (this.handOffBytes !== undefined) {
      this.handOffBytes = undefined;
      this.client.resume();
    }
    this.client.end();
    this.upstream?.end();
  };

  private readonly onUpstreamError = (err: Error): void => {
    if (!this.connected) {
      // The daemon cannot be reached: the http server answers in the CLI's format (502) and
      // tries again for each later request, as it does on its own connections.
      this.replayToHttpServer(err);
      return;
    }
    this.opts.logger.debug('daemon side of a fast-path connection failed', { error: err.message });
    this.client.destroy();
  };

  private readonly onUpstreamClose = (): void => {
    if (!this.client.destroyed && !this.client.writableEnded) this.client.destroy();
  };

  private readonly onClientEnd = (): void => {
    this.clientEnded = true;
    if (this.reusable()) {
      // Between requests a FIN only ends the conversation, as the daemon would answer it.
      this.releaseUpstream();
      this.client.end();
    } else if (this.upstream !== undefined) {
      // Mid-request: pass the half-close on; the daemon's answer still comes back.
      this.upstreamEnded = true;
      this.upstream.end();
    } else {
      this.client.end();
    }
  };

  private readonly onClientError = (err: Error): void => {
    this.opts.logger.debug('client side of a fast-path connection failed', { error: err.message });
  };

  private readonly onClientClose = (): void => {
    // A client that goes away mid-answer (Ctrl-C on `events`, `logs -f`) stops the daemon's side.
    if (this.reusable()) this.releaseUpstream();
    else this.upstream?.destroy();
  };

  /** The daemon connection can serve another client: every request answered, nothing half-closed. */
  private reusable(): boolean {
    return this.upstream !== undefined && this.connected && this.responses.idle && this.body === undefined
      && !this.upstreamEnded && !this.daemonClosed && !this.upstream.destroyed;
  }

  private releaseUpstream(): void {
    const up = this.upstream;
    if (up === undefined) return;
    this.detachUpstream();
    this.upstream = undefined;
    this.client.removeListener('drain', this.resumeUpstream);
    this.idle.put(up);
  }

  /** A request the fast path does not take: stop reading, and hand over once all owed answers are out. */
  private beginHandOff(rest: Buffer): void {
    this.client.pause();
    this.handOffBytes = rest;
    if (this.responses.idle && (this.upstream === undefined || this.connected)) this.completeHandOff();
  }

  private completeHandOff(): void {
    const rest = this.handOffBytes ?? Buffer.alloc(0);
    this.handOffBytes = undefined;
    if (this.reusable()) {
      this.releaseUpstream();
    } else if (this.upstream !== undefined) {
      this.upstream.destroy();
      this.detachUpstream();
      this.upstream = undefined;
    }
    this.giveToHttpServer(rest);
  }

  private replayToHttpServer(err: Error): void {
    const replay = Buffer.concat([...this.unconfirmed, ...(this.handOffBytes ? [this.handOffBytes] : [])]);
    this.unconfirmed = [];
    this.handOffBytes = undefined;
    this.detachUpstream();
    this.upstream = undefined;
    if (this.clientEnded) {
      // The socket has already delivered its end; it cannot be given back. Answer here.
      this.detachClient();
      this.client.on('error', () => { /* the client may be gone already */ });
      sendRawJsonError(this.client, 502, 'Bad Gateway', `cannot reach the docker daemon at ${this.opts.dockerSocket}: ${err.message}`);
      return;
    }
    this.client.pause();
    this.giveToHttpServer(replay);
  }

  private giveToHttpServer(bytes: Buffer): void {
    this.detachClient();
    if (bytes.length > 0) this.client.unshift(bytes);
    this.handOff(this.client);
    this.client.resume();
  }

  private detachClient(): void {
    const c = this.client;
    c.removeListener('data', this.onClientData);
    c.removeListener('end', this.onClientEnd);
    c.removeListener('error', this.onClientError);
    c.removeListener('close', this.onClientClose);
    c.removeListener('drain', this.resumeUpstream);
  }

  private detachUpstream(): void {
    const up = this.upstream;
    if (up === undefined) return;
    up.removeListener('data', this.onUpstreamData);
    up.removeListener('end', this.onUpstreamEnd);
    up.removeListener('error', this.onUpstreamError);
    up.removeListener('close', this.onUpstreamClose);
    up.removeListener('drain', this.resumeClient);
    if (!up.destroyed) return;
    up.on('error', () => { /* detached and destroyed: nothing left to tell */ });
  }

  /** Bytes that break HTTP framing: the connection cannot go on (the daemon would close it too). */
  private fail(err: unknown, side: 'client' | 'daemon'): void {
    const message = err instanceof HttpFramingError ? err.message : String(err);
    this.opts.logger.warn('fast-path connection closed: broken HTTP framing', { from: side, error: message });
    this.upstream?.destroy();
    this.client.destroy();
  }
}
