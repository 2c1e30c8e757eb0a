/**
 * @module build/oci/tar-reader
 * A streaming tar reader, for image archives used as a base (`docker save`,
 * `podman save`, skopeo and our own output) and for checking our writer.
 * Reads ustar, PAX (`x`, `g`), GNU long names (`L`, `K`) and GNU base-256
 * numbers; contents are streamed, never buffered whole unless asked.
 * Each entry's body must be read (or is skipped) before the next entry.
 */
import { ToolError } from "../../core/tool-error.js";

export interface TarReadEntry {
  /** The name as stored, PAX and GNU long names applied (directories keep their trailing "/"). */
  readonly name: string;
  readonly type: "file" | "dir" | "symlink" | "hardlink" | "other";
  /** The raw typeflag character ("0", "5", "2", "1", ...). */
  readonly typeflag: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
  readonly linkname: string;
  readonly uname: string;
  readonly gname: string;
  /** PAX records that applied to this entry (local and global). */
  readonly pax: Readonly<Record<string, string>>;
  /** The contents, streamed; at most once. */
  body(): AsyncIterable<Buffer>;
  /** The contents in memory. */
  bytes(): Promise<Buffer>;
}

const BLOCK = 512;

function bad(message: string): ToolError {
  return new ToolError("CHASSIS_IMAGE_INVALID", `tar: ${message}`);
}

class ByteReader {
  #iterator: AsyncIterator<Uint8Array>;
  #buffer: Buffer = Buffer.alloc(0);
  #ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  async #pull(): Promise<boolean> {
    if (this.#ended) return false;
    const next = await this.#iterator.next();
    if (next.done) {
      this.#ended = true;
      return false;
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    return true;
  }

  /** Exactly n bytes, or undefined at a clean end (no bytes left); throws on a truncated read. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.#buffer.length < n) {
      if (!(await this.#pull())) {
        if (this.#buffer.length === 0) return undefined;
        throw bad(`unexpected end of archive (wanted ${n} bytes, ${this.#buffer.length} left)`);
      }
    }
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  /** n bytes as a sequence of chunks. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#buffer.length === 0 && !(await this.#pull())) throw bad(`unexpected end of archive (${left} bytes of an entry missing)`);
      const take = Math.min(left, this.#buffer.length);
      const out = this.#buffer.subarray(0, take);
      this.#buffer = this.#buffer.subarray(take);
      left -= take;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) {
      // discard
    }
  }

  /** Stops the source (an early return closes a file stream). */
  async close(): Promise<void> {
    await this.#iterator.return?.();
  }
}

function cString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? length : end).toString("utf8");
}

function numeric(block: Buffer, offset: number, length: number, what: string): number {
  const field = block.subarray(offset, offset + length);
  if (((field[0] as number) & 0x80) !== 0) {
    // GNU base-256: big-endian, first byte's high bit is the marker.
    let value = (field[0] as number) & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + (field[i] as number);
    return value;
  }
  const text = field
    .toString("ascii")
    .replace(/[\0 ]+$/g, "")
    .replace(/^[\0 ]+/g, "");
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw bad(`${what} field ${JSON.stringify(text)} is not octal`);
  return Number.parseInt(text, 8);
}

function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space === -1) throw bad("malformed PAX record");
    const length = Number.parseInt(data.subarray(offset, space).toString("ascii"), 10);
    if (!Number.isSafeInteger(length) || length <= 0 || offset + length > data.length) throw bad("malformed PAX record length");
    const record = data.subarray(space + 1, offset + length - 1).toString("utf8");
    const equals = record.indexOf("=");
    if (equals === -1) throw bad("malformed PAX record (no '=')");
    records[record.slice(0, equals)] = record.slice(equals + 1);
    offset += length;
  }
  return records;
}

function typeOf(flag: string): TarReadEntry["type"] {
  switch (flag) {
    case "0":
    case "\0":
    case "7":
      return "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "5":
      return "dir";
    default:
      return "other";
  }
}

/** The entries of a tar stream, in archive order. */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarReadEntry> {
  const reader = new ByteReader(source);
  const global: Record<string, string> = {};
  let local: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  try {
    for (;;) {
      const block = await reader.read(BLOCK);
      if (block === undefined) return; // no end blocks: accepted, as GNU tar does
      if (block.every((byte) => byte === 0)) return;
      const stored = numeric(block, 148, 8, "checksum");
      let unsigned = 0;
      let signed = 0;
      for (let i = 0; i < BLOCK; i++) {
        const byte = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
        unsigned += byte;
        signed += byte > 127 ? byte - 256 : byte;
      }
      if (stored !== unsigned && stored !== signed) throw bad("header checksum mismatch (not a tar file, or corrupt)");

      const typeflag = String.fromCharCode(block[156] as number);
      const size = numeric(block, 124, 12, "size");
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      if (typeflag === "x" || typeflag === "g" || typeflag === "L" || typeflag === "K") {
        const data = (await reader.read(padded)) ?? Buffer.alloc(0);
        const content = data.subarray(0, size);
        if (typeflag === "x") local = { ...local, ...parsePax(content) };
        else if (typeflag === "g") Object.assign(global, parsePax(content));
        else if (typeflag === "L") longName = cString(content, 0, content.length);
        else longLink = cString(content, 0, content.length);
        continue;
      }

      const magic = block.subarray(257, 263).toString("ascii");
      const prefix = magic === "ustar\0" ? cString(block, 345, 155) : "";
      const pax = { ...global, ...local };
      let name = pax.path ?? longName ?? (prefix ? `${prefix}/${cString(block, 0, 100)}` : cString(block, 0, 100));
      const type = typeOf(typeflag);
      if (type === "dir" && !name.endsWith("/")) name = `${name}/`;
      const realSize = pax.size !== undefined ? Number(pax.size) : size;
      const entrySize = type === "file" || type === "other" ? realSize : 0;
      const entryPadded = pax.size !== undefined ? Math.ceil(realSize / BLOCK) * BLOCK : padded;
      let opened = false;
      let read = 0;
      async function* counted(): AsyncGenerator<Buffer> {
        for await (const part of reader.stream(entrySize)) {
          read += part.length;
          yield part;
        }
      }
      const body = (): AsyncIterable<Buffer> => {
        if (opened) throw bad(`the body of ${name} was already read`);
        opened = true;
        return counted();
      };
      const entry: TarReadEntry = {
        name,
        type,
        typeflag,
        mode: numeric(block, 100, 8, "mode"),
        uid: pax.uid !== undefined ? Number(pax.uid) : numeric(block, 108, 8, "uid"),
        gid: pax.gid !== undefined ? Number(pax.gid) : numeric(block, 116, 8, "gid"),
        size: entrySize,
        mtime: pax.mtime !== undefined ? Number(pax.mtime) : numeric(block, 136, 12, "mtime"),
        linkname: pax.linkpath ?? longLink ?? cString(block, 157, 100),
        uname: pax.uname ?? cString(block, 265, 32),
        gname: pax.gname ?? cString(block, 297, 32),
        pax,
        body,
        bytes: async () => {
          const parts: Buffer[] = [];
          for await (const part of body()) parts.push(part);
          return Buffer.concat(parts);
        },
      };
      local = {};
      longName = undefined;
      longLink = undefined;
      yield entry;
      // What the consumer read is gone from the reader: skip the rest of the body and the padding.
      await reader.skip(entryPadded - read);
    }
  } finally {
    await reader.close();
  }
}
