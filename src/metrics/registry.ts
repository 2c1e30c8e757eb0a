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

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  readonly #series = new Map<string, { labels: Labels; value: number }>();
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

  render(): string {
    let text = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const { labels, value } of this.#series.values()) text += `${this.name}${labelText(labels)} ${value}\n`;
    return text;
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

  render(): string {
    let text = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (const s of this.#series.values()) {
      this.buckets.forEach((bound, i) => {
        text += `${this.name}_bucket${labelText(s.labels, ["le", String(bound)])} ${s.counts[i]}\n`;
      });
      text += `${this.name}_bucket${labelText(s.labels, ["le", "+Inf"])} ${s.count}\n`;
      text += `${this.name}_count${labelText(s.labels)} ${s.count}\n`;
      text += `${this.name}_sum${labelText(s.labels)} ${s.sum}\n`;
      text += `${this.name}_created${labelText(s.labels)} ${s.created}\n`;
    }
    return text;
  }
}

const startTime = Date.now() / 1000 - process.uptime();

function processMetrics(): string {
  const { user, system } = cpuUsage();
  const gauge = (name: string, help: string, value: number, type = "gauge") =>
    `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}\n`;
  return (
    gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", (user + system) / 1e6, "counter") +
    gauge("process_resident_memory_bytes", "Resident memory size in bytes.", memoryUsage.rss()) +
    gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", startTime) +
    gauge("nodejs_heap_used_bytes", "V8 heap in use, in bytes.", memoryUsage().heapUsed)
  );
}

export class Registry {
  readonly #metrics: Metric[] = [];

  register<M extends Metric>(metric: M): M {
    this.#metrics.push(metric);
    return metric;
  }

  /** The Prometheus text exposition format, metrics in registration order, then process metrics. */
  render(): string {
    return this.#metrics.map((m) => m.render()).join("") + processMetrics();
  }
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
