/**
 * @module runtime/batcher
 * Adaptive batching across calls, for predictBatch models. BatchingExecutor
 * decorates a ChunkExecutor (the DirectExecutor): the valid items of every
 * execute() call join one queue, and each predictBatch call takes up to
 * maxBatchSize of them, whichever calls they came from.
 *
 * The policy needs no tuning for latency: a call that finds a batch slot free
 * and nothing queued goes to predictBatch at once, on its own, as without
 * batching (a lone call waits for nothing and pays for no queue). While every
 * slot (maxConcurrentBatches) is busy, items queue; when a batch ends, the
 * next takes what has queued, so batches grow with the load. maxWaitMs > 0
 * lets the first queued item wait that long for a fuller batch.
 *
 * Outcomes stay per item and per caller: an Error in predictBatch's results
 * fails that item only; a throwing predictBatch (or a wrong-length result, or
 * the run timeout) fails the items of that batch, which may belong to several
 * calls. A caller whose signal aborts gets CANCELLED for its unanswered items
 * at once; its queued items never reach the model, and a running batch's
 * ctx.signal is aborted only when no caller still waits for it.
 */

import { LazyAbortSource } from "../core/lazy-abort.js";
import type { BatchingConfig } from "../model/define.js";
import { type Cancellation, cancelledError, isCancelled, onCancel } from "./deadline.js";
import type { ChunkExecutor, Executor } from "./executor.js";
import { Fifo } from "./fifo.js";
import { type ExplainOutcome, failure, type ItemOutcome, type RawItem } from "./outcome.js";

/** The cap on maxWaitMs: waiting is meant for milliseconds; a minute is surely a mistake. */
export const MAX_WAIT_MS = 60_000;

export type BatchingPolicy = Pick<BatchingConfig, "maxBatchSize" | "maxWaitMs" | "maxConcurrentBatches">;

/** One execute() call: its outcomes, filled in as its items are answered. */
interface Ticket {
  readonly outcomes: Array<ItemOutcome | undefined>;
  pending: number;
  done: boolean;
  /** performance.now() when its items were queued (read only when maxWaitMs > 0). */
  readonly queuedAt: number;
  readonly resolve: (outcomes: ItemOutcome[]) => void;
  /** The caller's cancellation, if it gave one. */
  readonly cancel: Cancellation | undefined;
  detach: (() => void) | undefined;
  /** How many of its items are still in the queue (a cancelled ticket's stay there, counted as dead, until taken). */
  queued: number;
}

interface Entry {
  readonly ticket: Ticket;
  readonly index: number;
  readonly raw: RawItem;
}

interface Batch {
  readonly entries: readonly Entry[];
  /** Aborts the batch's ctx.signal once no caller waits; none when one caller's own signal does (see batchCancellation). */
  readonly controller: LazyAbortSource | undefined;
}

export class BatchingExecutor implements Executor {
  readonly #inner: ChunkExecutor;
  readonly #policy: BatchingPolicy;
  readonly #queue = new Fifo<Entry>();
  // Queued entries of callers that went away: left in place and skipped when taken, because finding them in a
  // queue of n entries made each cancellation O(n) (50,000 queued calls all cancelled took 130 s: bench/cancel-storm.mjs).
  #dead = 0;
  /** An array, not a Set: a long-lived Set with an add and a delete per call makes V8 promote every call (core/id-table). */
  readonly #running: Batch[] = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #onBatch: ((items: number) => void) | undefined;

  /** `onBatch` is told the size of each predictBatch call this makes (the server's chassis_batch_items). */
  constructor(inner: ChunkExecutor, policy: BatchingPolicy, onBatch?: (items: number) => void) {
    this.#inner = inner;
    this.#policy = policy;
    this.#onBatch = onBatch;
  }

  /** Items queued and not yet handed to predictBatch (for tests and metrics). */
  get queued(): number {
    return this.#queue.length - this.#dead;
  }

  /** predictBatch calls running now. */
  get running(): number {
    return this.#running.length;
  }

  execute(items: readonly RawItem[], cancel?: Cancellation): Promise<ItemOutcome[]> {
    if (items.length === 0) return Promise.resolve([]);
    // As withDeadline: a caller already gone gets CANCELLED and the model is not called.
    if (isCancelled(cancel)) return Promise.resolve(items.map(() => failure(cancelledError())));
    const { maxBatchSize, maxWaitMs, maxConcurrentBatches } = this.#policy;
    if (this.queued === 0 && this.#running.length < maxConcurrentBatches && maxWaitMs === 0 && items.length <= maxBatchSize) {
      // The fast path: what #pump would do at once, without a ticket; the caller's signal is the batch's.
      return this.#runAlone(items, cancel);
    }
    return new Promise<ItemOutcome[]>((resolve) => {
      const ticket: Ticket = {
        outcomes: new Array(items.length),
        pending: items.length,
        done: false,
        queuedAt: maxWaitMs > 0 ? performance.now() : 0,
        resolve,
        cancel,
        detach: undefined,
        queued: items.length,
      };
      items.forEach((raw, index) => {
        this.#queue.push({ ticket, index, raw });
      });
      // Queued: take its items back if the caller goes away (no AbortSignal is made for that).
      ticket.detach = onCancel(cancel, () => this.#cancel(ticket));
      this.#pump();
    });
  }

  /** Explain is per item, as without batching. */
  explain(items: readonly RawItem[], cancel?: Cancellation): Promise<ExplainOutcome[]> {
    return this.#inner.explain(items, cancel);
  }

  /** Starts batches while a slot is free and the queue holds items ready to leave. */
  #pump(): void {
    const { maxBatchSize, maxWaitMs, maxConcurrentBatches } = this.#policy;
    while (this.#running.length < maxConcurrentBatches && this.queued > 0) {
      if (maxWaitMs > 0 && this.queued < maxBatchSize) {
        this.#dropDeadFront();
        const first = this.#queue.peek() as Entry;
        const left = first.ticket.queuedAt + maxWaitMs - performance.now();
        if (left > 0) {
          this.#wakeIn(left);
          return;
        }
      }
      void this.#dispatch(this.#takeLive(maxBatchSize));
    }
  }

