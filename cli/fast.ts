/**
 * The fast path for the read-only listings that scripts run in loops: `get`, `profile show`,
 * `pool show`. Why: loading commander (it requires node:child_process) and building the command
 * tree is ~10 ms of a ~100 ms start-up (bench/cli.ts), and these commands need neither.
 *
 * The parser is deliberately strict: it accepts only command lines that commander would hand to
 * the same handler with the same arguments and options (program.ts is the reference), namely
 * global options first, then the command's words, then its operands and its own options spelled
 * `--name value`, `--name=value` or `-x value`. Anything else (help, `--`, an unknown or misplaced
 * option, a global option after the command, a value that is missing or starts with '-', combined
 * short flags, operands a command does not take) returns undefined, and commander parses it, so
 * --help, usage errors and their exit codes stay commander's own. test/cli/fast-path.test.ts runs
 * both parsers over the same command lines and checks that they call the same handlers alike.
 */
import type { GlobalOptions } from './context.js';

type Opts = Record<string, string | true>;

interface OptionSpec {
  /** commander's attribute name (`--log-level` -> logLevel). */
  name: string;
  takesValue: boolean;
}

interface Route {
  words: string[];
  options: Record<string, OptionSpec>;
  defaults?: Opts;
  /** Whether the command takes operands (`get [kind] [names...]`) or none. */
  operands: boolean;
  run(operands: string[], opts: Opts): Promise<void>;
}

export interface FastCall {
  /** The route's words, e.g. 'profile show' (for tests and debugging). */
  command: string;
  globals: GlobalOptions;
  operands: string[];
  opts: Opts;
  run(): Promise<void>;
}

/* eslint-disable @typescript-eslint/no-require-imports */
const resources = () => require('./commands/resources.js') as typeof import('./commands/resources.js');
const profile = () => require('./commands/profile.js') as typeof import('./commands/profile.js');
const pool = () => require('./commands/pool.js') as typeof import('./commands/pool.js');
/* eslint-enable @typescript-eslint/no-require-imports */

const valueOpt = (name: string): OptionSpec => ({ name, takesValue: true });
const flag = (name: string): OptionSpec => ({ name, takesValue: false });

// The program's own options, as program.ts declares them (-l has a default there too).
const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  '-c': valueOpt('config'), '--config': valueOpt('config'),
  '-l': valueOpt('logLevel'), '--log-level': valueOpt('logLevel'),
};
const GLOBAL_DEFAULTS: Opts = { logLevel: 'info' };

const OUTPUT = { '-o': valueOpt('output'), '--output': valueOpt('output') };

const ROUTES: Route[] = [
  {
    words: ['get'],
    options: {
      ...OUTPUT,
      '-f': valueOpt('filename'), '--filename': valueOpt('filename'),
      '--node': valueOpt('node'), '--orchestrator': valueOpt('orchestrator'),
      '--workload': valueOpt('workload'), '--scope': valueOpt('scope'),
    },
    defaults: { output: 'ps' },
    operands: true,
    run: (operands, o) => resources().get(operands[0], operands.slice(1), o as Record<string, string>),
  },
  {
    words: ['profile', 'show'],
    options: { ...OUTPUT, '--detailed': flag('detailed') },
    operands: false,
    run: (_operands, o) => profile().show(o as { detailed?: boolean; output?: string }),
  },
  {
    words: ['pool', 'show'],
    options: { ...OUTPUT, '--ipv4': flag('ipv4'), '--ipv6': flag('ipv6') },
    operands: false,
    run: (_operands, o) => pool().show(o as { ipv4?: boolean; ipv6?: boolean; output?: string }),
  },
];

const isOption = (arg: string) => arg.length > 1 && arg[0] === '-';

/**
 * Reads one option at argv[i] against `specs` into `into`; returns the index after it, or
 * undefined when the option is not one this parser takes on (commander decides then).
 */
function readOption(argv: string[], i: number, specs: Record<string, OptionSpec>, into: Opts): number | undefined {
  const arg = argv[i]!;
  const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
  const spelling = eq > 0 ? arg.slice(0, eq) : arg;
  if (!Object.prototype.hasOwnProperty.call(specs, spelling)) return undefined;
  const spec = specs[spelling]!;
  if (!spec.takesValue) {
    if (eq > 0) return undefined;
    into[spec.name] = true;
    return i + 1;
  }
  if (eq > 0) {
    into[spec.name] = arg.slice(eq + 1);
    return i + 1;
  }
  const value = argv[i + 1];
  if (value === undefined || isOption(value)) return undefined;
  into[spec.name] = value;
  return i + 2;
}

/** The fast-path call for this command line, or undefined to let commander parse it. */
export function parseFast(argv: string[]): FastCall | undefined {
  const globals: Opts = { ...GLOBAL_DEFAULTS };
  let i = 0;
  while (i < argv.length && isOption(argv[i]!)) {
    const next = readOption(argv, i, GLOBAL_OPTIONS, globals);
    if (next === undefined) return undefined;
    i = next;
  }
  const route = ROUTES.find((r) => r.words.every((w, k) => argv[i + k] === w));
  if (!route) return undefined;
  i += route.words.length;
  const opts: Opts = { ...route.defaults };
  const operands: string[] = [];
  while (i < argv.length) {
    const arg = argv[i]!;
    if (!isOption(arg)) {
      operands.push(arg);
      i++;
      continue;
    }
    const next = readOption(argv, i, route.options, opts);
    if (next === undefined) return undefined;
    i = next;
  }
  if (!route.operands && operands.length) return undefined;
  return {
    command: route.words.join(' '),
    globals: globals as GlobalOptions,
    operands,
    opts,
    run: () => route.run(operands, opts),
  };
}
