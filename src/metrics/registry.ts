/**
 * @module metrics/registry
 * A small Prometheus registry: counters and histograms with labels, plus the
 * standard process metrics, rendered in the text exposition format (0.0.4).
 * Shared by every protocol adapter, so `/metrics` counts OMI and KServe calls.
 */
import { cpuUsage, memoryUsage } from "node:process";

type Labels = Readonly<Record<string, string>>;

/** KServe's (prometheus_client's) default buckets, in seconds. */
export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels);
  if (extra) pairs.push(extra);
  if (pairs.length === 0) return "";
  return `{${pairs.map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`).join(",")}}`;
}

function keyOf(labels: Labels): string {
  return JSON.stringify(Object.entries(labels));
}

/** A metric's series as plain data: what a worker sends its primary to merge (server/workers.ts). */
export type MetricSnapshot =
  | { readonly type: "counter"; readonly name: string; readonly help: string; readonly series: ReadonlyArray<CounterSeries> }
  | {
      readonly type: "histogram";
      readonly name: string;
      readonly help: string;
      readonly buckets: readonly number[];
      readonly series: ReadonlyArray<HistogramSeries>;
    };

/** The process figures /metrics ends with. */
export interface ProcessSnapshot {
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  readonly startTime: number;
  readonly heapUsedBytes: number;
}

/** A registry as plain data (structured-clone and JSON safe). */
export interface RegistrySnapshot {
  readonly metrics: readonly MetricSnapshot[];
  readonly process: ProcessSnapshot;
}

interface CounterSeries {
  labels: Labels;
  value: number;
}

interface Metric {
  snapshot(): MetricSnapshot;
}

export class Counter implements Metric {
  readonly #series = new Map<string, CounterSeries>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    this.child(labels).inc(by);
  }

  /** The series for fixed labels, resolved once: hot paths keep it and skip the label lookup. */
  child(labels: Labels): { inc(by?: number): void } {
    const key = keyOf(labels);
    let series = this.#series.get(key);
    if (!series) {
      series = { labels, value: 0 };
      this.#series.set(key, series);
    }
    const resolved = series;
    return {
      inc: (by = 1) => {
        resolved.value += by;
      },
    };
  }

  get(labels: Labels = {}): number {
    return this.#series.get(keyOf(labels))?.value ?? 0;
  }

  /** This metric alone, in the exposition format. */
  render(): string {
    return renderMetric(this.snapshot());
  }

  snapshot(): MetricSnapshot {
    return { type: "counter", name: this.name, help: this.help, series: [...this.#series.values()].map((s) => ({ ...s })) };
  }
}

interface HistogramSeries {
  labels: Labels;
  counts: number[];
  sum: number;
  count: number;
  created: number;
}

export class Histogram implements Metric {
  readonly #series = new Map<string, HistogramSeries>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {}

  observe(labels: Labels, seconds: number): void {
    this.child(labels).observe(seconds);
  }

  /** The series for fixed labels, resolved once: hot paths keep it and skip the label lookup. */
  child(labels: Labels): { observe(seconds: number): void } {
    const key = keyOf(labels);
    let series = this.#series.get(key);
    if (!series) {
      series = { labels, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0, created: Date.now() / 1000 };
      this.#series.set(key, series);
    }
    const resolved = series;
    const buckets = this.buckets;
    return {
      observe: (seconds: number) => {
        for (let i = 0; i < buckets.length; i++) if (seconds <= (buckets[i] as number)) (resolved.counts[i] as number)++;
        resolved.sum += seconds;
        resolved.count++;
      },
    };
  }

  count(labels: Labels): number {
    return this.#series.get(keyOf(labels))?.count ?? 0;
  }

  /** This metric alone, in the exposition format. */
  render(): string {
    return renderMetric(this.snapshot());
  }

  snapshot(): MetricSnapshot {
    const series = [...this.#series.values()].map((s) => ({ ...s, counts: [...s.counts] }));
    return { type: "histogram", name: this.name, help: this.help, buckets: this.buckets, series };
  }
}

function renderMetric(metric: MetricSnapshot): string {
  const { name } = metric;
  let text = `# HELP ${name} ${metric.help}\n# TYPE ${name} ${metric.type}\n`;
  if (metric.type === "counter") {
    for (const { labels, value } of metric.series) text += `${name}${labelText(labels)} ${value}\n`;
    return text;
  }
  for (const s of metric.series) {
    metric.buckets.forEach((bound, i) => {
      text += `${name}_bucket${labelText(s.labels, ["le", String(bound)])} ${s.counts[i]}\n`;
    });
    text += `${name}_bucket${labelText(s.labels, ["le", "+Inf"])} ${s.count}\n`;
    text += `${name}_count${labelText(s.labels)} ${s.count}\n`;
    text += `${name}_sum${labelText(s.labels)} ${s.sum}\n`;
    text += `${name}_created${labelText(s.labels)} ${s.created}\n`;
  }
  return text;
}

