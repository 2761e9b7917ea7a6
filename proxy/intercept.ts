/**
 * Runs the interceptors' hooks around the endpoints in routes.ts. An endpoint no interceptor
 * hooks is not touched at all (it takes the plain pass-through path, nothing buffered); a hooked
 * one is buffered only as far as the hook needs: create request bodies, start/delete answers
 * (a few bytes), inspect answers.
 */
import type http from 'node:http';
import type { Logger } from '../src/log.js';
import { errorMessage } from '../src/errors.js';
import type { Forwarder } from './forward.js';
import { relayResponse } from './forward.js';
import type { DaemonClient, ContainerInspect } from './daemon-client.js';
import type {
  DockerInterceptor, RequestInfo, CreateContext, ContainerActionContext, InspectContext, DeleteContext,
} from './hooks.js';
import { anyHook } from './hooks.js';
import type { InterceptedRoute, ParsedApiPath } from './routes.js';
import { JsonDocument } from './json-document.js';
import { InterceptRefusal, BodyTooLargeError, JsonSyntaxError } from './errors.js';
import { readBody, sendBuffered, sendJsonError, isJsonContentType } from './respond.js';

export interface InterceptDeps {
  forwarder: Forwarder;
  daemon: DaemonClient;
  interceptors: readonly DockerInterceptor[];
  logger: Logger;
  maxBody: number;
}

/** True if some interceptor hooks this route (the caller must then leave the request to us). */
export function isHooked(route: InterceptedRoute, interceptors: readonly DockerInterceptor[]): boolean {
  switch (route.kind) {
    case 'create': return anyHook(interceptors, 'onCreate', 'afterCreate');
    case 'start':
    case 'restart': return anyHook(interceptors, 'beforeStart', 'afterStart', 'onStartFailed');
    case 'inspect': return anyHook(interceptors, 'onInspect');
    case 'delete': return anyHook(interceptors, 'afterDelete');
  }
}

export async function handleIntercepted(
  route: InterceptedRoute, api: ParsedApiPath, req: http.IncomingMessage, res: http.ServerResponse, deps: InterceptDeps,
): Promise<void> {
  const info: RequestInfo = {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    apiVersion: api.apiVersion,
    query: api.query,
    headers: req.headers,
    daemon: deps.daemon,
  };
  try {
    switch (route.kind) {
      case 'create': return await handleCreate(info, req, res, deps);
      case 'start':
      case 'restart': return await handleAction(info, route.kind, route.containerRef, req, res, deps);
      case 'inspect': return handleInspect(info, route.containerRef, req, res, deps);
      case 'delete': return await handleDelete(info, route.containerRef, req, res, deps);
    }
  } catch (err) {
    sendHookError(res, err, deps.logger, route.kind);
  }
}

async function handleCreate(info: RequestInfo, req: http.IncomingMessage, res: http.ServerResponse, deps: InterceptDeps): Promise<void> {
  // The daemon refuses a non-empty create body that is not application/json, and an empty one
  // does not decode, so such requests cannot create anything: forward them untouched and let the
  // daemon answer in its own words.
  if (!isJsonContentType(req.headers['content-type'])) {
    deps.forwarder.forward(req, res);
    return;
  }
  const raw = await readBody(req, deps.maxBody);
  let body: JsonDocument;
  try {
    body = JsonDocument.parse(raw);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw new InterceptRefusal(400, `invalid JSON in the container create request: ${err.message}`);
    throw err;
  }
  const ctx: CreateContext = { ...info, containerName: info.query.get('name') ?? undefined, body };
  for (const i of deps.interceptors) await i.onCreate?.(ctx);

  const observers = deps.interceptors.filter((i) => i.afterCreate);
  deps.forwarder.forward(req, res, {
    body: body.toBuffer(),
    onResponse: observers.length === 0 ? undefined : (daemonRes) => {
      void bufferAnswer(daemonRes, res, deps, async (status, answer) => {
        let containerId: string | undefined;
        if (status === 201) {
          try { containerId = (JSON.parse(answer.toString('utf8')) as { Id?: string }).Id; } catch { /* no id */ }
        }
        for (const i of observers) {
          await observe(deps.logger, i.name, 'afterCreate', () => i.afterCreate?.(ctx, { status, containerId }));
        }
        return answer;
      });
    },
  });
}

