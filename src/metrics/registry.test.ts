import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Counter, Histogram, Registry } from "./registry.js";
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
