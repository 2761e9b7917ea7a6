/**
 * Typed errors of the dataplane primitives. Each says which command failed, in which network
 * namespace, and what the kernel (or the tool) answered, so that callers can log one line that
 * explains the failure and decide whether it is worth a retry.
 */
import { CalicoError } from '../errors.js';

export class DataplaneError extends CalicoError {}

/** A command (ip, nft, conntrack, nsenter...) exited non-zero or could not be started. */
export class CommandFailedError extends DataplaneError {
  constructor(
    readonly argv: readonly string[],
    readonly code: number | null,
    readonly stderr: string,
    hint?: string,
  ) {
    super(`${argv.join(' ').slice(0, 300)} failed (exit ${code ?? 'signal'}): ${stderr.trim().slice(0, 2000) || 'no output'}`, { hint });
  }
}

/** The network namespace named or pointed at does not exist. */
export class NetnsNotFoundError extends DataplaneError {
  constructor(readonly ref: string) {
    super(`network namespace ${ref} does not exist`, { hint: 'check the container is running and the path (/proc/<pid>/ns/net or /run/netns/<name>) is right' });
  }
}

export class NetnsExistsError extends DataplaneError {
  constructor(readonly nsName: string) {
    super(`network namespace ${nsName} already exists`);
  }
}

/** A link that must not exist yet does (e.g. a leftover cali interface from a crashed wiring). */
export class LinkExistsError extends DataplaneError {
  constructor(readonly linkName: string, where: string) {
    super(`interface ${linkName} already exists in ${where}`, {
      hint: 'an endpoint with the same id is already wired, or a previous attempt left it behind: remove it (container remove / unwireWorkload) and retry',
    });
  }
}

export class LinkNotFoundError extends DataplaneError {
  constructor(readonly linkName: string, where: string) {
    super(`interface ${linkName} does not exist in ${where}`);
  }
}

/** One line of an `ip -batch` run failed. `line` is 1-based, as ip reports it. */
export interface BatchFailure {
  line: number;
  command: string;
  message: string;
}

export class IpBatchError extends DataplaneError {
  constructor(readonly where: string, readonly failures: BatchFailure[], readonly linesRun: number) {
    super(`ip -batch in ${where}: ${failures.map((f) => `'${f.command}': ${f.message}`).join('; ').slice(0, 2000)}`);
  }
}

/** nft rejected a transaction; nothing of it was applied (nft transactions are atomic). */
export class NftError extends DataplaneError {
  constructor(readonly where: string, readonly output: string, readonly scriptHead: string) {
    super(`nft transaction rejected in ${where}: ${output.trim().slice(0, 3000)}`);
  }
}

/** The nft script would touch a table that is not ours. */
export class NftScopeError extends DataplaneError {
  constructor(readonly line: string, allowed: string) {
    super(`refusing nft command outside table ${allowed}: ${line.slice(0, 200)}`);
  }
}

/** Wiring a workload failed; everything it had made was removed again. */
export class WiringError extends DataplaneError {
  constructor(readonly step: string, cause: unknown, readonly rolledBack: boolean) {
    super(`wiring failed at step '${step}': ${cause instanceof Error ? cause.message : String(cause)}${rolledBack ? ' (everything made so far was removed)' : ' (CLEANUP FAILED: see log)'}`, { cause });
  }
}