async function handleAction(
  info: RequestInfo, action: 'start' | 'restart', containerRef: string,
  req: http.IncomingMessage, res: http.ServerResponse, deps: InterceptDeps,
): Promise<void> {
  const container = await inspectForHooks(deps.daemon, containerRef);
  if (container === undefined) {
    // No such container: the daemon's own 404 is the right answer, and there is nothing to wire.
    deps.forwarder.forward(req, res);
    return;
  }
  const ctx: ContainerActionContext = { ...info, action, containerRef, containerId: container.Id, container };
  for (const i of deps.interceptors) await i.beforeStart?.(ctx);
  const startFailed = async (status: number) => {
    for (const i of deps.interceptors) {
      if (i.onStartFailed) await observe(deps.logger, i.name, 'onStartFailed', () => i.onStartFailed!(ctx, { status }));
    }
  };
  deps.forwarder.forward(req, res, {
    onResponse: (daemonRes) => {
      void bufferAnswer(daemonRes, res, deps, async (status, answer) => {
        if (status < 400) {
          for (const i of deps.interceptors) await i.afterStart?.(ctx, { status });
        } else await startFailed(status);
        return answer;
      });
    },
    onError: () => { void startFailed(502); },
  });
}

function handleInspect(info: RequestInfo, containerRef: string, req: http.IncomingMessage, res: http.ServerResponse, deps: InterceptDeps): void {
  deps.forwarder.forward(req, res, {
    onResponse: (daemonRes) => {
      if (daemonRes.statusCode !== 200 || !isJsonContentType(daemonRes.headers['content-type'])) {
        relayResponse(daemonRes, res);
        return;
      }
      void bufferAnswer(daemonRes, res, deps, async (_status, answer) => {
        let body: JsonDocument;
        try {
          body = JsonDocument.parse(answer);
        } catch {
          deps.logger.warn('daemon inspect answer is not JSON; passed through unchanged', { path: info.url });
          return answer;
        }
        const id = body.get(['Id']);
        const ctx: InspectContext = { ...info, containerRef, containerId: typeof id === 'string' ? id : containerRef, body };
        for (const i of deps.interceptors) await i.onInspect?.(ctx);
        return body.toBuffer();
      });
    },
  });
}

async function handleDelete(info: RequestInfo, containerRef: string, req: http.IncomingMessage, res: http.ServerResponse, deps: InterceptDeps): Promise<void> {
  // Resolve first: once the daemon has removed the container its id can no longer be looked up.
  const containerId = (await inspectForHooks(deps.daemon, containerRef))?.Id;
  if (containerId === undefined) {
    deps.forwarder.forward(req, res);
    return;
  }
  deps.forwarder.forward(req, res, {
    onResponse: (daemonRes) => {
      void bufferAnswer(daemonRes, res, deps, async (status, answer) => {
        if (status >= 200 && status < 300) {
          const ctx: DeleteContext = { ...info, containerRef, containerId, status };
          for (const i of deps.interceptors) await observe(deps.logger, i.name, 'afterDelete', () => i.afterDelete?.(ctx));
        }
        return answer;
      });
    },
  });
}

/** The container a hooked request names (its full id, and for start hooks its config), or undefined on 404. */
async function inspectForHooks(daemon: DaemonClient, ref: string): Promise<ContainerInspect | undefined> {
  try {
    return await daemon.inspectContainer(ref);
  } catch (err) {
    throw new InterceptRefusal(502, `cannot look up container ${ref} on the docker daemon: ${errorMessage(err)}`);
  }
}

/**
 * Buffers the daemon's answer, lets `transform` run hooks on it (and replace the body), then
 * sends it with the daemon's status line and headers. A hook error turns into an error answer.
 */
async function bufferAnswer(
  daemonRes: http.IncomingMessage, res: http.ServerResponse, deps: InterceptDeps,
  transform: (status: number, body: Buffer) => Promise<Buffer>,
): Promise<void> {
  const status = daemonRes.statusCode ?? 502;
  try {
    const answer = await readBody(daemonRes, deps.maxBody);
    const body = await transform(status, answer);
    sendBuffered(res, status, daemonRes.statusMessage, daemonRes.rawHeaders, body);
  } catch (err) {
    if (err instanceof BodyTooLargeError) {
      sendJsonError(res, 502, `the docker daemon's answer is larger than the proxy will buffer for hooks (${deps.maxBody} bytes)`);
      return;
    }
    sendHookError(res, err, deps.logger, 'answer');
  }
}

/** Observe-only hooks: an error is logged, never sent to the client. */
async function observe(logger: Logger, name: string, hook: string, fn: () => void | Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    logger.error('interceptor hook failed', { interceptor: name, hook, error: errorMessage(err) });
  }
}

function sendHookError(res: http.ServerResponse, err: unknown, logger: Logger, what: string): void {
  if (err instanceof InterceptRefusal) {
    logger.info('request refused by an interceptor', { route: what, status: err.status, message: err.message });
    sendJsonError(res, err.status, err.message);
    return;
  }
  if (err instanceof BodyTooLargeError) {
    sendJsonError(res, 413, `request body larger than the proxy will buffer for hooks (${err.limit} bytes)`);
    return;
  }
  logger.error('interceptor failed', { route: what, error: errorMessage(err) });
  sendJsonError(res, 500, `docker proxy interceptor failed: ${errorMessage(err)}`);
}
