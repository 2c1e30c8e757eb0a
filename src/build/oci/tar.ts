/**
 * @module build/oci/tar
 * A deterministic, streaming tar writer for image layers, and `writeLayer`,
 * which turns a list of entries into a layer blob in one pass:
 *
 *     entries -> tar -> sha256 (diff_id) -> gzip -> pin OS byte -> sha256 (digest) -> memory or temp file
 *
 * The same entries always give the same bytes (oci-build.md section 3):
 *
 * - names are relative (no leading `/` or `./`), directories end with `/`;
 * - missing parent directories are written explicitly (0755, the default owner);
 * - a path given twice is an error (podman rejects such layers, section 3.3),
 *   naming the path, rather than a silent "last one wins";
 * - entries are sorted by the UTF-8 bytes of their names (`Buffer.compare`,
 *   not JS string order), so parents come before children;
 * - owner uid/gid 0 unless set, uname/gname empty, one fixed mtime for every
 *   entry: `mtime`, else `sourceDateEpoch` (the caller passes
 *   SOURCE_DATE_EPOCH; the library never reads the environment), else 1 s
 *   after the epoch (Jib's default: some software treats 0 as "unset");
 * - modes normalized: files 0644, or 0755 if any execute bit is set;
 *   directories 0755; symlinks 0777. Set-id and sticky bits are kept, and a
 *   sticky directory keeps its permissions (a `/tmp` at 01777 is shared on
 *   purpose). `exactMode` on an entry, or `modes: "exact"`, keeps the mode as given;
 * - POSIX ustar headers; a PAX `x` header only when a field does not fit
 *   (a name over 100 bytes that cannot be split into a 155-byte prefix and a
 *   100-byte name, a link target over 100 bytes, a size of 8 GiB or more, an
 *   id over 2097151, an mtime after 2242); never atime/ctime, never global
 *   (`g`) headers or GNU extensions; two zero blocks at the end.
 *
 * File contents are either bytes or a function returning a stream; streams
 * are read one at a time, as the tar is consumed, so files of any size pass
 * through without being held in memory. A stream that yields more or fewer
 * bytes than the entry's `size` is an error (the header is already written).
 */
import { randomBytes } from "node:crypto";
import { type FileHandle, open, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip, constants as zlibConstants } from "node:zlib";
import { ToolError } from "../../core/tool-error.js";
import type { Descriptor } from "./descriptor.js";
import { type Digest, DigestStream } from "./digest.js";
import { layerMediaType, type MediaTypeFamily } from "./documents.js";
import { DEFAULT_MTIME, parseSourceDateEpoch } from "./epoch.js";

export type TarEntryType = "file" | "dir" | "symlink" | "hardlink";

/** A file's contents: bytes, or a function opening a stream of exactly `size` bytes (called once, when the tar reaches it). */
export type TarData = Uint8Array | (() => Readable | AsyncIterable<Uint8Array>);

export interface TarEntry {
  /** Path in the image; `/usr/bin/node`, `./usr/bin/node` and `usr/bin/node` are the same. `..` is refused. */
  path: string;
  type: TarEntryType;
  /** Permission bits (host `st.mode` is fine: the type bits are dropped). Normalized unless `exactMode`. */
  mode?: number;
  /** Keep `mode` exactly (e.g. a 0775 directory the app user shares). @default false */
  exactMode?: boolean;
  /** @default the layer's `uid` option (0) */
  uid?: number;
  /** @default the layer's `gid` option (0) */
  gid?: number;
  /** Files only. @default empty */
  data?: TarData;
  /** Files only: required when `data` is a function; checked against the bytes when `data` is a Uint8Array. */
  size?: number;
  /** Symlinks: the target, written as given (absolute targets resolve inside the image). Hardlinks: the path of another file in this layer. */
  linkname?: string;
}

