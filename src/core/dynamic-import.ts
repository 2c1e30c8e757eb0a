/**
 * @module core/dynamic-import
 * import() of what the runtime bundle does not hold: a model, its packages,
 * esbuild, tsx. The bundle (build/image/bundle.ts) replaces this module with
 * its loader's import(), because code that V8 ran from a code cache cannot
 * call import() itself on Node 20 (core/code-cache.ts).
 */
export function importModule<T = Record<string, unknown>>(specifier: string): Promise<T> {
  return import(specifier) as Promise<T>;
}
