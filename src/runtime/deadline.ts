/**
 * @module runtime/deadline
 * Runs one predict call under the model's run timeout and the caller's
 * cancellation. JavaScript cannot stop a function, so a predict that hangs is
 * abandoned (its signal is aborted, its late result ignored) and the item gets
 * a DEADLINE_EXCEEDED error while the server keeps serving.
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";
import { LazyAbortSource } from "../core/lazy-abort.js";

/** The longest delay setTimeout takes; a longer run timeout means none. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** What a call gets when its caller goes away before or during predict. */
export function cancelledError(): ChassisError {
  return new ChassisError(Code.CANCELLED, "the call was cancelled by the client");
}

/**
 * Where a call's cancellation comes from. `signal` may be a getter that
 * creates the AbortSignal on first read (core/lazy-abort): withDeadline reads
 * it only for a predict that goes asynchronous, and `aborted`, when given,
 * answers "already gone?" without creating anything.
 */
export interface Cancellation {
  readonly signal?: AbortSignal | undefined;
  readonly aborted?: boolean;
  /** When given, subscribes to the abort without creating an AbortSignal; returns the unsubscribe function. */
  onAbort?(listener: () => void): () => void;
}

/** Calls `listener` when the caller goes away; returns the unsubscribe function, or undefined when it cannot go away. */
export function onCancel(cancel: Cancellation | undefined, listener: () => void): (() => void) | undefined {
  if (!cancel) return undefined;
  if (cancel.onAbort) return cancel.onAbort(listener);
  const signal = cancel.signal;
  if (!signal) return undefined;
  if (signal.aborted) {
    listener();
    return undefined;
  }
  signal.addEventListener("abort", listener, { once: true });
  return () => signal.removeEventListener("abort", listener);
}

export function isCancelled(cancel: Cancellation | undefined): boolean {
  return cancel ? (cancel.aborted ?? cancel.signal?.aborted ?? false) : false;
}

/**
 * Runs `work` under the timeout and the caller's cancellation. `work` gets
 * the call's own abort source (ctx.signal, ctx.aborted), which makes an
 * AbortSignal only if asked for: on Node 20 one costs ~5 µs, and its objects
 * outlive young-generation collections (docs/performance.md, "What an
 * AbortSignal costs"). A synchronous result is returned as is, not even
 * wrapped in a promise: no timer, no listener, no AbortController (a
 * synchronous predict cannot be interrupted anyway). Throws (or rejects)
 * with the work's error, DEADLINE_EXCEEDED or CANCELLED.
 */
export function withDeadline<T>(
  work: (stop: LazyAbortSource) => T | Promise<T>,
  timeoutMs: number,
  timeoutText: string,
  parent?: Cancellation,
): T | Promise<T> {
  if (isCancelled(parent)) throw cancelledError();
  const stop = new LazyAbortSource();
  const result = work(stop);
  if (!isPromiseLike(result)) return result;
  return race(result, timeoutMs, timeoutText, parent, (error) => stop.abort(error));
}

/** The asynchronous case: the work's promise against the timer and the caller's signal. */
async function race<T>(
  result: Promise<T>,
  timeoutMs: number,
  timeoutText: string,
  parent: Cancellation | undefined,
  onStop: (error: ChassisError) => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    const stop = (error: ChassisError) => {
      onStop(error);
      reject(error);
    };
    // setTimeout fires at once above 2^31-1 ms (~24.8 days); such a timeout is as good as none.
    if (timeoutMs <= MAX_TIMER_MS) {
      timer = setTimeout(
        () =>
          stop(new ChassisError(Code.DEADLINE_EXCEEDED, `predict did not finish within the run timeout of ${timeoutText} (timeout.run)`)),
        timeoutMs,
      );
    }
    unsubscribe = onCancel(parent, () => stop(cancelledError()));
  });
  try {
    // Promise.race also handles a late rejection of an abandoned predict.
    return await Promise.race([result, stopped]);
  } finally {
    clearTimeout(timer);
    unsubscribe?.();
  }
}

export function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}
