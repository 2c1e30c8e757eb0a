/**
 * bench/ scripts take their flags through bench/lib-args.mjs: a mistyped flag,
 * a value of the wrong kind or a missing value must stop a benchmark before it
 * measures anything (a silently ignored `--duraton 4` would measure the
 * default), with one line naming the flag and what it takes, exit code 2 and
 * no stack trace.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  count,
  counts,
  flag,
  localPort,
  number,
  oneOf,
  parseArgs,
  positive,
  someOf,
  text,
  UsageError,
  usage,
  whole,
} from "../../bench/lib-args.mjs";
import { runProcess } from "../helpers/server.js";

const SPEC = {
  runs: count(3),
  retries: whole(1),
  duration: positive(),
  "wait-idle": number(30),
  sizes: counts([10, 20]),
  protocol: oneOf(["omi", "v1", "both"], "both"),
  skip: someOf(["serve", "soak"]),
  json: text("a file"),
  pin: flag(),
  versus: localPort(),
};

const refused = (argv: string[], message: RegExp) =>
  assert.throws(
    () => parseArgs(argv, SPEC),
    (error: unknown) => error instanceof UsageError && message.test(error.message),
  );

describe("bench/lib-args.mjs parseArgs", () => {
  test("every flag not given takes its default; values come typed", () => {
    assert.deepEqual(parseArgs([], SPEC), {
      runs: 3,
      retries: 1,
      "wait-idle": 30,
      sizes: [10, 20],
      protocol: "both",
      skip: [],
      pin: false,
    });
    assert.deepEqual(
      parseArgs(
        ["--runs", "5", "--retries=0", "--duration", "0.5", "--sizes", "1,2,3", "--skip", "soak,serve", "--json", "out.json", "--pin"],
        SPEC,
      ),
      {
        runs: 5,
        retries: 0,
        duration: 0.5,
        "wait-idle": 30,
        sizes: [1, 2, 3],
        protocol: "both",
        skip: ["soak", "serve"],
        json: "out.json",
        pin: true,
      },
    );
    assert.equal(parseArgs(["--versus", "45001"], SPEC).versus, 45001);
    assert.equal(parseArgs(["--versus", "127.0.0.1:45001"], SPEC).versus, 45001);
  });

  test("a mistyped flag is refused, naming the flag it is close to", () => {
    refused(["--duraton", "4"], /^unknown flag --duraton \(did you mean --duration\?\)$/);
    refused(["--frobnicate", "1"], /^unknown flag --frobnicate$/);
    refused(["16x16"], /^unexpected argument 16x16/);
  });

  test("a value of the wrong kind is refused, saying what the flag takes and what it got", () => {
    refused(["--runs", "0"], /^--runs takes a whole number, 1 or more, got "0"$/);
    refused(["--runs", "2.5"], /--runs takes a whole number, 1 or more/);
    refused(["--runs", "3x"], /--runs takes a whole number, 1 or more, got "3x"/);
    refused(["--retries", "-1"], /--retries takes a whole number, 0 or more/);
    refused(["--duration", "0"], /--duration takes a number above 0, got "0"/);
    refused(["--wait-idle", ""], /--wait-idle takes a number, 0 or more, got ""/);
    refused(["--sizes", "10,,20"], /--sizes takes whole numbers, 1 or more, separated by commas/);
    refused(["--protocol", "grpc"], /--protocol takes one of omi, v1, both, got "grpc"/);
    refused(["--skip", "serve,workers"], /--skip takes some of serve, soak, separated by commas, got "serve,workers"/);
    refused(["--versus", "10.0.0.1:80"], /--versus takes a port on this machine, PORT or 127\.0\.0\.1:PORT, got "10\.0\.0\.1:80"/);
    refused(["--versus", "70000"], /--versus takes a port on this machine/);
    refused(["--json", ""], /--json takes a file, got ""/);
  });

  test("a missing value, and a value given to a flag that takes none, are refused", () => {
    refused(["--runs"], /^--runs needs a whole number, 1 or more$/);
    refused(["--json", "--pin"], /^--json needs a file$/);
    assert.equal(parseArgs(["--json=--pin"], SPEC).json, "--pin");
    refused(["--pin=yes"], /^--pin takes no value, got --pin=yes$/);
  });

  test("usage lists every flag with what it takes and its default", () => {
    const text = usage(SPEC);
    assert.match(text, /--runs: a whole number, 1 or more \(default 3\)/);
    assert.match(text, /--sizes: whole numbers, 1 or more, separated by commas \(default 10,20\)/);
    assert.match(text, /--pin: no value$/m);
    assert.match(text, /--json: a file$/m);
  });
});

describe("bench/ scripts refuse bad flags before measuring anything", () => {
  const cases: [script: string, argv: string[], message: RegExp][] = [
    ["serve.mjs", ["--duraton", "4"], /^serve\.mjs: unknown flag --duraton \(did you mean --duration\?\); see --help$/],
    ["serve.mjs", ["--configs", "16y16"], /^serve\.mjs: --configs takes connections x streams, e\.g\. 16x16,1x1; got "16y16"; see --help$/],
    ["serve.mjs", ["--pin", "--workers", "2"], /^serve\.mjs: --pin puts the server on one core: it does not go with --workers/],
    ["serve.mjs", ["--versus-pid", "4"], /^serve\.mjs: --versus-pid goes with --versus PORT; see --help$/],
    ["serve.mjs", ["--versus-v1", "4", "--versus-v1-label", "chassis-ts"], /^serve\.mjs: --versus-v1-label must be 1-20 letters/],
    ["targets.mjs", ["--skip", "serve,soka"], /^targets\.mjs: --skip takes some of serve, workers, batching, coldstart, soak/],
    ["targets.mjs", ["--versus-digits", "host:1"], /^targets\.mjs: --versus-digits takes a port on this machine/],
    // Checked at once, not when its step comes minutes later: port 1 has no server.
    [
      "targets.mjs",
      ["--versus-digits", "1"],
      /^targets\.mjs: --versus-digits: nothing answers on 127\.0\.0\.1:1 \(ECONNREFUSED\); start that server first/,
    ],
    ["targets.mjs", ["--versus-v1", "1", "--skip", "serve"], /^targets\.mjs: --versus-v1 joins the serve step, which --skip leaves out/],
    ["coldstart.mjs", ["--models", "digits,resnet"], /^coldstart\.mjs: --models takes some of digits, echo/],
    ["soak.mjs", ["--minutes", "0.1"], /^soak\.mjs: --minutes must give at least 10 s/],
    ["build.mjs", ["--runs", "3"], /^build\.mjs: unknown flag --runs; see --help$/],
    ["profile-summary.mjs", [], /^profile-summary\.mjs: the first argument is the folder of \.cpuprofile files/],
  ];
  for (const [script, argv, message] of cases) {
    test(`${script} ${argv.join(" ")}`, async () => {
      const run = await runProcess(process.execPath, [`bench/${script}`, ...argv], { timeoutMs: 30_000 });
      const transcript = `exit ${run.code}\n${run.stdout}\n${run.stderr}`;
      assert.equal(run.code, 2, transcript);
      assert.match(run.stderr.trim(), message, transcript);
      assert.doesNotMatch(run.stderr, /\n\s+at /, `no stack trace: ${transcript}`);
      assert.equal(run.stdout, "", `nothing measured or printed: ${transcript}`);
    });
  }

  test("bench/ab.sh (positional arguments) names a missing checkout or a bad number, with its usage", async () => {
    for (const [argv, message] of [
      [[], /^ab\.sh: takes two checkouts, then ROUNDS, SECONDS and PROTOCOL if given; got 0 arguments \(usage: bench\/ab\.sh CHECKOUT_A/],
      [[".", "/nonexistent"], /^ab\.sh: \/nonexistent is not a chassis-ts checkout \(no bin\/chassis\.js\)/],
      [[".", ".", "six"], /^ab\.sh: ROUNDS must be a whole number, 1 or more, got six/],
      [[".", ".", "2", "3", "http"], /^ab\.sh: PROTOCOL must be v1 or omi, got http/],
    ] as [string[], RegExp][]) {
      const run = await runProcess("bash", ["bench/ab.sh", ...argv], { timeoutMs: 30_000 });
      assert.equal(run.code, 2, `${argv.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr.trim(), message);
    }
  });

  test("--help lists the flags and exits 0", async () => {
    const run = await runProcess(process.execPath, ["bench/serve.mjs", "--help"], { timeoutMs: 30_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^usage: node bench\/serve\.mjs \[flags\]/);
    assert.match(run.stdout, /--versus: a port on this machine, PORT or 127\.0\.0\.1:PORT \(its CPU and memory are read from \/proc\)/);
    const summary = await runProcess(process.execPath, ["bench/profile-summary.mjs", "--help"], { timeoutMs: 30_000 });
    assert.equal(summary.code, 0, summary.stderr);
    assert.match(summary.stdout, /^usage: node bench\/profile-summary\.mjs DIR \(the folder serve\.mjs --cpu-prof wrote\) \[flags\]/);
  });
});
