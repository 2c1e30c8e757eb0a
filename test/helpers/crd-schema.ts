/**
 * Test helper: validates Kubernetes objects against a CustomResourceDefinition's
 * openAPIV3Schema with ajv, the way the API server would as far as a JSON
 * Schema validator can:
 *
 * - `apiVersion` must be `<spec.group>/<a served version>` and `kind` must be
 *   `spec.names.kind`; the schema of that version is used.
 * - Unknown fields are errors (ajv `additionalProperties: false` added to
 *   every object schema with `properties`), as with kubectl's default
 *   server-side field validation (`--validate=strict`), except under
 *   `x-kubernetes-preserve-unknown-fields`. A plain JSON Schema validator would
 *   accept a misspelt `readinessprobe` silently.
 * - The Kubernetes extensions: `x-kubernetes-int-or-string` (integer or
 *   string), `x-kubernetes-list-type` `set` (unique items) and `map` (unique
 *   `x-kubernetes-list-map-keys`, missing keys taken from their `default`);
 *   formats `int32`, `int64`, `date-time`.
 * - `metadata` is `type: object` in every CRD (the API server checks
 *   ObjectMeta itself); an ObjectMeta subset is checked here instead: names,
 *   and labels and annotations as maps of strings.
 *
 * Not checked (as in the API server, these live elsewhere): admission
 * webhooks (KServe's name and PROTOCOL rules, Knative's container rules).
 * Any schema keyword not listed in KNOWN_KEYWORDS makes loading fail, so a
 * newer CRD using e.g. CEL `x-kubernetes-validations` cannot pass unchecked.
 */
import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject, type SchemaValidateFunction } from "ajv";
import { parse } from "yaml";

type Schema = { [key: string]: unknown };

export interface CrdValidator {
  /** `<group>/<version>` of every served version. */
  readonly apiVersions: readonly string[];
  readonly kind: string;
  /** Problems as `<JSON pointer>: <message>`; empty when the object is valid. */
  validate(object: unknown): string[];
}

/** Keywords the loader understands; anything else fails loudly. */
const KNOWN_KEYWORDS = new Set([
  "type",
  "description",
  "properties",
  "required",
  "items",
  "additionalProperties",
  "anyOf",
  "allOf",
  "oneOf",
  "not",
  "enum",
  "format",
  "pattern",
  "default",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties",
  "multipleOf",
  "uniqueItems",
  "nullable",
  "title",
  "example",
  "x-kubernetes-int-or-string",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-embedded-resource",
]);

/** The part of ObjectMeta a manifest author sets; the API server validates ObjectMeta, not the CRD. */
const OBJECT_META: Schema = {
  type: "object",
  properties: {
    name: { type: "string", minLength: 1, maxLength: 253 },
    generateName: { type: "string" },
    namespace: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 },
    labels: { type: "object", additionalProperties: { type: "string" } },
    annotations: { type: "object", additionalProperties: { type: "string" } },
    finalizers: { type: "array", items: { type: "string" } },
  },
  additionalProperties: false,
};

/** Reads a CRD YAML file and compiles its served versions' schemas. */
export function loadCrd(path: string): CrdValidator {
  return crdValidator(parse(readFileSync(path, "utf8")));
}

interface Crd {
  kind?: string;
  spec: { group: string; names: { kind: string }; versions: { name: string; served: boolean; schema: { openAPIV3Schema: Schema } }[] };
}

