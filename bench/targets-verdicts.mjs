/**
 * The verdicts of bench/targets.mjs: issue 5's targets against the figures
 * its steps wrote (the --json of serve.mjs, coldstart.mjs and soak.mjs).
 * Apart, and pure, so that test/bench/targets-verdicts.test.ts can check
 * each verdict on made-up figures.
 */

/** Published by the Chassis reference at 16x16 (../shared/reference/omi-chassis.md), not measured here. */
export const REFERENCE_REQ_PER_S = { echo: 3257, digits: 2193 };

/** The verdict lines, from whichever steps ran. */
export function verdictsOf({ serve, workersOmi, workersV1, batching, batchingInProcess, coldstart, soak }) {
  const out = [];
  const fmt = (x, digits = 2) => x.toFixed(digits);
  const ratioText = (r) => `${fmt(r.ratio)}x${r.ratioRange ? ` (${fmt(r.ratioRange[0])}-${fmt(r.ratioRange[1])})` : ""}`;
  const find = (set, label, protocol, c, m) =>
    set?.results.find((r) => r.label === label && r.protocol === protocol && r.c === c && r.m === m);
  const add = (item, target, measured, met) => out.push({ item, target, measured, met });

  if (serve) {
    for (const [protocol, name, baseline] of [
      ["omi", "OMI Run", "node:http2"],
      ["v1", "KServe v1", "node:http"],
    ]) {
      const r = find(serve, "chassis-ts", protocol, 16, 16);
      if (r) {
        add(
          `2. ${name}, echo, 16x16, one process`,
          `>= 0.8 of the ${baseline} baseline`,
          `${ratioText(r)}: ${fmt(r.reqPerS, 0)} req/s, ${fmt(r.cpuUsPerReq, 0)} µs of server CPU per request`,
          r.ok && r.ratio >= 0.8,
        );
      }
    }
    for (const protocol of ["omi", "v1"]) {
      const r = find(serve, "chassis-ts", protocol, 16, 1);
      const base = find(serve, "node-baseline", protocol, 16, 1);
      if (r) {
        const p99 = r.p99Runs?.median ?? r.p99;
        const range = r.p99Runs ? ` (runs ${fmt(r.p99Runs.min)}-${fmt(r.p99Runs.max)})` : "";
        add(
          `2. p99, ${protocol === "omi" ? "OMI" : "KServe v1"} echo, 16x1`,
          "< 2 ms",
          `${fmt(p99)} ms${range}; baseline ${fmt(base?.p99Runs?.median ?? base?.p99 ?? Number.NaN)} ms`,
          r.ok && p99 < 2,
        );
      }
    }
  }
  for (const [set, name] of [
    [workersOmi, "OMI"],
    [workersV1, "KServe v1 (wrk)"],
  ]) {
    for (const r of set?.results.filter((x) => x.label === "chassis-ts w2") ?? []) {
      const w1 = set.comparisons.find((x) => x.protocol === r.protocol && x.c === r.c && x.m === r.m);
      add(
        `3. --workers 2, ${name}, echo, ${r.c}x${r.m}`,
        ">= 1.3x the single-process baseline",
        `${ratioText(r)}; w2/w1 ${w1 ? fmt(w1["req/s"].median) : "?"}; load generator ${fmt(r.loadCpu, 0)}% of a core, machine ${fmt(r.machineBusy, 0)}% busy`,
        r.ok && r.ratio >= 1.3,
      );
    }
  }
  if (batching) {
    const onOff = batching.comparisons.filter((x) => x.versus === "chassis-ts batching off");
    for (const cmp of onOff.filter((x) => x.c * x.m === 64)) {
      const reqs = cmp["req/s"];
      add(
        `4. batching, digits, 64 in flight (${cmp.c}x${cmp.m})`,
        ">= 3x req/s, on vs off",
        `${fmt(reqs.median)}x (${fmt(reqs.min)}-${fmt(reqs.max)})`,
        reqs.median >= 3,
      );
    }
    const one = onOff.find((x) => x.c === 1 && x.m === 1);
    if (one) {
      add(
        "4. batching, 1 connection (1x1)",
        "latency within 10% of off",
        `p50 on/off ${fmt(one.p50.median)} (${fmt(one.p50.min)}-${fmt(one.p50.max)}), p99 ${fmt(one.p99.median)}`,
        one.p50.median <= 1.1,
      );
    }
  }
  // Reported beside the verdicts over the wire: what batching gains the model when no transport shares the bill.
  const inProcess = batchingInProcess?.results.find((r) => r.concurrency === 64 && r.onOff);
  if (inProcess) {
    const { onOff } = inProcess;
    add(
      "4. batching in-process (Runtime.run, no transport), digits, 64 callers",
      "reported: the 3x is judged over the wire, above",
      `${fmt(onOff.perS)}x (rounds ${fmt(onOff.roundsMin)}-${fmt(onOff.roundsMax)}): ${fmt(inProcess.perS, 0)} calls/s on, ` +
        `${fmt(inProcess.perBatch, 1)} items per predictBatch${batchingInProcess.failures ? `; ${batchingInProcess.failures} wrong answers` : ""}`,
      undefined,
    );
  }
  if (coldstart) {
    const digits = coldstart.models.digits;
    if (digits) {
      add(
        "5. cold start, digits",
        "median < 300 ms",
        `${fmt(digits.medianMs, 0)} ms (${fmt(digits.minMs, 0)}-${fmt(digits.maxMs, 0)}) of ${digits.starts}; node -e 0 ${fmt(coldstart.bare.medianMs, 0)} ms`,
        digits.medianMs < 300,
      );
    }
    for (const [model, m] of Object.entries(coldstart.models)) {
      add(
        `5. RSS, ${model}`,
        "reported",
        `${fmt(m.rssAtStatusMiB, 1)} MiB at the first Status${m.after ? `; ${fmt(m.after.rssMiB, 1)} MiB (peak ${fmt(m.after.hwmMiB, 1)}) after ${m.after.summary}` : ""}`,
        undefined,
      );
    }
  }
  if (soak) {
    add(
      `6. soak, ${fmt(soak.seconds / 60, 1)} min, OMI + v1 16x16`,
      "no error, RSS growth < 10%",
      `${soak.omi.done} OMI + ${soak.v1.done} v1 calls, ${soak.omi.problems.length + soak.v1.problems.length} problems, ` +
        `${soak.checks.failed} of ${soak.checks.total} checks failed; RSS ${fmt(soak.rss.settledMiB, 1)} -> ${fmt(soak.rss.finalMiB, 1)} MiB (${fmt(soak.rss.growthPercent, 1)}%)`,
      soak.passed,
    );
  }
  const echo = find(serve, "chassis-ts", "omi", 16, 16);
  const digits = find(batching, "chassis-ts batching on", "omi", 16, 16);
  for (const [model, r] of [
    ["echo", echo],
    ["digits", digits],
  ]) {
    if (!r) continue;
    const times = r.reqPerS / REFERENCE_REQ_PER_S[model];
    add(
      `goal: OMI ${model} 16x16 against the Chassis reference`,
      ">= 5x its published req/s",
      `${fmt(times, 1)}x: ${fmt(r.reqPerS, 0)} against ${REFERENCE_REQ_PER_S[model]} req/s (published, not this run)`,
      r.ok && times >= 5,
    );
  }
  /** With targets.mjs --versus-*: chassis-ts (`ours`) against the other server of `set` at 16x16, round by round. */
  const sameRun = (set, protocol, ours) => {
    const cmp = set?.comparisons?.find((x) => x.protocol === protocol && x.c === 16 && x.m === 16 && !x.versus.startsWith("chassis-ts"));
    const theirs = cmp && find(set, cmp.versus, protocol, 16, 16);
    if (!cmp || !ours || !theirs) return undefined;
    const reqs = cmp["req/s"];
    const measured =
      `${fmt(reqs.median)}x (${fmt(reqs.min)}-${fmt(reqs.max)}): ${fmt(ours.reqPerS, 0)} against ${fmt(theirs.reqPerS, 0)} req/s; ` +
      `${fmt(ours.cpuUsPerReq, 0)} against ${fmt(theirs.cpuUsPerReq, 0)} µs of server CPU per call`;
    return { versus: cmp.versus, median: reqs.median, verified: ours.ok && theirs.ok, measured };
  };
  // The goal against an OMI server measured in this run (--versus-echo / --versus-digits).
  for (const [model, set, ours] of [
    ["echo", serve, echo],
    ["digits", batching, digits],
  ]) {
    const other = sameRun(set, "omi", ours);
    if (other)
      add(
        `goal: OMI ${model} 16x16 against ${other.versus}, in this run`,
        ">= 5x its req/s, round by round",
        other.measured,
        other.verified && other.median >= 5,
      );
  }
  // KServe v1 against another v1 server of this run (--versus-v1), reported: the issue sets no threshold.
  const v1 = sameRun(serve, "v1", find(serve, "chassis-ts", "v1", 16, 16));
  if (v1)
    add(
      `KServe v1 echo 16x16 against ${v1.versus}, in this run`,
      "reported",
      `${v1.measured}${v1.verified ? "" : "; a run did not verify"}`,
      undefined,
    );
  return out;
}