/** Series of the same metric and labels added up (a histogram's `_created`: the earliest). */
function mergeMetrics(a: MetricSnapshot, b: MetricSnapshot): MetricSnapshot {
  if (a.type === "counter" && b.type === "counter") {
    const series = new Map(a.series.map((s) => [keyOf(s.labels), { ...s }]));
    for (const s of b.series) {
      const known = series.get(keyOf(s.labels));
      if (known) known.value += s.value;
      else series.set(keyOf(s.labels), { ...s });
    }
    return { ...a, series: [...series.values()] };
  }
  if (a.type === "histogram" && b.type === "histogram" && a.buckets.join() === b.buckets.join()) {
    const series = new Map(a.series.map((s) => [keyOf(s.labels), { ...s, counts: [...s.counts] }]));
    for (const s of b.series) {
      const known = series.get(keyOf(s.labels));
      if (!known) {
        series.set(keyOf(s.labels), { ...s, counts: [...s.counts] });
        continue;
      }
      s.counts.forEach((count, i) => {
        known.counts[i] = (known.counts[i] as number) + count;
      });
      known.sum += s.sum;
      known.count += s.count;
      known.created = Math.min(known.created, s.created);
    }
    return { ...a, series: [...series.values()] };
  }
  throw new Error(`metric ${a.name} is a ${a.type} in one snapshot and a ${b.type} (or other buckets) in another`);
}

const startTime = Date.now() / 1000 - process.uptime();

/** This process's figures now. */
export function processSnapshot(): ProcessSnapshot {
  const { user, system } = cpuUsage();
  return { cpuSeconds: (user + system) / 1e6, rssBytes: memoryUsage.rss(), startTime, heapUsedBytes: memoryUsage().heapUsed };
}

function renderProcess(p: ProcessSnapshot): string {
  const gauge = (name: string, help: string, value: number, type = "gauge") =>
    `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}\n`;
  return (
    gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", p.cpuSeconds, "counter") +
    gauge("process_resident_memory_bytes", "Resident memory size in bytes.", p.rssBytes) +
    gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", p.startTime) +
    gauge("nodejs_heap_used_bytes", "V8 heap in use, in bytes.", p.heapUsedBytes)
  );
}

/**
 * Several processes' registries as one exposition (`--workers`): each series
 * summed over them, metrics in the first snapshot's order, and the process
 * figures of them all: CPU, RSS and heap added up, the earliest start time.
 */
export function renderMerged(snapshots: readonly RegistrySnapshot[]): string {
  const byName = new Map<string, MetricSnapshot>();
  for (const snapshot of snapshots) {
    for (const metric of snapshot.metrics) {
      const known = byName.get(metric.name);
      byName.set(metric.name, known ? mergeMetrics(known, metric) : metric);
    }
  }
  const processes = snapshots.map((s) => s.process);
  const total: ProcessSnapshot = {
    cpuSeconds: processes.reduce((sum, p) => sum + p.cpuSeconds, 0),
    rssBytes: processes.reduce((sum, p) => sum + p.rssBytes, 0),
    startTime: Math.min(...processes.map((p) => p.startTime)),
    heapUsedBytes: processes.reduce((sum, p) => sum + p.heapUsedBytes, 0),
  };
  return [...byName.values()].map(renderMetric).join("") + renderProcess(total);
}

export class Registry {
  readonly #metrics: Metric[] = [];

  register<M extends Metric>(metric: M): M {
    this.#metrics.push(metric);
    return metric;
  }

  /** The metrics' series now, and this process's figures. */
  snapshot(): RegistrySnapshot {
    return { metrics: this.#metrics.map((m) => m.snapshot()), process: processSnapshot() };
  }

  /** The Prometheus text exposition format, metrics in registration order, then process metrics. */
  render(): string {
    const { metrics, process } = this.snapshot();
    return metrics.map(renderMetric).join("") + renderProcess(process);
  }
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
