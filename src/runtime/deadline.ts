/**
 * @module runtime/deadline
 * Runs one predict call under the model's run timeout and the caller's
 * cancellation. JavaScript cannot stop a function, so a predict that hangs is
 * abandoned (its signal is aborted, its late result ignored) and the item gets
 * a DEADLINE_EXCEEDED error while the server keeps serving.
 */
import { Code } from "../core/code.js";
import { ChassisError } from "../core/error.js";

export async function withDeadline<T>(
  work: (signal: AbortSignal) => T | Promise<T>,
  timeoutMs: number,
  timeoutText: string,
  parent?: AbortSignal,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onParentAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new ChassisError(
        Code.DEADLINE_EXCEEDED,
        `predict did not finish within the run timeout of ${timeoutText} (timeout.run)`,
      );
      controller.abort(error);
      reject(error);
    }, timeoutMs);
    if (parent) {
      onParentAbort = () => {
        const error = new ChassisError(Code.CANCELLED, "the call was cancelled by the client");
        controller.abort(error);
        reject(error);
      };
      if (parent.aborted) onParentAbort();
      else parent.addEventListener("abort", onParentAbort, { once: true });
    }
  });
  try {
    const running = Promise.resolve().then(() => work(controller.signal));
    // A late rejection of an abandoned predict must not become an unhandled rejection.
    running.catch(() => {});
    return await Promise.race([running, stopped]);
  } finally {
    clearTimeout(timer);
    if (parent && onParentAbort) parent.removeEventListener("abort", onParentAbort);
  }
}
