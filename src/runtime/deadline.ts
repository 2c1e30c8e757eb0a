/**
 * @module runtime/deadline
 * Runs one predict call under the model's run timeout and the caller's
 * cancellation. JavaScript cannot stop a function, so a predict that hangs is
 * abandoned (its signal is aborted, its late result ignored) and the item gets
 * a DEADLINE_EXCEEDED error while the server keeps serving.
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";

const MAX_TIMER_MS = 2 ** 31 - 1;

/** What a call gets when its caller goes away before or during predict. */
export function cancelledError(): ChassisError {
  return new ChassisError(Code.CANCELLED, "the call was cancelled by the client");
}

export async function withDeadline<T>(
  work: (signal: AbortSignal) => T | Promise<T>,
  timeoutMs: number,
  timeoutText: string,
  parent?: AbortSignal,
): Promise<T> {
  if (parent?.aborted) throw cancelledError();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onParentAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    // setTimeout fires at once above 2^31-1 ms (~24.8 days); such a timeout is as good as none.
    if (timeoutMs <= MAX_TIMER_MS) {
      timer = setTimeout(() => {
        const error = new ChassisError(
          Code.DEADLINE_EXCEEDED,
          `predict did not finish within the run timeout of ${timeoutText} (timeout.run)`,
        );
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    }
    if (parent) {
      onParentAbort = () => {
        const error = cancelledError();
        controller.abort(error);
        reject(error);
      };
      parent.addEventListener("abort", onParentAbort, { once: true });
    }
  });
  try {
    // Promise.race also handles a late rejection of an abandoned predict.
    return await Promise.race([Promise.resolve().then(() => work(controller.signal)), stopped]);
  } finally {
    clearTimeout(timer);
    if (parent && onParentAbort) parent.removeEventListener("abort", onParentAbort);
  }
}
