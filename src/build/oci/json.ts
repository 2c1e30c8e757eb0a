/**
 * @module build/oci/json
 * Compact JSON with a fixed key order, for documents whose digest is taken
 * over their bytes (manifests, configs, indexes). JSON.stringify alone is not
 * enough: JS objects put integer-like keys ("1", "80") first whatever the
 * insertion order, and the key order of a parsed base image is whatever its
 * producer wrote. So objects are written field by field here:
 *
 * - known fields of a document in the order of the reference documents
 *   (oci-build.md section 1.2, which is also the image-spec Go structs' order);
 * - string maps (Labels, annotations, ExposedPorts) with keys sorted by UTF-8
 *   bytes, as Go's encoding/json does for maps;
 * - fields we do not know (a base config's `container_config`, say) after the
 *   known ones, sorted the same way, with their values written canonically.
 *
 * `undefined` and `null` values of optional fields are left out (Go's
 * `omitempty`, and ko sets `Cmd` to null when it replaces the entrypoint).
 */

/** A field: its name and its value, already serialized; undefined means "leave out". */
export type Field = readonly [name: string, json: string | undefined];

export function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export function jsonString(value: string): string {
  return JSON.stringify(value);
}

/** Any JSON value, object keys sorted by UTF-8 bytes; undefined for undefined/null/functions. */
export function jsonValue(value: unknown): string | undefined {
  if (value === undefined || value === null) return value === null ? "null" : undefined;
  switch (typeof value) {
    case "string":
      return jsonString(value);
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`cannot write ${value} as JSON`);
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "object": {
      if (Array.isArray(value)) return `[${value.map((item) => jsonValue(item) ?? "null").join(",")}]`;
      const record = value as Record<string, unknown>;
      return jsonObject(
        Object.keys(record)
          .sort(byUtf8)
          .map((key) => [key, jsonValue(record[key])] as const),
      );
    }
    default:
      return undefined;
  }
}

/** An object from fields in the given order; fields whose value is undefined are left out. */
export function jsonObject(fields: readonly Field[]): string {
  const parts: string[] = [];
  for (const [name, json] of fields) if (json !== undefined) parts.push(`${jsonString(name)}:${json}`);
  return `{${parts.join(",")}}`;
}

/** A string -> string (or string -> {}) map with keys in UTF-8 byte order. */
export function jsonMap(map: Readonly<Record<string, unknown>> | undefined | null): string | undefined {
  if (map === undefined || map === null) return undefined;
  return jsonValue(map);
}

export function jsonArray<T>(items: readonly T[] | undefined | null, write: (item: T) => string): string | undefined {
  if (items === undefined || items === null) return undefined;
  return `[${items.map(write).join(",")}]`;
}

export function jsonStrings(items: readonly string[] | undefined | null): string | undefined {
  return jsonArray(items, jsonString);
}

export function jsonNumber(value: number | undefined | null): string | undefined {
  if (value === undefined || value === null) return undefined;
  return jsonValue(value);
}

/**
 * Known fields first (in the order given), then every other own field of
 * `source` sorted by UTF-8 bytes: unknown fields of a base document survive a
 * rewrite, in an order that does not depend on how the object was built.
 */
export function withExtras(source: object, known: readonly Field[]): string {
  const names = new Set(known.map(([name]) => name));
  const record = source as Record<string, unknown>;
  const extras = Object.keys(record)
    .filter((key) => !names.has(key))
    .sort(byUtf8)
    .map((key) => [key, record[key] === null ? undefined : jsonValue(record[key])] as const);
  return jsonObject([...known, ...extras]);
}
