/**
 * One input-processing budget per event-loop turn, shared by every BGP session.
 *
 * Why shared: with a budget per session, 500 sessions that all become readable in the same poll
 * phase each spend their full slice before yielding, and the turn lasts 500 slices; timers (our
 * KEEPALIVEs) wait behind all of it. Here the first session to run opens a turn with one budget;
 * when it is spent, sessions with input left queue up (round-robin) and continue on the next
 * turn, after timers and I/O have had their go.
 */
export const TURN_BUDGET_MS = 15;

export type Continuation = () => void;

export class InputPacer {
  private deadline = 0;
  private turnOpen = false;
  private waiting: Continuation[] = [];

  constructor(private readonly budgetMs = TURN_BUDGET_MS) {}

  /** True while the current turn still has budget (opens a turn if none is open). */
  hasBudget(): boolean {
    if (!this.turnOpen) {
      this.turnOpen = true;
      this.deadline = performance.now() + this.budgetMs;
      setImmediate(() => this.nextTurn());
    }
    return performance.now() < this.deadline;
  }

  /** Runs `next` on a later turn, after the sessions already waiting. */
  defer(next: Continuation): void {
    this.waiting.push(next);
    if (!this.turnOpen) {
      this.turnOpen = true;
      this.deadline = 0; // spent: whoever asks this turn waits too
      setImmediate(() => this.nextTurn());
    }
  }

  private nextTurn(): void {
    this.turnOpen = false;
    const list = this.waiting;
    this.waiting = [];
    // Each continuation checks hasBudget() itself and defers again when the turn is spent.
    for (const next of list) next();
  }

  get backlog(): number {
    return this.waiting.length;
  }
}

/** The process-wide pacer (sessions of every speaker in the process share the CPU). */
export const inputPacer = new InputPacer();