  /** Up to `count` entries of callers still waiting, oldest first; the dead ones met on the way are dropped. */
  #takeLive(count: number): Entry[] {
    const batch: Entry[] = [];
    while (batch.length < count && this.#queue.length > 0) {
      for (const entry of this.#queue.take(count - batch.length)) {
        if (entry.ticket.done) this.#dead--;
        else {
          entry.ticket.queued--;
          batch.push(entry);
        }
      }
    }
    this.#clearIfAllDead();
    return batch;
  }

  #dropDeadFront(): void {
    while (this.#queue.peek()?.ticket.done) {
      this.#queue.take(1);
      this.#dead--;
    }
  }

  /** A queue of dead entries only is emptied at once, so that they hold no memory and the fast path is open. */
  #clearIfAllDead(): void {
    if (this.#dead > 0 && this.#dead === this.#queue.length) {
      this.#queue.clear();
      this.#dead = 0;
    }
  }

  #wakeIn(ms: number): void {
    if (this.#timer) return; // a timer set for an earlier first item fires early; #pump sets the next
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, Math.ceil(ms));
  }

  async #runAlone(items: readonly RawItem[], cancel: Cancellation | undefined): Promise<ItemOutcome[]> {
    const batch: Batch = { entries: [], controller: undefined }; // #cancel has nothing to do for it
    this.#running.push(batch);
    this.#onBatch?.(items.length);
    try {
      return await this.#inner.predictChunk(items, cancel);
    } finally {
      this.#retire(batch);
    }
  }

  async #dispatch(entries: Entry[]): Promise<void> {
    const [cancel, controller] = batchCancellation(entries);
    const batch: Batch = { entries, controller };
    this.#running.push(batch);
    this.#onBatch?.(entries.length);
    try {
      const outcomes = await this.#inner.predictChunk(
        entries.map((entry) => entry.raw),
        cancel,
      );
      entries.forEach((entry, i) => {
        this.#answer(entry.ticket, entry.index, outcomes[i] as ItemOutcome);
      });
    } finally {
      this.#retire(batch);
    }
  }

  /** A batch's predictBatch call is over: its slot frees, and the queue may start the next. */
  #retire(batch: Batch): void {
    this.#running.splice(this.#running.indexOf(batch), 1);
    this.#pump();
  }

  #answer(ticket: Ticket, index: number, outcome: ItemOutcome): void {
    if (ticket.done) return; // cancelled meanwhile: it has its answer
    ticket.outcomes[index] = outcome;
    ticket.pending--;
    if (ticket.pending === 0) this.#finish(ticket);
  }

  #finish(ticket: Ticket): void {
    ticket.done = true;
    ticket.detach?.();
    ticket.resolve(ticket.outcomes as ItemOutcome[]);
  }

  /** The caller went away: its queued items become dead (skipped when taken), all its unanswered ones CANCELLED; batches nobody waits for abort. */
  #cancel(ticket: Ticket): void {
    if (ticket.done) return;
    this.#dead += ticket.queued;
    ticket.queued = 0;
    const reason = cancelledError();
    for (let i = 0; i < ticket.outcomes.length; i++) {
      if (ticket.outcomes[i] === undefined) ticket.outcomes[i] = failure(reason);
    }
    this.#finish(ticket);
    this.#clearIfAllDead();
    for (const { controller, entries } of this.#running) {
      if (controller && !controller.aborted && entries.every((entry) => entry.ticket.done)) controller.abort(reason);
    }
  }
}

/**
 * The cancellation of a batch's predictBatch call, which must abort once no
 * caller waits for the batch. The lone caller's own does that (the common
 * case at low load); a caller that cannot go away makes a batch holding it
 * need none; otherwise the batch gets its own, aborted by #cancel.
 */
function batchCancellation(entries: readonly Entry[]): [Cancellation | undefined, LazyAbortSource | undefined] {
  const first = (entries[0] as Entry).ticket;
  let lone = true;
  for (const { ticket } of entries) {
    if (!ticket.cancel) return [undefined, undefined];
    if (ticket !== first) lone = false;
  }
  if (lone) return [first.cancel, undefined];
  const controller = new LazyAbortSource();
  return [controller, controller];
}
