/**
 * @module server/restart-budget
 * How often something that died is replaced: a worker process (workers.ts) or
 * a predict thread (threads/pool.ts). At most `max` replacements within
 * `windowMs`; more means the model itself is at fault, not bad luck.
 */
export class RestartBudget {
  readonly #times: number[] = [];

  constructor(
    readonly max = 5,
    readonly windowMs = 60_000,
  ) {}

  /** Takes one replacement from the budget; false, taking nothing, when `max` were taken within the window. */
  take(now = Date.now()): boolean {
    while (this.#times.length > 0 && (this.#times[0] as number) < now - this.windowMs) this.#times.shift();
    if (this.#times.length >= this.max) return false;
    this.#times.push(now);
    return true;
  }
}