export interface TarOptions {
  /** mtime of every entry, in seconds. @default sourceDateEpoch, else 1 (DEFAULT_MTIME) */
  mtime?: number;
  /** The raw SOURCE_DATE_EPOCH value, passed in by the caller; used when `mtime` is not set. */
  sourceDateEpoch?: string;
  /** Owner of entries that set none, and of added parent directories. @default 0 */
  uid?: number;
  /** @default 0 */
  gid?: number;
  /** "normalize" (see the module comment) or "exact" (keep each entry's mode; missing modes still default). @default "normalize" */
  modes?: "normalize" | "exact";
}

/** An entry after normalization: what is written, in the order written. */
export interface PreparedEntry {
  /** Normalized name; directories end with "/". */
  readonly name: string;
  readonly type: TarEntryType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Bytes of content (files only; 0 for others). */
  readonly size: number;
  /** Symlink target as given, or the normalized name of the hardlinked file; "" otherwise. */
  readonly linkname: string;
  readonly data: TarData | undefined;
  /** Added because a child needed it. */
  readonly implicit: boolean;
}

const BLOCK = 512;
/** Largest values that fit the ustar octal fields (11 and 7 digits). */
const MAX_OCTAL_11 = 0o77777777777; // 8 GiB - 1
const MAX_OCTAL_7 = 0o7777777; // 2097151

function invalid(message: string): ToolError {
  return new ToolError("CHASSIS_LAYER_INVALID", message);
}

/**
 * The path without leading `/` or `./`, repeated slashes, `.` components or a
 * trailing slash: the key two entries collide on. Throws on `..`, NUL and
 * empty paths.
 */
export function normalizePath(path: string, what = "path"): string {
  if (typeof path !== "string") throw invalid(`${what} must be a string, got ${typeof path}`);
  if (path.includes("\0")) throw invalid(`${what} ${JSON.stringify(path)} contains a NUL byte`);
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw invalid(`${what} ${JSON.stringify(path)} contains "..": layer paths must stay inside the image`);
    parts.push(part);
  }
  if (parts.length === 0) throw invalid(`${what} ${JSON.stringify(path)} names the image root; give the directories and files under it`);
  return parts.join("/");
}

function checkId(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw invalid(`${what} ${value} is not a non-negative whole number`);
  return value;
}

/** Normalized permission bits (see the module comment). */
export function normalizeMode(type: TarEntryType, mode: number | undefined): number {
  const special = (mode ?? 0) & 0o7000;
  switch (type) {
    case "dir":
      if (mode !== undefined && mode & 0o1000) return mode & 0o7777; // sticky: shared on purpose (/tmp 01777)
      return 0o755 | special;
    case "symlink":
      return 0o777;
    default:
      return ((mode ?? 0) & 0o111 ? 0o755 : 0o644) | special;
  }
}

function defaultMode(type: TarEntryType): number {
  return type === "dir" ? 0o755 : type === "symlink" ? 0o777 : 0o644;
}

/** The mtime the options give: `mtime`, else SOURCE_DATE_EPOCH, else DEFAULT_MTIME. */
export function resolveMtime(options: TarOptions = {}): number {
  const mtime = options.mtime ?? parseSourceDateEpoch(options.sourceDateEpoch) ?? DEFAULT_MTIME;
  if (!Number.isSafeInteger(mtime) || mtime < 0)
    throw new ToolError("CHASSIS_USAGE", `layer mtime ${mtime} is not a Unix time (whole seconds, not negative)`);
  return mtime;
}

interface Draft {
  key: string;
  index: number;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkname: string;
  data: TarData | undefined;
  implicit: boolean;
}

const utf8 = (text: string): Buffer => Buffer.from(text, "utf8");
const nameOf = (draft: Draft): string => (draft.type === "dir" ? `${draft.key}/` : draft.key);

/**
 * Validates, normalizes, completes (parent directories, hardlink leaders) and
 * sorts the entries: the exact list `tarStream` writes. Throws
 * CHASSIS_LAYER_INVALID on the first problem, naming the path.
 */
