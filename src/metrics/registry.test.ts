import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Counter, Histogram, Registry, type RegistrySnapshot, renderMerged } from "./registry.js";
import { ServingMetrics } from "./serving.js";

describe("metrics registry", () => {
  test("counters count per label set, through inc() and through a kept child", () => {
    const counter = new Counter("calls_total", "Calls.");
    const omi = counter.child({ interface: "omi" });
    omi.inc();
    omi.inc(2);
    counter.inc({ interface: "omi" });
    counter.inc({ interface: "v1" }, 5);
    assert.equal(counter.get({ interface: "omi" }), 4);
    assert.equal(counter.get({ interface: "v1" }), 5);
    assert.equal(counter.get({ interface: "v2" }), 0);
    assert.equal(
      counter.render(),
      '# HELP calls_total Calls.\n# TYPE calls_total counter\ncalls_total{interface="omi"} 4\ncalls_total{interface="v1"} 5\n',
    );
  });

  test("histograms fill cumulative buckets, +Inf, count and sum; label values are escaped", () => {
    const histogram = new Histogram("latency_seconds", "Latency.", [0.1, 1]);
    const series = histogram.child({ model_name: 'a"b' });
    series.observe(0.05);
    series.observe(0.5);
    histogram.observe({ model_name: 'a"b' }, 2);
    const text = histogram.render();
    assert.match(text, /latency_seconds_bucket\{model_name="a\\"b",le="0.1"\} 1\n/);
    assert.match(text, /latency_seconds_bucket\{model_name="a\\"b",le="1"\} 2\n/);
    assert.match(text, /latency_seconds_bucket\{model_name="a\\"b",le="\+Inf"\} 3\n/);
    assert.match(text, /latency_seconds_count\{model_name="a\\"b"\} 3\n/);
    assert.match(text, /latency_seconds_sum\{model_name="a\\"b"\} 2.55\n/);
    assert.equal(histogram.count({ model_name: 'a"b' }), 3);
  });

  test("a registry renders its metrics in order, then process metrics", () => {
    const registry = new Registry();
    registry.register(new Counter("first_total", "First.")).inc();
    const text = registry.render();
    assert.ok(text.indexOf("first_total") < text.indexOf("process_resident_memory_bytes"));
    assert.match(text, /^process_cpu_seconds_total \d/m);
  });

  test("snapshots of several processes merge: series summed by labels, process figures added up", () => {
    const registryOf = (omiCalls: number, v1Calls: number, seconds: number[]) => {
      const registry = new Registry();
      const counter = registry.register(new Counter("calls_total", "Calls."));
      if (omiCalls) counter.inc({ interface: "omi" }, omiCalls);
      if (v1Calls) counter.inc({ interface: "v1" }, v1Calls);
      const histogram = registry.register(new Histogram("latency_seconds", "Latency.", [0.1, 1]));
      for (const s of seconds) histogram.observe({ model_name: "m" }, s);
      return registry;
    };
    const one = registryOf(3, 0, [0.05]).snapshot();
    const two = registryOf(4, 2, [0.5, 2]).snapshot();
    const primary: RegistrySnapshot = { metrics: [], process: { cpuSeconds: 0.5, rssBytes: 1000, startTime: 1, heapUsedBytes: 10 } };
    const text = renderMerged([primary, one, two]);
    assert.match(text, /^calls_total\{interface="omi"\} 7$/m);
    assert.match(text, /^calls_total\{interface="v1"\} 2$/m, "a series that only one process has is kept");
    assert.match(text, /^latency_seconds_bucket\{model_name="m",le="0.1"\} 1$/m);
    assert.match(text, /^latency_seconds_bucket\{model_name="m",le="1"\} 2$/m);
    assert.match(text, /^latency_seconds_count\{model_name="m"\} 3$/m);
    assert.match(text, /^latency_seconds_sum\{model_name="m"\} 2.55$/m);
    const created = (snapshot: RegistrySnapshot) => {
      const histogram = snapshot.metrics[1];
      return histogram?.type === "histogram" ? (histogram.series[0]?.created as number) : Number.NaN;
    };
    assert.match(text, new RegExp(`^latency_seconds_created\\{model_name="m"\\} ${Math.min(created(one), created(two))}$`, "m"));
    const rss = one.process.rssBytes + two.process.rssBytes + 1000;
    assert.match(text, new RegExp(`^process_resident_memory_bytes ${rss}$`, "m"));
    assert.match(text, /^process_start_time_seconds 1$/m, "the earliest start");
    // One snapshot merged is the registry's own rendering.
    const single = registryOf(1, 1, [0.2]);
    const snapshot = single.snapshot();
    assert.equal(renderMerged([snapshot]).split("process_cpu_seconds_total")[0], single.render().split("process_cpu_seconds_total")[0]);
    // The IPC channel carries JSON: a snapshot survives it.
    assert.equal(renderMerged([JSON.parse(JSON.stringify(snapshot)) as RegistrySnapshot]), renderMerged([snapshot]));
  });

  test("a metric that is a counter in one snapshot and a histogram in another is refused", () => {
    const a = new Registry();
    a.register(new Counter("x", "X.")).inc();
    const b = new Registry();
    b.register(new Histogram("x", "X.")).observe({}, 1);
    assert.throws(() => renderMerged([a.snapshot(), b.snapshot()]), /metric x is a counter in one snapshot and a histogram/);
  });

  test("serving metrics show a series only once it has been used, and count by interface and outcome", () => {
    const metrics = new ServingMetrics("m");
    assert.doesNotMatch(metrics.registry.render(), /request_predict_seconds_bucket/);
    metrics.recordRun("omi", 0.002, 2, 1);
    metrics.recordRun("omi", 0.002, 3, 0);
    metrics.recordRefused("v2");
    assert.equal(metrics.requests.get({ interface: "omi", outcome: "item_error" }), 1);
    assert.equal(metrics.requests.get({ interface: "omi", outcome: "ok" }), 1);
    assert.equal(metrics.requests.get({ interface: "v2", outcome: "error" }), 1);
    assert.equal(metrics.items.get({ interface: "omi", outcome: "ok" }), 5);
    assert.equal(metrics.items.get({ interface: "omi", outcome: "failed" }), 1);
    assert.equal(metrics.predict.count({ model_name: "m" }), 2);
  });
});
