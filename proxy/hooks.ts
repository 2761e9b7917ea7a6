/**
 * The interception API: how Calico logic (or anything else) plugs into the Docker API proxy.
 *
 * An interceptor is an object with any of the optional hooks below; the proxy calls the hooks of
 * every interceptor in the order given to `startProxy`, awaiting each. Everything the proxy does
 * not hook, and every hook-less interceptor list, is passed through byte for byte.
 *
 *   POST /containers/create         onCreate (edit or refuse the body), afterCreate (observe the answer)
 *   POST /containers/{id}/start     beforeStart, afterStart (runs before the client sees the answer,
 *   POST /containers/{id}/restart   so `docker run -d` returns only after the wiring is done),
 *                                   onStartFailed (the daemon refused it, or could not be reached)
 *   GET  /containers/{id}/json      onInspect (edit the daemon's JSON answer)
 *   DELETE /containers/{id}         afterDelete (observe a successful removal)
 *
 * Paths match with or without the `/vX.Y` prefix. A hook refuses by throwing `InterceptRefusal`
 * (status + message; the docker CLI prints "Error response from daemon: <message>"); any other
 * exception becomes a 500 with the error's message, except in the observe-only hooks
 * (afterCreate, afterDelete), whose errors are logged and otherwise ignored.
 *
 * Things hooks do not see, by design of the Docker API: containers removed by the daemon itself
 * (`docker run --rm` is AutoRemove, no DELETE is sent), restarts done by a restart policy or a
 * daemon restart, and any client that talks to the daemon's own socket. Work that must also happen
 * then belongs on the daemon's event stream (`GET /events`), which `DaemonClient` can read.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { JsonDocument } from './json-document.js';
import type { DaemonClient, ContainerInspect } from './daemon-client.js';

export { InterceptRefusal } from './errors.js';
export type { JsonDocument, JsonValue, JsonInput, JsonPath } from './json-document.js';
export { LosslessNumber } from './json-document.js';
export type { DaemonClient, DaemonResponse, ContainerInspect } from './daemon-client.js';

/** What every hook is told about the client's request. */
export interface RequestInfo {
  /** HTTP method, e.g. "POST". */
  readonly method: string;
  /** The URL as the client sent it, e.g. "/v1.41/containers/create?name=web". */
  readonly url: string;
  /** "1.41" for a versioned path; undefined when the client used an unversioned path. */
  readonly apiVersion?: string;
  readonly query: URLSearchParams;
  /** The client's request headers (never log X-Registry-Auth / X-Registry-Config / Authorization). */
  readonly headers: IncomingHttpHeaders;
  /** A client for the real daemon (bypasses the proxy and its hooks). */
  readonly daemon: DaemonClient;
}

export interface CreateContext extends RequestInfo {
  /** The `name` query parameter (`docker run --name`), if any. */
  readonly containerName?: string;
  /**
   * The create body (Config fields at the top level plus HostConfig and NetworkingConfig).
   * Edit it in place: `body.set(['HostConfig', 'NetworkMode'], 'none')`; lookups are
   * case-insensitive like the daemon's, and untouched parts (unknown fields, int64 numbers) are
   * forwarded byte for byte. The proxy fixes Content-Length.
   *
   * Note for network rewrites: current CLIs send `HostConfig.NetworkMode: "default"` *and*
   * `NetworkingConfig.EndpointsConfig: {"default": {...}}`; switching to NetworkMode "none" needs
   * the EndpointsConfig emptied as well, or the daemon answers "network default not found".
   */
  readonly body: JsonDocument;
}

export interface CreateResult {
  /** The daemon's status: 201 on success. */
  readonly status: number;
  /** The new container's full id (on success). */
  readonly containerId?: string;
}

export interface ContainerActionContext extends RequestInfo {
  readonly action: 'start' | 'restart';
  /** The id, id prefix or name exactly as it appeared in the path. */
  readonly containerRef: string;
  /** The full 64-hex container id, resolved through the daemon before any hook runs. */
  readonly containerId: string;
  /** The daemon's inspect of the container, made to resolve the id (state as before the action). */
  readonly container: ContainerInspect;
}

export interface ActionAnswer {
  /** The daemon's status for the start/restart: 204, or 304 when the container was already running. */
  readonly status: number;
}

export interface InspectContext extends RequestInfo {
  readonly containerRef: string;
  /** The full id, read from the answer's "Id" field. */
  readonly containerId: string;
  /** The daemon's answer (only 200 answers are passed to hooks); edit it in place. */
  readonly body: JsonDocument;
}

export interface DeleteContext extends RequestInfo {
  readonly containerRef: string;
  /** The full id, resolved before the removal was forwarded. */
  readonly containerId: string;
  /** The daemon's status: 204. */
  readonly status: number;
}

/**
 * One interceptor. The same context object is passed to the before/after pair of one request
 * (onCreate/afterCreate, beforeStart/afterStart), so a WeakMap keyed by it can carry state
 * between them.
 */
export interface DockerInterceptor {
  /** For logs and error messages. */
  readonly name: string;
  /** Edit or refuse a create before the daemon sees it. */
  onCreate?(ctx: CreateContext): void | Promise<void>;
  /** Observe the daemon's answer to a create that onCreate let through (success or failure). */
  afterCreate?(ctx: CreateContext, result: CreateResult): void | Promise<void>;
  /** Before a start/restart is forwarded; throw InterceptRefusal to refuse it. */
  beforeStart?(ctx: ContainerActionContext): void | Promise<void>;
  /**
   * After the daemon answered a start/restart with 2xx/304 and before the client sees that
   * answer. Throwing InterceptRefusal (or any error) sends the client an error instead; the
   * container is running by then, and stopping it is the hook's business.
   */
  afterStart?(ctx: ContainerActionContext, answer: ActionAnswer): void | Promise<void>;
  /**
   * The start/restart that beforeStart let through did not happen: the daemon refused it (status
   * 400 and up) or could not be reached (status 502). Undo what beforeStart prepared. Errors are
   * logged; the client gets the daemon's answer.
   */
  onStartFailed?(ctx: ContainerActionContext, answer: ActionAnswer): void | Promise<void>;
  /** Edit the daemon's answer to `docker inspect` / GET /containers/{id}/json. */
  onInspect?(ctx: InspectContext): void | Promise<void>;
  /** After the daemon removed a container (2xx), before the client sees the answer. */
  afterDelete?(ctx: DeleteContext): void | Promise<void>;
}

/** True if any interceptor has the given hook, i.e. whether the proxy must buffer and wait. */
export function anyHook(interceptors: readonly DockerInterceptor[], ...hooks: (keyof DockerInterceptor)[]): boolean {
  return interceptors.some((i) => hooks.some((h) => typeof i[h] === 'function'));
}
