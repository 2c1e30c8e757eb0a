/** Command-line flags for bench/ scripts (no dependencies, so the baseline server imports nothing else). */

/** `--name value` / `--name=value` / `--flag` into an object; numbers stay strings. */
export function parseArgs(argv, booleans = []) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    const eq = arg.indexOf("=");
    if (eq > 0) out[arg.slice(2, eq)] = arg.slice(eq + 1);
    else if (booleans.includes(arg.slice(2))) out[arg.slice(2)] = true;
    else {
      const value = argv[i + 1];
      if (value === undefined) throw new Error(`${arg} needs a value`);
      out[arg.slice(2)] = value;
      i++;
    }
  }
  return out;
}
