/**
 * Typed BGP errors. A `BgpProtocolError` carries the NOTIFICATION the session must send before it
 * closes (RFC 4271 §6): whoever catches it sends `code/subcode/data` and drops the connection.
 * Errors that RFC 7606 downgrades to treat-as-withdraw or attribute-discard are not thrown: the
 * UPDATE decoder reports them on the decoded message instead.
 */
import { CalicoError } from '../../src/errors.js';
import { notificationName } from './codec/constants.js';

export class BgpProtocolError extends CalicoError {
  constructor(
    readonly code: number,
    readonly subcode: number,
    readonly data: Buffer = Buffer.alloc(0),
    detail?: string,
  ) {
    super(`${notificationName(code, subcode)}${detail ? `: ${detail}` : ''}`);
  }
}

/** Configuration from etcd that cannot be used (bad AS number, bad address). Logged, the item skipped. */
export class BgpConfigError extends CalicoError {}

/** The kernel refused a route change (`ip` reported an error for one line). */
export class FibError extends CalicoError {}
