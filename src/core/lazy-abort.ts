/**
 * @module core/lazy-abort
 * An abort source whose AbortSignal is created only when someone asks for
 * it. Protocol adapters make one per call; most calls finish without anyone
 * reading the signal (a synchronous predict never does), and creating an
 * AbortController took about 7% of the server's main thread at 16x16.
 * A signal asked for after abort() is born aborted, with the same reason.
 */
export class LazyAbortSource {
  #controller: AbortController | undefined;
  #reason: unknown;
  #aborted = false;
  /**
   * One function while there is one, the common case (a call's one waiter):
   * a Set per call cost an allocation, and another when its delete shrank
   * it. A Set from the second on, as an item each may listen (runtime.ts).
   */
  #listeners: (() => void) | Set<() => void> | undefined;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  /** What abort() was given (the first time), without making the signal; undefined before. */
  get reason(): unknown {
    return this.#reason;
  }

  abort(reason?: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (typeof listeners === "function") listeners();
    else if (listeners) for (const listener of listeners) listener();
  }

  /**
   * Calls `listener` once on abort (at once if already aborted), without
   * creating an AbortSignal; returns the function that unsubscribes it.
   */
  onAbort(listener: () => void): () => void {
    if (this.#aborted) {
      listener();
      return noop;
    }
    const listeners = this.#listeners;
    if (listeners === undefined) this.#listeners = listener;
    else if (typeof listeners !== "function") listeners.add(listener);
    else if (listeners !== listener) this.#listeners = new Set([listeners, listener]);
    return () => this.#remove(listener);
  }

  #remove(listener: () => void): void {
    const listeners = this.#listeners;
    if (listeners === listener) this.#listeners = undefined;
    else if (typeof listeners === "object") listeners.delete(listener);
  }
}

function noop(): void {}