export function prepareEntries(entries: readonly TarEntry[], options: TarOptions = {}): PreparedEntry[] {
  const ownerUid = checkId(options.uid ?? 0, "uid option");
  const ownerGid = checkId(options.gid ?? 0, "gid option");
  const exactModes = options.modes === "exact";
  const byKey = new Map<string, Draft>();

  entries.forEach((entry, index) => {
    const where = `layer entry #${index} (${JSON.stringify(entry.path)})`;
    if (!["file", "dir", "symlink", "hardlink"].includes(entry.type)) {
      throw invalid(`${where}: type ${JSON.stringify(entry.type)} is not file, dir, symlink or hardlink`);
    }
    const key = normalizePath(entry.path, `${where}: path`);
    if (entry.type !== "dir" && /\/\.?$/.test(entry.path)) throw invalid(`${where}: a ${entry.type} path must not end with "/"`);
    const previous = byKey.get(key);
    if (previous) {
      throw invalid(
        `duplicate path "${key}" in layer: entries #${previous.index} (${previous.type}) and #${index} (${entry.type}); give each path once`,
      );
    }
    let size = 0;
    let linkname = "";
    if (entry.type === "file") {
      if (entry.linkname !== undefined) throw invalid(`${where}: a file has no linkname`);
      if (entry.data instanceof Uint8Array) {
        size = entry.data.byteLength;
        if (entry.size !== undefined && entry.size !== size)
          throw invalid(`${where}: size ${entry.size} differs from its ${size} bytes of data`);
      } else if (typeof entry.data === "function") {
        if (entry.size === undefined) throw invalid(`${where}: a file streamed from a function needs its size`);
        size = entry.size;
      } else if (entry.data === undefined) {
        if (entry.size !== undefined && entry.size !== 0) throw invalid(`${where}: size ${entry.size} but no data`);
      } else {
        throw invalid(`${where}: data must be a Uint8Array or a function returning a stream`);
      }
      if (!Number.isSafeInteger(size) || size < 0) throw invalid(`${where}: size ${size} is not a whole number of bytes`);
    } else {
      if (entry.data !== undefined || (entry.size !== undefined && entry.size !== 0)) throw invalid(`${where}: only files have data`);
      if (entry.type === "dir" && entry.linkname !== undefined) throw invalid(`${where}: a directory has no linkname`);
      if (entry.type === "symlink") {
        if (typeof entry.linkname !== "string" || entry.linkname === "") throw invalid(`${where}: a symlink needs a linkname (its target)`);
        if (entry.linkname.includes("\0")) throw invalid(`${where}: linkname contains a NUL byte`);
        linkname = entry.linkname;
      }
      if (entry.type === "hardlink") {
        if (typeof entry.linkname !== "string" || entry.linkname === "")
          throw invalid(`${where}: a hardlink needs a linkname (the file it links)`);
        linkname = normalizePath(entry.linkname, `${where}: linkname`);
      }
    }
    const mode =
      entry.mode === undefined
        ? defaultMode(entry.type)
        : entry.exactMode || exactModes
          ? checkMode(entry.mode, where)
          : normalizeMode(entry.type, checkMode(entry.mode, where));
    byKey.set(key, {
      key,
      index,
      type: entry.type,
      mode,
      uid: checkId(entry.uid ?? ownerUid, `${where}: uid`),
      gid: checkId(entry.gid ?? ownerGid, `${where}: gid`),
      size,
      linkname,
      data: entry.type === "file" ? entry.data : undefined,
      implicit: false,
    });
  });

  // Parent directories: explicit, 0755, the default owner; a parent that is not a directory is an error.
  for (const draft of [...byKey.values()]) {
    const parts = draft.key.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      const existing = byKey.get(parent);
      if (existing === undefined) {
        byKey.set(parent, {
          key: parent,
          index: -1,
          type: "dir",
          mode: 0o755,
          uid: ownerUid,
          gid: ownerGid,
          size: 0,
          linkname: "",
          data: undefined,
          implicit: true,
        });
      } else if (existing.type !== "dir") {
        throw invalid(`"${draft.key}" is inside "${parent}", which is a ${existing.type} in this layer, not a directory`);
      }
    }
  }

  resolveHardlinks(byKey);

  return [...byKey.values()]
    .map((draft) => ({ draft, name: nameOf(draft), bytes: utf8(nameOf(draft)) }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map(({ draft, name }) =>
      Object.freeze({
        name,
        type: draft.type,
        mode: draft.mode,
        uid: draft.uid,
        gid: draft.gid,
        size: draft.size,
        linkname: draft.linkname,
        data: draft.data,
        implicit: draft.implicit,
      }),
    );
}

function checkMode(mode: number, where: string): number {
  if (!Number.isSafeInteger(mode) || mode < 0) throw invalid(`${where}: mode ${mode} is not a file mode`);
  return mode & 0o7777;
}

/**
 * A hardlink must name a file written earlier in the same layer (section
 * 3.3). Entries are sorted by name, so the group of names sharing one file
 * is rewritten: the first name in byte order carries the content, and every
 * other name links to it. The resulting filesystem is the same whichever
 * name the caller gave the content to.
 */
function resolveHardlinks(byKey: Map<string, Draft>): void {
  const groups = new Map<string, Draft[]>();
  for (const draft of byKey.values()) {
    if (draft.type !== "hardlink") continue;
    let target = draft;
    const seen = new Set<string>([draft.key]);
    while (target.type === "hardlink") {
      const next = byKey.get(target.linkname);
      if (next === undefined)
        throw invalid(
          `hardlink "${draft.key}" -> "${target.linkname}": no such file in this layer (a hardlink must name a file of the same layer)`,
        );
      if (seen.has(next.key)) throw invalid(`hardlink "${draft.key}" is part of a hardlink cycle`);
      seen.add(next.key);
      target = next;
    }
    if (target.type !== "file")
      throw invalid(`hardlink "${draft.key}" -> "${target.key}": the target is a ${target.type}; hardlinks must name a regular file`);
    const group = groups.get(target.key) ?? [target];
    group.push(draft);
    groups.set(target.key, group);
  }
  for (const [fileKey, group] of groups) {
    const file = byKey.get(fileKey) as Draft;
    group.sort((a, b) => Buffer.compare(utf8(a.key), utf8(b.key)));
    const leader = group[0] as Draft;
    for (const member of group) {
      const isLeader = member === leader;
      byKey.set(member.key, {
        ...member,
        type: isLeader ? "file" : "hardlink",
        mode: file.mode,
        uid: file.uid,
        gid: file.gid,
        size: isLeader ? file.size : 0,
        data: isLeader ? file.data : undefined,
        linkname: isLeader ? "" : leader.key,
      });
    }
  }
}

// Headers.

const TYPEFLAG: Record<TarEntryType, string> = { file: "0", hardlink: "1", symlink: "2", dir: "5" };

function writeOctal(block: Buffer, offset: number, width: number, value: number): void {
  // width - 1 zero-padded octal digits and a NUL, as Go's archive/tar writes them.
  block.write(`${value.toString(8).padStart(width - 1, "0")}\0`, offset, width, "ascii");
}

/** Cuts UTF-8 bytes to at most `max` without splitting a character. */
function truncateUtf8(bytes: Buffer, max: number): Buffer {
  if (bytes.length <= max) return bytes;
  let end = max;
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/** ustar's prefix/name split at a `/` (Go `splitUSTARPath`): the longest prefix <= 155 bytes leaving a name of 1-100 bytes. */
export function splitUstarName(name: Buffer): { prefix: Buffer; name: Buffer } | undefined {
  if (name.length <= 100) return { prefix: Buffer.alloc(0), name };
  let length = name.length;
  if (length > 156) length = 156;
  else if (name[length - 1] === 0x2f) length--;
  const slash = name.subarray(0, length).lastIndexOf(0x2f);
  if (slash <= 0) return undefined;
  const rest = name.length - slash - 1;
  if (rest === 0 || rest > 100 || slash > 155) return undefined;
  return { prefix: name.subarray(0, slash), name: name.subarray(slash + 1) };
}

/** One PAX record: "<length> <key>=<value>\n", the length counting itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLength = Buffer.byteLength(body, "utf8");
  let length = bodyLength + String(bodyLength).length;
  while (length !== bodyLength + String(length).length) length = bodyLength + String(length).length;
  return `${length}${body}`;
}

interface HeaderFields {
  name: Buffer;
  prefix: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: Buffer;
}

function ustarHeader(fields: HeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  fields.name.copy(block, 0, 0, 100);
  writeOctal(block, 100, 8, fields.mode);
  writeOctal(block, 108, 8, fields.uid);
  writeOctal(block, 116, 8, fields.gid);
  writeOctal(block, 124, 12, fields.size);
  writeOctal(block, 136, 12, fields.mtime);
  block.fill(0x20, 148, 156); // checksum computed with its own field as spaces
  block.write(fields.typeflag, 156, 1, "ascii");
  fields.linkname.copy(block, 157, 0, 100);
  block.write("ustar\0", 257, 6, "ascii");
  block.write("00", 263, 2, "ascii");
  // uname (265) and gname (297) stay empty: names differ between hosts, ids do not.
  writeOctal(block, 329, 8, 0); // devmajor
  writeOctal(block, 337, 8, 0); // devminor
  fields.prefix.copy(block, 345, 0, 155);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return block;
}

/**
 * The header block(s) of one prepared entry: a PAX `x` header first when a
 * field does not fit ustar, then the ustar header. Exported for tests (the
 * 8 GiB size path is checked without writing 8 GiB).
 */
export function encodeHeader(entry: PreparedEntry, mtime: number): Buffer {
  const pax: [string, string][] = [];
  const nameBytes = utf8(entry.name);
  const split = splitUstarName(nameBytes);
  let name: Buffer;
  let prefix: Buffer;
  if (split) {
    ({ name, prefix } = split);
  } else {
    pax.push(["path", entry.name]);
    name = truncateUtf8(nameBytes, 100);
    prefix = Buffer.alloc(0);
  }
  let linkname = utf8(entry.linkname);
  if (linkname.length > 100) {
    pax.push(["linkpath", entry.linkname]);
    linkname = truncateUtf8(linkname, 100);
  }
  const numeric = (key: string, value: number, max: number): number => {
    if (value <= max) return value;
    pax.push([key, String(value)]);
    return 0; // as Go: the ustar field holds 0 and readers take the PAX value
  };
  const fields: HeaderFields = {
    name,
    prefix,
    mode: entry.mode,
    uid: numeric("uid", entry.uid, MAX_OCTAL_7),
    gid: numeric("gid", entry.gid, MAX_OCTAL_7),
    size: numeric("size", entry.size, MAX_OCTAL_11),
    mtime: numeric("mtime", mtime, MAX_OCTAL_11),
    typeflag: TYPEFLAG[entry.type],
    linkname,
  };
  const header = ustarHeader(fields);
  if (pax.length === 0) return header;

  pax.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const records = utf8(pax.map(([key, value]) => paxRecord(key, value)).join(""));
  // The x header's own name is informational (readers replace it); Go's form, ASCII, <= 100 bytes.
  const base = entry.name.replace(/\/$/, "");
  const slash = base.lastIndexOf("/");
  const paxName = `${slash >= 0 ? `${base.slice(0, slash)}/` : ""}PaxHeaders.0/${base.slice(slash + 1)}`
    .replace(/[^\x20-\x7e]/g, "")
    .slice(0, 100)
    .replace(/\/+$/, "");
  const paxHeader = ustarHeader({
    name: Buffer.from(paxName, "ascii"),
    prefix: Buffer.alloc(0),
    mode: 0,
    uid: 0,
    gid: 0,
    size: records.length,
    mtime: 0,
    typeflag: "x",
    linkname: Buffer.alloc(0),
  });
  return Buffer.concat([paxHeader, records, padding(records.length), header]);
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

function asBuffer(chunk: unknown, where: string): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw invalid(`${where}: the stream gave a ${typeof chunk}, not bytes`);
}

/** The tar as an async sequence of Buffers (entries already prepared). */
export async function* tarChunks(entries: readonly PreparedEntry[], mtime: number): AsyncGenerator<Buffer> {
  for (const entry of entries) {
    yield encodeHeader(entry, mtime);
    if (entry.type !== "file") continue;
    const data = entry.data;
    if (data instanceof Uint8Array) {
      if (data.byteLength > 0) yield asBuffer(data, entry.name);
    } else if (typeof data === "function") {
      let written = 0;
      for await (const chunk of data()) {
        const bytes = asBuffer(chunk, entry.name);
        written += bytes.length;
        if (written > entry.size)
          throw invalid(
            `"${entry.name}": its stream gave more than the ${entry.size} bytes declared (the file changed while the layer was written?)`,
          );
        yield bytes;
      }
      if (written !== entry.size)
        throw invalid(
          `"${entry.name}": its stream gave ${written} bytes, ${entry.size} were declared (the file changed while the layer was written?)`,
        );
    }
    const pad = padding(entry.size);
    if (pad.length > 0) yield pad;
  }
  yield Buffer.alloc(2 * BLOCK);
}

/** The tar of these entries as a byte stream. Entries are validated now (throws); contents are read as the stream is consumed. */
export function tarStream(entries: readonly TarEntry[], options: TarOptions = {}): Readable {
  const mtime = resolveMtime(options);
  const prepared = prepareEntries(entries, options);
  return Readable.from(tarChunks(prepared, mtime), { objectMode: false, highWaterMark: 1 << 16 });
}

/** The whole tar in memory: for small layers and tests. */
export async function tarBuffer(entries: readonly TarEntry[], options: TarOptions = {}): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of tarChunks(prepareEntries(entries, options), resolveMtime(options))) parts.push(chunk);
  return Buffer.concat(parts);
}

