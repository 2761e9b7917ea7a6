/**
 * Typed errors. Every error a user can see carries a message that says what was wrong and,
 * where there is one, a hint that says what to do. The CLI prints `message` (and `hint`) and
 * exits with `exitCode`; it never prints a stack unless the log level is debug.
 */
export class CalicoError extends Error {
  readonly exitCode: number;
  readonly hint?: string;
  constructor(message: string, opts: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? 1;
    this.hint = opts.hint;
  }
}

/** Bad input: a field, flag or document that does not validate. Names the field and the value. */
export class ValidationError extends CalicoError {
  readonly field?: string;
  constructor(message: string, field?: string, hint?: string) {
    super(message, { exitCode: 1, hint });
    this.field = field;
  }
}

/** A command-line usage error (unknown flag, missing argument): exit code 2. */
export class UsageError extends CalicoError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: 2, hint });
  }
}

export class NotFoundError extends CalicoError {}
export class AlreadyExistsError extends CalicoError {}

/** The compare-and-swap lost: somebody else wrote the key first. Retried by `mutate`. */
export class ConflictError extends CalicoError {
  constructor(readonly key: string) {
    super(`update conflict on ${key}: it was changed by another writer`);
  }
}

/** No etcd answered. */
export class DatastoreUnreachableError extends CalicoError {
  constructor(readonly endpoints: string[], cause?: unknown) {
    super(`cannot reach etcd at ${endpoints.join(',')}: start one, or set ETCD_ENDPOINTS`, {
      cause,
      hint: 'e.g. ETCD_ENDPOINTS=http://10.0.0.1:2379 calicoctl ...  (or -c /etc/calico/calicoctl.cfg)',
    });
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
