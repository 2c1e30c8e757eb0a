/**
 * @module deploy/yaml
 * A small YAML emitter for plain JSON-like data (what `JSON.stringify` takes:
 * plain objects, arrays, strings, finite numbers, booleans, null), enough to
 * print Kubernetes manifests. Block style, two-space indentation, keys in
 * insertion order; empty collections print as `{}` and `[]`.
 *
 * Strings are written plain only when a YAML 1.2 reader (the `yaml` package,
 * Go's sigs.k8s.io/yaml) and a YAML 1.1 reader (PyYAML, older Go code) both
 * read them back as the same string: anything that could resolve to a number,
 * boolean, null or timestamp ("8080", "1e3", "yes", "off", "~", "2024-01-01",
 * "1:30"), that starts with an indicator character, has leading or trailing
 * spaces, ": " or " #", or any character outside a conservative ASCII set is
 * double-quoted with escapes instead. Double quotes (not block scalars) are
 * also used for multi-line strings: they round-trip every string exactly.
 */

/** Prints `value` as a YAML document (no `---` marker), ending with a newline. */
export function toYaml(value: unknown): string {
  const lines: string[] = [];
  const seen = new Set<object>();
  if (isCollection(value) && !isEmptyCollection(value)) {
    block(value, 0, lines, seen, "$");
  } else {
    lines.push(scalarOrEmpty(value, seen, "$"));
  }
  return `${lines.join("\n")}\n`;
}

type Collection = readonly unknown[] | Record<string, unknown>;

function isCollection(value: unknown): value is Collection {
  return typeof value === "object" && value !== null;
}

/** Entries JSON would print: `undefined`-valued keys are skipped, like JSON.stringify does. */
function entriesOf(value: Record<string, unknown>): [string, unknown][] {
  return Object.entries(value).filter(([, v]) => v !== undefined);
}

function isEmptyCollection(value: Collection): boolean {
  return Array.isArray(value) ? value.length === 0 : entriesOf(value as Record<string, unknown>).length === 0;
}

/** Throws unless `value` is a plain object or an array that is not already being printed (a cycle). */
function checkObject(value: object, seen: Set<object>, path: string): void {
  if (seen.has(value)) throw new TypeError(`toYaml: circular reference at ${path}`);
  if (!Array.isArray(value)) {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (proto as { constructor?: { name?: string } } | null)?.constructor?.name ?? "object";
      throw new TypeError(`toYaml: ${path} is a ${kind}, not a plain object (convert it to JSON-like data first)`);
    }
  }
}

/** Writes a non-empty map or list starting at column `indent`. */
function block(value: Collection, indent: number, lines: string[], seen: Set<object>, path: string): void {
  checkObject(value, seen, path);
  seen.add(value);
  const pad = " ".repeat(indent);
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      // JSON prints `undefined` array items as null; so do we.
      const element = item === undefined ? null : item;
      const where = `${path}[${i}]`;
      if (isCollection(element) && !isEmptyCollection(element)) {
        // The first line of the nested block goes right after "- ".
        const nested: string[] = [];
        block(element, indent + 2, nested, seen, where);
        const [first = "", ...rest] = nested;
        lines.push(`${pad}- ${first.slice(indent + 2)}`, ...rest);
      } else {
        lines.push(`${pad}- ${scalarOrEmpty(element, seen, where)}`);
      }
    });
  } else {
    for (const [key, item] of entriesOf(value as Record<string, unknown>)) {
      const where = `${path}.${key}`;
      const k = formatString(key);
      if (isCollection(item) && !isEmptyCollection(item)) {
        lines.push(`${pad}${k}:`);
        block(item, indent + 2, lines, seen, where);
      } else {
        lines.push(`${pad}${k}: ${scalarOrEmpty(item, seen, where)}`);
      }
    }
  }
  seen.delete(value);
}

