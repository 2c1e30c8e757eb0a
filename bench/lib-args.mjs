/**
 * Command-line flags for bench/ scripts (no dependencies, so the baseline server imports nothing else).
 *
 * Each script declares its flags, and what each takes, with the kinds below; `readArgs` then refuses what
 * a benchmark must not silently run with: a mistyped flag (`--duraton 4` would otherwise measure the
 * default), a value of the wrong kind, a flag without its value. The refusal is one line naming the flag
 * and what it takes, exit code 2, no stack trace; `--help` lists the flags with their defaults.
 */

/** A flag's kind: `parse` turns the text after it into its value or returns undefined; `takes` says what it takes. */
function kind(takes, parse, fallback) {
  return { takes, parse, default: fallback };
}

const isCount = (v) => Number.isInteger(v) && v >= 1;
const numberOf = (text) => (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text.trim()) ? Number(text) : Number.NaN);

/** Present or not: no value. */
export const flag = () => ({ takes: "no value", parse: undefined, default: false, boolean: true });
/** Any text but empty; `takes` says what it is ("a file", "[127.0.0.1:]PORT"). */
export const text = (takes, fallback) => kind(takes, (t) => (t === "" ? undefined : t), fallback);
/** A kind of number: the numbers `accepts` takes, described by `takes`. */
const numeric = (takes, accepts) => (fallback) =>
  kind(
    takes,
    (t) => {
      const value = numberOf(t);
      return accepts(value) ? value : undefined;
    },
    fallback,
  );
/** A whole number, 1 or more. */
export const count = numeric("a whole number, 1 or more", isCount);
/** A whole number, 0 or more. */
export const whole = numeric("a whole number, 0 or more", (v) => Number.isInteger(v) && v >= 0);
/** A number above 0. */
export const positive = numeric("a number above 0", (v) => v > 0);
/** A number, 0 or more. */
export const number = numeric("a number, 0 or more", (v) => v >= 0);
/** Whole numbers, 1 or more, separated by commas: an array. */
export const counts = (fallback) =>
  kind(
    "whole numbers, 1 or more, separated by commas",
    (t) => {
      const values = t.split(",").map(numberOf);
      return values.every(isCount) ? values : undefined;
    },
    fallback,
  );
/** One of `choices`. */
export const oneOf = (choices, fallback) => kind(`one of ${choices.join(", ")}`, (t) => (choices.includes(t) ? t : undefined), fallback);
/** Some of `choices`, separated by commas: an array (empty when the flag is not given and there is no default). */
export const someOf = (choices, fallback = []) =>
  kind(
    `some of ${choices.join(", ")}, separated by commas`,
    (t) => {
      const values = t.split(",").filter(Boolean);
      return values.length > 0 && values.every((v) => choices.includes(v)) ? values : undefined;
    },
    fallback,
  );

/** A port on this machine, PORT or 127.0.0.1:PORT (or localhost:PORT): the port's number. */
export const localPort = (why = "") =>
  kind(`a port on this machine, PORT or 127.0.0.1:PORT${why}`, (t) => {
    const port = Number(/^(?:(?:127\.0\.0\.1|localhost):)?(\d{1,5})$/.exec(t)?.[1]);
    return port >= 1 && port <= 65535 ? port : undefined;
  });

/** Bad input on the command line: the message names the flag and what it takes. */
export class UsageError extends Error {}

/** The flag closest to a mistyped one, if it is one or two edits away. */
function closest(name, names) {
  const distance = (a, b) => {
    let row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const next = [i];
      for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      row = next;
    }
    return row[b.length];
  };
  const [best] = names.map((n) => [n, distance(name, n)]).sort((x, y) => x[1] - y[1]);
  return best && best[1] <= 2 ? best[0] : undefined;
}

/**
 * `--name value` / `--name=value` / `--flag` into { name: value } for the flags of `spec` ({ name: kind }),
 * every flag not given at its kind's default. Throws UsageError on anything else.
 */
export function parseArgs(argv, spec) {
  const out = {};
  for (const [name, k] of Object.entries(spec)) if (k.default !== undefined) out[name] = k.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new UsageError(`unexpected argument ${arg} (flags start with --)`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq > 0 ? eq : undefined);
    const k = spec[name];
    if (!k) {
      const near = closest(name, Object.keys(spec));
      throw new UsageError(`unknown flag --${name}${near ? ` (did you mean --${near}?)` : ""}`);
    }
    if (k.boolean) {
      if (eq > 0) throw new UsageError(`--${name} takes no value, got ${arg}`);
      out[name] = true;
      continue;
    }
    // `--json --pin`: the next flag is not --json's value (`--json=--pin` still is).
    const value = eq > 0 ? arg.slice(eq + 1) : argv[i + 1]?.startsWith("--") ? undefined : argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs ${k.takes}`);
    const parsed = k.parse(value);
    if (parsed === undefined) throw new UsageError(`--${name} takes ${k.takes}, got ${JSON.stringify(value)}`);
    out[name] = parsed;
  }
  return out;
}

const scriptName = () => (process.argv[1] ?? "bench").split("/").pop();

/** The flags of `spec`, one a line, with what each takes and its default; `positional` names what comes before them. */
export function usage(spec, positional = "") {
  const lines = Object.entries(spec).map(([name, k]) => {
    const fallback = k.default === undefined || k.default === false ? "" : ` (default ${[k.default].flat().join(",")})`;
    return `  --${name}: ${k.takes}${fallback}`;
  });
  const what = "what it measures: bench/README.md";
  const command = `node bench/${scriptName()}${positional ? ` ${positional}` : ""}`;
  if (lines.length === 0) return `usage: ${command} (no flags; ${what})`;
  return `usage: ${command} [flags] (${what})\nflags:\n${lines.join("\n")}`;
}

/** Ends the script on bad command-line input: one line naming what was wrong, exit code 2. */
export function usageError(message) {
  console.error(`${scriptName()}: ${message}; see --help`);
  process.exit(2);
}

/**
 * The script's flags from `argv` (default: its command line), or its end with usageError; `--help` prints
 * usage. `positional` names arguments the script takes before its flags, for that usage ("DIR").
 */
export function readArgs(spec, argv = process.argv.slice(2), positional = "") {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(usage(spec, positional));
    process.exit(0);
  }
  try {
    return parseArgs(argv, spec);
  } catch (error) {
    if (error instanceof UsageError) usageError(error.message);
    throw error;
  }
}
