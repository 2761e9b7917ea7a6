/**
 * Errors of the Docker API proxy. All extend CalicoError (src/errors.ts) so the CLI and the logs
 * treat them like every other error in the project.
 */
import { CalicoError } from '../src/errors.js';

/** Bad proxy options: an unparsable listen address, a non-loopback listener without TLS, ... */
export class ProxyConfigError extends CalicoError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: 1, hint });
  }
}

/**
 * Thrown by an interceptor to refuse a request (or to turn the daemon's answer into an error).
 * The client gets `status` and a JSON `{"message": ...}` body, which the docker CLI prints as
 * "Error response from daemon: <message>".
 *
 * Do not use 404 to refuse a create: the CLI takes a 404 on create to mean "image missing" and
 * starts a pull.
 */
export class InterceptRefusal extends CalicoError {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new RangeError(`InterceptRefusal status must be an HTTP error status (400-599), got ${status}`);
    }
    this.status = status;
  }
}

/** A JSON body could not be parsed (see json-document.ts). */
export class JsonSyntaxError extends CalicoError {
  constructor(message: string, readonly offset: number) {
    super(`${message} at offset ${offset}`);
  }
}

/** An intercepted request or response body is larger than the proxy is willing to buffer. */
export class BodyTooLargeError extends CalicoError {
  constructor(readonly limit: number) {
    super(`body larger than ${limit} bytes`);
  }
}

/** Bytes on a fast-path connection that break HTTP/1.1 message framing (see http1.ts). */
export class HttpFramingError extends CalicoError {
  constructor(message: string) {
    super(message);
  }
}