export function crdValidator(document: unknown): CrdValidator {
  const crd = document as Crd;
  if (crd?.kind !== "CustomResourceDefinition") throw new Error("not a CustomResourceDefinition");
  const { group, names } = crd.spec;

  // The CRD repeats whole PodSpecs (predictor, transformer, explainer, worker, status...):
  // compiled as is, that is ~10 MB of generated code and seconds of compile time.
  // Repeated subtrees are moved to definitions (compiled once, used by $ref).
  const definitions: Record<string, Schema> = {};
  const ajv = new Ajv({ strict: false, allErrors: true, useDefaults: false, validateFormats: true, inlineRefs: false });
  addKubernetesVocabulary(ajv, (node) => resolveRef(node, definitions));

  const validators = new Map<string, ReturnType<Ajv["compile"]>>();
  for (const version of crd.spec.versions) {
    if (!version.served) continue;
    const schema = structuredClone(version.schema.openAPIV3Schema);
    checkKeywords(schema, "openAPIV3Schema");
    closeObjects(schema);
    const properties = schema.properties as Schema;
    properties.metadata = OBJECT_META;
    const root = factorRepeats(schema, definitions, `${version.name}-`);
    validators.set(`${group}/${version.name}`, ajv.compile({ ...root, definitions }));
  }

  return {
    apiVersions: [...validators.keys()],
    kind: names.kind,
    validate(object: unknown): string[] {
      if (typeof object !== "object" || object === null || Array.isArray(object)) return ["/: must be an object"];
      const { apiVersion, kind } = object as { apiVersion?: unknown; kind?: unknown };
      const problems: string[] = [];
      if (kind !== names.kind) problems.push(`/kind: must be ${JSON.stringify(names.kind)}, got ${JSON.stringify(kind)}`);
      const validator = typeof apiVersion === "string" ? validators.get(apiVersion) : undefined;
      if (!validator) {
        problems.push(
          `/apiVersion: ${JSON.stringify(apiVersion)} is not served by this CRD (served: ${[...validators.keys()].join(", ")})`,
        );
        return problems;
      }
      if (!validator(object)) problems.push(...(validator.errors ?? []).map(formatError));
      return problems;
    },
  };
}

function formatError(error: ErrorObject): string {
  const where = error.instancePath === "" ? "/" : error.instancePath;
  const extra =
    error.keyword === "additionalProperties"
      ? ` (${String((error.params as { additionalProperty?: unknown }).additionalProperty)})`
      : error.keyword === "enum"
        ? ` (${JSON.stringify((error.params as { allowedValues?: unknown }).allowedValues)})`
        : "";
  return `${where}: ${error.message ?? error.keyword}${extra}`;
}

/** Calls `visit` on every schema node (not on the `properties` maps themselves). */
function walk(schema: Schema, path: string, visit: (node: Schema, path: string) => void): void {
  visit(schema, path);
  for (const [name, child] of Object.entries((schema.properties as Record<string, Schema> | undefined) ?? {})) {
    walk(child, `${path}.${name}`, visit);
  }
  if (isSchema(schema.items)) walk(schema.items, `${path}[]`, visit);
  if (isSchema(schema.additionalProperties)) walk(schema.additionalProperties, `${path}{}`, visit);
  if (isSchema(schema.not)) walk(schema.not, `${path}!`, visit);
  for (const key of ["anyOf", "allOf", "oneOf"]) {
    const list = schema[key];
    if (!Array.isArray(list)) continue;
    for (const [i, s] of list.entries()) {
      if (isSchema(s)) walk(s, `${path}<${key}${i}>`, visit);
    }
  }
}

function isSchema(value: unknown): value is Schema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkKeywords(schema: Schema, path: string): void {
  walk(schema, path, (node, where) => {
    for (const key of Object.keys(node)) {
      if (!KNOWN_KEYWORDS.has(key))
        throw new Error(`CRD schema keyword ${JSON.stringify(key)} at ${where} is not understood by this validator`);
    }
  });
}

/** Unknown fields are errors, as with server-side strict field validation. */
function closeObjects(schema: Schema): void {
  walk(schema, "", (node) => {
    if (node.properties !== undefined && node.additionalProperties === undefined && node["x-kubernetes-preserve-unknown-fields"] !== true) {
      node.additionalProperties = false;
    }
  });
}

/**
 * Replaces every repeated subtree (same JSON, at least MIN_FACTOR_SIZE characters)
 * by `{$ref: "#/definitions/<id>"}`, recursively inside the definitions too.
 * Validation is unchanged: a $ref alone in a node validates exactly as the subtree.
 */
const MIN_FACTOR_SIZE = 400;