// Layers.

/** Byte 9 of the gzip header: 0xff ("unknown"), as Go writes, instead of the build's OS code (03 Linux, 0x13 macOS). */
export const GZIP_OS_BYTE = 0xff;

/** zlib parameters besides the level: pinned, because they change the deflate bytes. */
const GZIP_PARAMETERS = Object.freeze({ windowBits: 15, memLevel: 8, strategy: zlibConstants.Z_DEFAULT_STRATEGY });

export interface LayerOptions extends TarOptions {
  /** gzip level 0-9, or false for an uncompressed layer (digest == diff_id). @default 6 */
  gzip?: number | false;
  /** Media types of the OCI or the Docker family (match the base). @default "oci" */
  family?: MediaTypeFamily;
  /** Directory for the temp file of a large blob. @default os.tmpdir() */
  dir?: string;
  /** Blobs up to this many bytes are returned in memory (`data`), larger ones in a temp file (`path`). @default 1 MiB */
  memoryLimit?: number;
  signal?: AbortSignal;
}

export interface Layer {
  readonly mediaType: string;
  /** sha256 of the blob as stored (the gzip bytes): the manifest's layer digest and the blob's name. */
  readonly digest: Digest;
  /** Size of the blob as stored. */
  readonly size: number;
  /** sha256 of the uncompressed tar: the config's rootfs.diff_ids entry. */
  readonly diffId: Digest;
  readonly uncompressedSize: number;
  /** `gzip-6` or `none`; with `zlib` (process.versions.zlib) it says what the digest depends on (section 3.4). */
  readonly compression: string;
  readonly zlib: string | undefined;
  /** The blob, when it is at most `memoryLimit` bytes. */
  readonly data?: Buffer;
  /** The temp file holding the blob, when larger: the caller moves it into a layout (OciLayout.writeBlob with move) or deletes it. */
  readonly path?: string;
  /** `{mediaType, digest, size}` for the manifest. */
  readonly descriptor: Descriptor;
}

