// Types for bench/lib-args.mjs, which plain node runs; the test imports it from TypeScript.
export interface Kind<T> {
  takes: string;
  parse: ((text: string) => T | undefined) | undefined;
  default: T | undefined;
  boolean?: true;
}
export function flag(): Kind<boolean>;
export function text(takes: string, fallback?: string): Kind<string>;
export function count(fallback?: number): Kind<number>;
export function whole(fallback?: number): Kind<number>;
export function positive(fallback?: number): Kind<number>;
export function number(fallback?: number): Kind<number>;
export function counts(fallback?: number[]): Kind<number[]>;
export function oneOf(choices: string[], fallback?: string): Kind<string>;
export function someOf(choices: string[], fallback?: string[]): Kind<string[]>;
export function localPort(why?: string): Kind<number>;
export class UsageError extends Error {}
export function parseArgs(argv: string[], spec: Record<string, Kind<unknown>>): Record<string, unknown>;
export function usage(spec: Record<string, Kind<unknown>>, positional?: string): string;
export function usageError(message: string): never;
export function readArgs(spec: Record<string, Kind<unknown>>, argv?: string[], positional?: string): Record<string, unknown>;
