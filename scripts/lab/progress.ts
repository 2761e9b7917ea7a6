/** One line per step, so a slow `up` shows where it is (and a failed one, where it stopped). */
export type Progress = (line: string) => void;

export const progress: Progress = (line) => { process.stdout.write(`lab: ${line}\n`); };

export const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