/** Pins byte 9 of a gzip stream (the OS field) and checks the magic. */
class GzipHeaderPin extends Transform {
  #offset = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#offset <= 9 && this.#offset + chunk.length > 9) {
      if (this.#offset === 0 && (chunk[0] !== 0x1f || chunk[1] !== 0x8b)) {
        callback(new ToolError("CHASSIS_INTERNAL", "zlib did not produce a gzip header"));
        return;
      }
      chunk = Buffer.from(chunk);
      chunk[9 - this.#offset] = GZIP_OS_BYTE;
    }
    this.#offset += chunk.length;
    callback(null, chunk);
  }
}

function checkLevel(level: number): number {
  if (!Number.isInteger(level) || level < 0 || level > 9)
    throw new ToolError("CHASSIS_USAGE", `gzip level ${level} is not a whole number from 0 to 9`);
  return level;
}

/**
 * Writes a layer blob from an already-made tar stream (any chunking gives
 * the same bytes): hashes the tar (diff_id), compresses it, hashes the
 * result (digest), and keeps it in memory or a temp file.
 */
export async function compressLayer(tar: Readable | AsyncIterable<Uint8Array>, options: LayerOptions = {}): Promise<Layer> {
  const level = options.gzip === false ? undefined : checkLevel(options.gzip ?? 6);
  const mediaType = layerMediaType(level !== undefined, options.family ?? "oci");
  const memoryLimit = options.memoryLimit ?? 1 << 20;
  const tempPath = join(options.dir ?? tmpdir(), `.chassis-layer-${process.pid}-${randomBytes(8).toString("hex")}.tmp`);
  const diff = new DigestStream();
  const stored = level === undefined ? diff : new DigestStream();
  let chunks: Buffer[] = [];
  let handle: FileHandle | undefined;
  let spilled = false;

  const sink = async (source: AsyncIterable<Buffer>): Promise<void> => {
    let total = 0;
    for await (const chunk of source) {
      total += chunk.length;
      if (!spilled && total <= memoryLimit) {
        chunks.push(chunk);
        continue;
      }
      if (!spilled) {
        spilled = true;
        handle = await open(tempPath, "wx", 0o644);
        for (const held of chunks) await writeAll(handle, held);
        chunks = [];
      }
      await writeAll(handle as FileHandle, chunk);
    }
  };

  const source = tar instanceof Readable ? tar : Readable.from(tar, { objectMode: false });
  const pipelineOptions = options.signal ? { signal: options.signal } : {};
  try {
    if (level === undefined) {
      await pipeline(source, diff, sink, pipelineOptions);
    } else {
      const gzip = createGzip({ level, ...GZIP_PARAMETERS });
      await pipeline(source, diff, gzip, new GzipHeaderPin(), stored, sink, pipelineOptions);
    }
    await handle?.close();
  } catch (error) {
    await handle?.close().catch(() => {});
    if (spilled) await unlink(tempPath).catch(() => {});
    throw error;
  }
  const descriptor: Descriptor = { mediaType, digest: stored.digest, size: stored.size };
  return {
    mediaType,
    digest: stored.digest,
    size: stored.size,
    diffId: diff.digest,
    uncompressedSize: diff.size,
    compression: level === undefined ? "none" : `gzip-${level}`,
    zlib: level === undefined ? undefined : process.versions.zlib,
    ...(spilled ? { path: tempPath } : { data: Buffer.concat(chunks) }),
    descriptor,
  };
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

/** Writes a layer from entries in one streaming pass (see the module comment). Entries are validated before anything is written. */
export async function writeLayer(entries: readonly TarEntry[], options: LayerOptions = {}): Promise<Layer> {
  return compressLayer(tarStream(entries, options), options);
}