/** A scalar, or an empty collection in flow style. */
function scalarOrEmpty(value: unknown, seen: Set<object>, path: string): string {
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "string":
      return formatString(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`toYaml: ${path} is ${value}, which JSON (and Kubernetes) cannot carry`);
      return formatNumber(value);
    case "object":
      checkObject(value, seen, path);
      return Array.isArray(value) ? "[]" : "{}";
    default:
      throw new TypeError(`toYaml: ${path} is a ${typeof value}, which is not JSON-like data`);
  }
}

/**
 * A finite number as both YAML 1.1 and 1.2 read it back: JavaScript's exponent
 * form (`1e+21`, `5e-7`) is a float in YAML 1.2 but a string in YAML 1.1,
 * which wants a dot and a signed exponent, so it becomes `1.0e+21`, `5.0e-7`.
 */
function formatNumber(n: number): string {
  if (Object.is(n, -0)) return "-0";
  const text = String(n);
  const exp = /^(-?[0-9]+)(\.[0-9]+)?e([+-][0-9]+)$/.exec(text);
  return exp ? `${exp[1]}${exp[2] ?? ".0"}e${exp[3]}` : text;
}

/**
 * Characters a plain scalar may hold here. Deliberately narrow: no flow
 * indicators (`[]{},`), no `#`, quotes, `&*!|>%@\``, no non-ASCII.
 */
const PLAIN_CHARS = /^[A-Za-z0-9_./:+=~^$()-]+(?: [A-Za-z0-9_./:+=~^$()-]+)*$/;

/** First characters that cannot start a plain scalar (indicators) or may start a number (`.5`, `+1`, `-1`, `.inf`). */
const BAD_FIRST = /^[-?:,[\]{}#&*!|>'"%@`.+=~^$()]/;

/** Words YAML 1.1 or 1.2 read as null or booleans (any case: PyYAML is case-sensitive, others are not). */
const KEYWORDS = /^(?:null|~|true|false|yes|no|y|n|on|off)$/i;

/**
 * Forms starting with a digit that stay strings in both YAML 1.1 and 1.2:
 * digits (optionally with dots between them) followed by letters and never a
 * digit after a letter, e.g. `1Gi`, `500m`, `0.5Gi`, `v1` is handled by the
 * letter rule. Everything else starting with a digit is quoted ("8080",
 * "1e3", "0x1F", "1_000", "1:30", "2024-01-01", "0.1.0").
 */
const DIGIT_START_OK = /^[0-9]+(?:\.[0-9]+)?[A-Za-z]+$/;

function isPlainSafe(s: string): boolean {
  if (!PLAIN_CHARS.test(s) || BAD_FIRST.test(s)) return false;
  if (KEYWORDS.test(s)) return false;
  if (/^[0-9]/.test(s) && !DIGIT_START_OK.test(s)) return false;
  // "e"/"E" after digits would make an exponent only with digits after it, which DIGIT_START_OK excludes.
  if (s.endsWith(":") || s.includes(": ")) return false;
  return true;
}

/** A string as a plain scalar when that is safe, else double-quoted. */
export function formatString(s: string): string {
  return isPlainSafe(s) ? s : doubleQuoted(s);
}

/**
 * YAML double-quoted scalar. Escapes what YAML does not allow unescaped
 * (C0/C1 controls, DEL, surrogates, U+FFFE/U+FFFF), the BOM, and the
 * characters YAML 1.1 treats as line breaks (U+0085, U+2028, U+2029), which a
 * reader would otherwise fold into spaces.
 */
function doubleQuoted(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i] as string;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && isLowSurrogate(s.charCodeAt(i + 1))) {
      // A well-formed pair is a printable character outside the BMP: keep it.
      out += ch + (s[i + 1] as string);
      i++;
    } else if (needsEscape(c)) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

function needsEscape(c: number): boolean {
  return (
    c < 0x20 ||
    (c >= 0x7f && c <= 0x9f) ||
    (c >= 0xd800 && c <= 0xdfff) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0xfeff ||
    c === 0xfffe ||
    c === 0xffff
  );
}