function factorRepeats(root: Schema, definitions: Record<string, Schema>, prefix: string): Schema {
  const counts = new Map<string, number>();
  walk(root, "", (node) => {
    const json = JSON.stringify(node);
    if (json.length >= MIN_FACTOR_SIZE) counts.set(json, (counts.get(json) ?? 0) + 1);
  });
  const ids = new Map<string, string>();
  const rewrite = (node: Schema, top: boolean): Schema => {
    const json = JSON.stringify(node);
    if (!top && (counts.get(json) ?? 0) >= 2) {
      let id = ids.get(json);
      if (id === undefined) {
        id = `${prefix}${ids.size}`;
        ids.set(json, id);
        definitions[id] = rewriteChildren(node);
      }
      return { $ref: `#/definitions/${id}` };
    }
    return rewriteChildren(node);
  };
  const rewriteChildren = (node: Schema): Schema => {
    const out: Schema = { ...node };
    if (isSchema(node.properties)) {
      out.properties = Object.fromEntries(Object.entries(node.properties).map(([k, v]) => [k, rewrite(v as Schema, false)]));
    }
    for (const key of ["items", "additionalProperties", "not"]) {
      const child = node[key];
      if (isSchema(child)) out[key] = rewrite(child, false);
    }
    for (const key of ["anyOf", "allOf", "oneOf"]) {
      const list = node[key];
      if (Array.isArray(list)) out[key] = list.map((s) => (isSchema(s) ? rewrite(s, false) : s));
    }
    return out;
  };
  return rewrite(root, true);
}

function resolveRef(node: Schema | undefined, definitions: Record<string, Schema>): Schema | undefined {
  const ref = node?.$ref;
  return typeof ref === "string" ? definitions[ref.replace("#/definitions/", "")] : node;
}

function addKubernetesVocabulary(ajv: Ajv, resolve: (node: Schema | undefined) => Schema | undefined): void {
  for (const keyword of [
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
  ]) {
    ajv.addKeyword({ keyword });
  }
  ajv.addKeyword({
    keyword: "x-kubernetes-int-or-string",
    schemaType: "boolean",
    validate: (on: boolean, data: unknown) => !on || typeof data === "string" || Number.isInteger(data),
  });
  const listType: SchemaValidateFunction = (kind: string, data: unknown, parentSchema?: Schema): boolean => {
    const errors: Partial<ErrorObject>[] = [];
    listType.errors = errors;
    if (!Array.isArray(data) || kind === "atomic") return true;
    const keyOf = kind === "map" ? mapKeyFunction(parentSchema ?? {}, resolve) : (item: unknown) => JSON.stringify(item); // "set": items are scalars (or atomic lists)
    const seen = new Set<string>();
    data.forEach((item) => {
      const key = keyOf(item);
      if (seen.has(key)) {
        errors.push({
          keyword: "x-kubernetes-list-type",
          message: `duplicate entry for ${kind === "map" ? "list-map key" : "set value"} ${key}`,
          params: { kind },
        });
      }
      seen.add(key);
    });
    return errors.length === 0;
  };
  ajv.addKeyword({ keyword: "x-kubernetes-list-type", schemaType: "string", validate: listType, errors: true });

  ajv.addFormat("int32", { type: "number", validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n <= 2 ** 31 - 1 });
  ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat("date-time", /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/);
}

/** The identity of a list-map item: its key fields, defaults filled in (ports: containerPort + protocol, default TCP). */
function mapKeyFunction(listSchema: Schema, resolve: (node: Schema | undefined) => Schema | undefined): (item: unknown) => string {
  const keys = (listSchema["x-kubernetes-list-map-keys"] as string[] | undefined) ?? [];
  const items = resolve(listSchema.items as Schema | undefined);
  const itemProps = (items?.properties as Record<string, Schema> | undefined) ?? {};
  return (item) => {
    const record = (isSchema(item) ? item : {}) as Record<string, unknown>;
    return JSON.stringify(keys.map((k) => record[k] ?? itemProps[k]?.default ?? null));
  };
}
