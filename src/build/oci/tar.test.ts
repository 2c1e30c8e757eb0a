/**
 * The layer writer against three readers: GNU tar (list and extract as
 * root), Python's tarfile, and our own reader; plus the rules that make a
 * layer reproducible (oci-build.md section 3).
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { ToolError } from "../../core/tool-error.js";
import { sha256 } from "./digest.js";
import { MediaType } from "./documents.js";
import {
  compressLayer,
  encodeHeader,
  type PreparedEntry,
  prepareEntries,
  splitUstarName,
  type TarEntry,
  tarBuffer,
  tarChunks,
  tarStream,
  writeLayer,
} from "./tar.js";
import { readTar } from "./tar-reader.js";

const text = (value: string) => new TextEncoder().encode(value);
const hex = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), "chassis-oci-tar-"));
});
after(() => rmSync(work, { recursive: true, force: true }));

function isLayerError(pattern: RegExp) {
  return (error: unknown) => error instanceof ToolError && error.id === "CHASSIS_LAYER_INVALID" && pattern.test(error.message);
}

/** Python's tarfile, an independent reader: every member's header fields and a hash of its contents. */
interface PyMember {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  size: number;
  mtime: number;
  linkname: string;
  pax: Record<string, string>;
  sha256: string | null;
}
function pythonList(file: string): PyMember[] {
  const script = `
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1]) as tf:
    for m in tf.getmembers():
        digest = None
        if m.isfile():
            digest = hashlib.sha256(tf.extractfile(m).read()).hexdigest()
        out.append({"name": m.name, "type": m.type.decode(), "mode": m.mode, "uid": m.uid, "gid": m.gid,
                    "uname": m.uname, "gname": m.gname, "size": m.size, "mtime": m.mtime,
                    "linkname": m.linkname, "pax": m.pax_headers, "sha256": digest})
print(json.dumps(out))
`;
  return JSON.parse(execFileSync("/usr/bin/python3", ["-c", script, file], { encoding: "utf8", maxBuffer: 1 << 26 })) as PyMember[];
}

/** Raw headers: the typeflags in order, to see where PAX 'x' headers were written. */
async function typeflags(tar: Buffer): Promise<string[]> {
  const flags: string[] = [];
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const block = tar.subarray(offset, offset + 512);
    if (block.every((b) => b === 0)) break;
    const flag = String.fromCharCode(block[156] as number);
    const size = Number.parseInt(block.subarray(124, 136).toString("ascii").replace(/\0.*$/, "") || "0", 8);
    flags.push(flag);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return flags;
}

describe("prepareEntries: normalization, parents, order, modes", () => {
  test("names lose leading / and ./, directories end with /, parents are added explicitly, order is UTF-8 byte order", () => {
    const prepared = prepareEntries([
      { path: "/usr/bin/tool", type: "file", data: text("x") },
      { path: "./etc//app.conf", type: "file", data: text("y") },
      { path: "z", type: "dir" },
      { path: "a-b", type: "file" },
      { path: "a/é", type: "file" },
      { path: "a/z", type: "file" },
      { path: "A", type: "file" },
    ]);
    assert.deepEqual(
      prepared.map((entry) => entry.name),
      // "-" (0x2d) < "/" (0x2f); "z" (0x7a) < "é" (0xc3 0xa9) in UTF-8 although JS strings also agree here; "A" < "a".
      ["A", "a-b", "a/", "a/z", "a/é", "etc/", "etc/app.conf", "usr/", "usr/bin/", "usr/bin/tool", "z/"],
    );
    const byName = new Map(prepared.map((entry) => [entry.name, entry]));
    assert.equal(byName.get("usr/")?.implicit, true);
    assert.equal(byName.get("usr/")?.mode, 0o755);
    assert.equal(byName.get("z/")?.implicit, false);
  });

  test("UTF-8 byte order, not JS UTF-16 order: U+FF5E sorts before U+1F600 only in UTF-16", () => {
    const names = prepareEntries([
      { path: "\u{1F600}", type: "file" },
      { path: "\uFF5E", type: "file" },
    ]).map((entry) => entry.name);
    // UTF-8: EF BD 9E < F0 9F 98 80; UTF-16: FF5E > D83D.
    assert.deepEqual(names, ["\uFF5E", "\u{1F600}"]);
    assert.ok("\u{1F600}" < "\uFF5E", "JS string order would have put the emoji first");
  });

  test("modes: files 0644 or 0755, directories 0755, symlinks 0777; set-id kept; sticky directories kept; exactMode", () => {
    const prepared = prepareEntries([
      { path: "plain", type: "file", mode: 0o100664 },
      { path: "exec", type: "file", mode: 0o700 },
      { path: "group-exec", type: "file", mode: 0o610 },
      { path: "setuid", type: "file", mode: 0o4711 },
      { path: "dir", type: "dir", mode: 0o700 },
      { path: "tmp", type: "dir", mode: 0o1777 },
      { path: "shared", type: "dir", mode: 0o775, exactMode: true },
      { path: "link", type: "symlink", linkname: "plain", mode: 0o755 },
      { path: "nomode", type: "file" },
    ]);
    const mode = (name: string) => prepared.find((entry) => entry.name === name)?.mode;
    assert.equal(mode("plain"), 0o644);
    assert.equal(mode("exec"), 0o755);
    assert.equal(mode("group-exec"), 0o755);
    assert.equal(mode("setuid"), 0o4755);
    assert.equal(mode("dir/"), 0o755);
    assert.equal(mode("tmp/"), 0o1777);
    assert.equal(mode("shared/"), 0o775);
    assert.equal(mode("link"), 0o777);
    assert.equal(mode("nomode"), 0o644);
    const exact = prepareEntries([{ path: "f", type: "file", mode: 0o600 }], { modes: "exact" });
    assert.equal(exact[0]?.mode, 0o600);
  });

  test("owner: 0 by default, the layer's uid/gid for entries and added parents, an entry's own ids win", () => {
    const prepared = prepareEntries(
      [
        { path: "app/cache/x", type: "file" },
        { path: "root-owned", type: "file", uid: 0, gid: 0 },
      ],
      { uid: 1000, gid: 1001 },
    );
    const owner = (name: string) => {
      const entry = prepared.find((e) => e.name === name);
      return [entry?.uid, entry?.gid];
    };
    assert.deepEqual(owner("app/"), [1000, 1001]);
    assert.deepEqual(owner("app/cache/x"), [1000, 1001]);
    assert.deepEqual(owner("root-owned"), [0, 0]);
    assert.deepEqual(
      prepareEntries([{ path: "f", type: "file" }]).map((e) => [e.uid, e.gid]),
      [[0, 0]],
    );
  });

  test("duplicates are rejected, naming the path, whatever spelling or type", () => {
    assert.throws(
      () =>
        prepareEntries([
          { path: "/etc/passwd", type: "file", data: text("a") },
          { path: "./etc/passwd", type: "file", data: text("b") },
        ]),
      isLayerError(/duplicate path "etc\/passwd" in layer: entries #0 \(file\) and #1 \(file\)/),
    );
    assert.throws(
      () =>
        prepareEntries([
          { path: "a", type: "file" },
          { path: "a/", type: "dir" },
        ]),
      isLayerError(/duplicate path "a"/),
    );
    // An explicit directory and an implied parent are not duplicates: the explicit one wins.
    const prepared = prepareEntries([
      { path: "d/f", type: "file" },
      { path: "d", type: "dir", mode: 0o700, exactMode: true },
    ]);
    assert.equal(prepared.find((e) => e.name === "d/")?.mode, 0o700);
  });

  test("unsafe or malformed entries are rejected with the path in the message", () => {
    assert.throws(() => prepareEntries([{ path: "a/../../etc", type: "file" }]), isLayerError(/contains "\.\."/));
    assert.throws(() => prepareEntries([{ path: "/", type: "dir" }]), isLayerError(/names the image root/));
    assert.throws(() => prepareEntries([{ path: "a\0b", type: "file" }]), isLayerError(/NUL/));
    assert.throws(() => prepareEntries([{ path: "f/", type: "file" }]), isLayerError(/must not end with "\/"/));
    assert.throws(() => prepareEntries([{ path: "s", type: "symlink" }]), isLayerError(/needs a linkname/));
    assert.throws(() => prepareEntries([{ path: "h", type: "hardlink", linkname: "nope" }]), isLayerError(/"h" -> "nope": no such file/));
    assert.throws(
      () =>
        prepareEntries([
          { path: "d", type: "dir" },
          { path: "h", type: "hardlink", linkname: "d" },
        ]),
      isLayerError(/target is a dir/),
    );
    assert.throws(
      () =>
        prepareEntries([
          { path: "f", type: "file" },
          { path: "f/child", type: "file" },
        ]),
      isLayerError(/"f\/child" is inside "f", which is a file/),
    );
    assert.throws(
      () => prepareEntries([{ path: "f", type: "file", data: text("abc"), size: 2 }]),
      isLayerError(/size 2 differs from its 3 bytes/),
    );
    assert.throws(() => prepareEntries([{ path: "f", type: "file", data: () => Readable.from([]) }]), isLayerError(/needs its size/));
    assert.throws(() => prepareEntries([{ path: "d", type: "dir", data: text("x") }]), isLayerError(/only files have data/));
    assert.throws(() => prepareEntries([{ path: "f", type: "fifo" as "file" }]), isLayerError(/type "fifo"/));
    assert.throws(() => prepareEntries([{ path: "f", type: "file", uid: -1 }]), isLayerError(/uid -1/));
  });

  test("hardlinks: the first name in byte order carries the content, the others link to it", () => {
    const prepared = prepareEntries([
      { path: "bin/busybox", type: "file", data: text("BB"), mode: 0o755 },
      { path: "bin/ls", type: "hardlink", linkname: "/bin/busybox" },
      { path: "bin/ash", type: "hardlink", linkname: "bin/ls" }, // a link to a link resolves to the file
    ]);
    const files = prepared.filter((e) => e.name.startsWith("bin/") && e.name !== "bin/");
    assert.deepEqual(
      files.map((e) => [e.name, e.type, e.size, e.linkname, e.mode]),
      [
        ["bin/ash", "file", 2, "", 0o755],
        ["bin/busybox", "hardlink", 0, "bin/ash", 0o755],
        ["bin/ls", "hardlink", 0, "bin/ash", 0o755],
      ],
    );
  });
});

describe("headers: ustar, and PAX only when needed", () => {
  test("splitUstarName follows Go: longest prefix <= 155 bytes, name 1..100 bytes", () => {
    const split = (name: string) => {
      const result = splitUstarName(Buffer.from(name));
      return result && [result.prefix.toString(), result.name.toString()];
    };
    assert.deepEqual(split("short"), ["", "short"]);
    const hundred = "n".repeat(100);
    assert.deepEqual(split(hundred), ["", hundred]);
    assert.equal(split("n".repeat(101)), undefined, "one component over 100 bytes cannot be split");
    assert.deepEqual(split(`${"p".repeat(150)}/${"n".repeat(100)}`), ["p".repeat(150), "n".repeat(100)]);
    assert.equal(split(`${"p".repeat(156)}/n`), undefined, "prefix over 155 bytes");
    assert.deepEqual(split(`${"d".repeat(120)}/`), undefined, "the trailing slash of a directory is not a split point");
    assert.deepEqual(split(`${"a".repeat(60)}/${"b".repeat(60)}/${"c".repeat(60)}`), [
      `${"a".repeat(60)}/${"b".repeat(60)}`,
      "c".repeat(60),
    ]);
  });

  test("names of 100, 101-255 (split) and more bytes; long link targets; where the x headers go", async () => {
    const at100 = "a".repeat(100);
    const split = `${"b".repeat(150)}/${"c".repeat(100)}`; // 251 bytes, splittable: no PAX
    const long = `${"d".repeat(200)}/${"e".repeat(150)}`; // 351 bytes: PAX path
    const entries: TarEntry[] = [
      { path: at100, type: "file", data: text("100") },
      { path: split, type: "file", data: text("split") },
      { path: long, type: "file", data: text("long") },
      { path: "ln", type: "symlink", linkname: `/${"t".repeat(120)}` },
    ];
    const tar = await tarBuffer(entries);
    // Order: a..., b.../ (dir, 151 bytes with "/", one component: PAX), b.../c..., d.../ (PAX), d.../e... (PAX), ln (PAX linkpath).
    assert.deepEqual(await typeflags(tar), ["0", "x", "5", "0", "x", "5", "x", "0", "x", "2"]);
    const file = join(work, "names.tar");
    writeFileSync(file, tar);
    const python = pythonList(file);
    assert.deepEqual(
      python.map((m) => m.name),
      [at100, "b".repeat(150), split, "d".repeat(200), long, "ln"],
    );
    assert.deepEqual(python.find((m) => m.name === split)?.pax, {}, "a splittable name needs no PAX");
    assert.deepEqual(python.find((m) => m.name === long)?.pax, { path: long });
    assert.deepEqual(python.find((m) => m.name === "ln")?.pax, { linkpath: `/${"t".repeat(120)}` });
    assert.equal(python.find((m) => m.name === long)?.sha256, hex(text("long")));
    const gnu = execFileSync("tar", ["-tf", file], { encoding: "utf8" }).trim().split("\n");
    assert.deepEqual(gnu, [at100, `${"b".repeat(150)}/`, split, `${"d".repeat(200)}/`, long, "ln"]);
  });

  test("a size of 8 GiB or more goes in a PAX size record (header only: nothing near 8 GiB is written)", () => {
    const size = 8 * 1024 ** 3 + 1;
    const entry: PreparedEntry = {
      name: "weights.gguf",
      type: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      size,
      linkname: "",
      data: undefined,
      implicit: false,
    };
    const header = encodeHeader(entry, 1);
    assert.equal(header.length, 512 * 3, "x header, its records, the ustar header");
    assert.equal(String.fromCharCode(header[156] as number), "x");
    const records = header.subarray(512, 1024).toString("utf8").replace(/\0+$/, "");
    assert.equal(records, `19 size=${size}\n`);
    assert.equal(Buffer.byteLength(records), 19, "a PAX record's length counts itself");
    const ustar = header.subarray(1024);
    assert.equal(ustar.subarray(124, 136).toString("ascii"), "00000000000\0", "the ustar size field holds 0, as Go writes");
    // Just under the limit: plain ustar.
    const fits = encodeHeader({ ...entry, size: 8 * 1024 ** 3 - 1 }, 1);
    assert.equal(fits.length, 512);
    assert.equal(fits.subarray(124, 136).toString("ascii"), "77777777777\0");
    // Python reads the size from the header stream alone.
    const py = spawnSync(
      "/usr/bin/python3",
      [
        "-c",
        "import sys, tarfile\nt = tarfile.open(fileobj=sys.stdin.buffer, mode='r|')\nm = t.next()\nprint(m.name, m.size, m.pax_headers)",
      ],
      { input: header },
    );
    assert.equal(py.stdout.toString().trim(), `weights.gguf ${size} {'size': '${size}'}`);
  });

  test("ids over 2097151 and an mtime after 2242 also use PAX; checksum is 6 octal digits, NUL, space", () => {
    const entry: PreparedEntry = {
      name: "f",
      type: "file",
      mode: 0o644,
      uid: 3_000_000,
      gid: 5,
      size: 0,
      linkname: "",
      data: undefined,
      implicit: false,
    };
    const header = encodeHeader(entry, 2 ** 34);
    const records = header.subarray(512, 1024).toString("utf8").replace(/\0+$/, "");
    assert.equal(records, `21 mtime=17179869184\n15 uid=3000000\n`);
    const ustar = encodeHeader({ ...entry, uid: 0 }, 1);
    assert.match(ustar.subarray(148, 156).toString("latin1"), /^[0-7]{6}\0 $/);
    assert.equal(ustar.subarray(257, 265).toString("latin1"), "ustar\u000000");
    assert.equal(ustar.subarray(265, 329).toString("latin1"), "\0".repeat(64), "uname and gname are empty");
  });
});

describe("round trips through GNU tar, Python tarfile and our reader", () => {
  const entries: TarEntry[] = [
    { path: "/bin/busybox", type: "file", data: text("#!static\n"), mode: 0o755 },
    { path: "/bin/ls", type: "hardlink", linkname: "/bin/busybox" },
    { path: "/bin/sh", type: "symlink", linkname: "busybox" },
    { path: "/etc/passwd", type: "file", data: text("root:x:0:0::/:/bin/sh\n"), mode: 0o664 },
    { path: "/lib64", type: "symlink", linkname: "/usr/lib64" },
    { path: "/tmp", type: "dir", mode: 0o1777 },
    { path: "/app", type: "dir", uid: 1000, gid: 1000 },
    {
      path: "/app/model/weights.bin",
      type: "file",
      size: 70_000,
      data: () => Readable.from([Buffer.alloc(30_000, 1), Buffer.alloc(40_000, 2)]),
    },
    { path: `/app/${"deep/".repeat(30)}leaf.txt`, type: "file", data: text("deep") },
    { path: "/usr/share/ünïcödé.txt", type: "file", data: text("utf8 name") },
  ];

  test("GNU tar lists and extracts the same names, modes, owners, mtimes, link targets and contents", async () => {
    const file = join(work, "roundtrip.tar");
    writeFileSync(file, await tarBuffer(entries, { mtime: 1_700_000_000 }));
    const listing = execFileSync("tar", ["--numeric-owner", "--full-time", "-tvf", file], {
      encoding: "utf8",
      env: { ...process.env, TZ: "UTC", LC_ALL: "C.UTF-8" },
    });
    const lines = listing.trim().split("\n");
    assert.match(lines.find((l) => l.endsWith(" bin/busybox")) ?? "", /^-rwxr-xr-x 0\/0 +9 2023-11-14 22:13:20 bin\/busybox$/);
    assert.match(lines.find((l) => l.includes(" bin/ls")) ?? "", /^hrwxr-xr-x 0\/0 +0 .* bin\/ls link to bin\/busybox$/);
    assert.match(lines.find((l) => l.includes(" bin/sh")) ?? "", /^lrwxrwxrwx 0\/0 +0 .* bin\/sh -> busybox$/);
    assert.match(lines.find((l) => l.endsWith(" tmp/")) ?? "", /^drwxrwxrwt 0\/0 /);
    assert.match(lines.find((l) => l.endsWith(" app/")) ?? "", /^drwxr-xr-x 1000\/1000 /);
    assert.match(lines.find((l) => l.endsWith(" etc/passwd")) ?? "", /^-rw-r--r-- 0\/0 /);

    const out = join(work, "extracted");
    mkdirSync(out);
    execFileSync("tar", ["--numeric-owner", "-xf", file, "-C", out]);
    const busybox = lstatSync(join(out, "bin/busybox"));
    assert.equal(busybox.mode & 0o7777, 0o755);
    assert.equal(busybox.mtimeMs, 1_700_000_000_000);
    assert.equal(lstatSync(join(out, "bin/ls")).ino, busybox.ino, "the hardlink is the same inode");
    assert.equal(busybox.nlink, 2);
    assert.equal(readlinkSync(join(out, "bin/sh")), "busybox");
    assert.equal(readlinkSync(join(out, "lib64")), "/usr/lib64");
    assert.equal(statSync(join(out, "tmp")).mode & 0o7777, 0o1777);
    if (process.getuid?.() === 0) assert.equal(statSync(join(out, "app")).uid, 1000, "owner kept (extracted as root)");
    assert.equal(statSync(join(out, "etc/passwd")).mode & 0o7777, 0o644);
    assert.deepEqual(readFileSync(join(out, "app/model/weights.bin")), Buffer.concat([Buffer.alloc(30_000, 1), Buffer.alloc(40_000, 2)]));
    assert.equal(readFileSync(join(out, `app/${"deep/".repeat(30)}leaf.txt`), "utf8"), "deep");
    assert.equal(readFileSync(join(out, "usr/share/ünïcödé.txt"), "utf8"), "utf8 name");
    assert.equal(statSync(join(out, "usr")).mode & 0o7777, 0o755, "an added parent");
    assert.deepEqual(readdirSync(join(out, "usr/share")), ["ünïcödé.txt"]);
  });

  test("Python tarfile reads the same members: sorted names, empty uname/gname, one mtime, no atime/ctime", async () => {
    const file = join(work, "roundtrip-py.tar");
    writeFileSync(file, await tarBuffer(entries));
    const members = pythonList(file);
    const names = members.map((m) => m.name);
    assert.deepEqual(
      names,
      [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
    assert.ok(members.every((m) => m.uname === "" && m.gname === "" && m.mtime === 1));
    assert.ok(members.every((m) => !("atime" in m.pax) && !("ctime" in m.pax) && !("mtime" in m.pax)));
    const byName = new Map(members.map((m) => [m.name, m]));
    assert.equal(byName.get("bin/ls")?.type, "1");
    assert.equal(byName.get("bin/ls")?.linkname, "bin/busybox");
    assert.equal(byName.get("bin/sh")?.linkname, "busybox");
    assert.equal(byName.get("app")?.uid, 1000);
    assert.equal(byName.get("tmp")?.mode, 0o1777);
    assert.equal(byName.get("app/model/weights.bin")?.size, 70_000);
    assert.equal(byName.get("app/model/weights.bin")?.sha256, hex(Buffer.concat([Buffer.alloc(30_000, 1), Buffer.alloc(40_000, 2)])));
    assert.equal(byName.get(`app/${"deep/".repeat(30)}leaf.txt`)?.sha256, hex(text("deep")));
  });

  test("our reader gives back every entry", async () => {
    const tar = await tarBuffer(entries);
    const read: Array<[string, string, number, string]> = [];
    for await (const entry of readTar(Readable.from([tar.subarray(0, 1000), tar.subarray(1000)]))) {
      const body = entry.type === "file" ? hex(await entry.bytes()) : entry.linkname;
      read.push([entry.name, entry.type, entry.mode, body]);
    }
    const prepared = prepareEntries(entries);
    assert.deepEqual(
      read.map(([name]) => name),
      prepared.map((entry) => entry.name),
    );
    assert.deepEqual(
      read.find(([name]) => name === "etc/passwd"),
      ["etc/passwd", "file", 0o644, hex(text("root:x:0:0::/:/bin/sh\n"))],
    );
    assert.deepEqual(
      read.find(([name]) => name === "bin/ls"),
      ["bin/ls", "hardlink", 0o755, "bin/busybox"],
    );
  });
});

describe("streaming", () => {
  test("a stream that gives more or fewer bytes than declared fails the layer", async () => {
    await assert.rejects(
      tarBuffer([{ path: "f", type: "file", size: 3, data: () => Readable.from([Buffer.from("four")]) }]),
      isLayerError(/gave more than the 3 bytes declared/),
    );
    await assert.rejects(
      tarBuffer([{ path: "f", type: "file", size: 10, data: () => Readable.from([Buffer.from("four")]) }]),
      isLayerError(/gave 4 bytes, 10 were declared/),
    );
  });

  test("file streams are opened one at a time, when the tar reaches them", async () => {
    const opened: string[] = [];
    const source = (name: string) => () => {
      opened.push(name);
      return Readable.from([Buffer.from(name)]);
    };
    const chunks = tarChunks(
      prepareEntries([
        { path: "b", type: "file", size: 1, data: source("b") },
        { path: "a", type: "file", size: 1, data: source("a") },
      ]),
      1,
    );
    assert.deepEqual(opened, [], "nothing is read before the tar is consumed");
    await chunks.next(); // header of a
    assert.deepEqual(opened, []);
    await chunks.next(); // contents of a
    assert.deepEqual(opened, ["a"]);
    for await (const _ of chunks) {
      // the rest
    }
    assert.deepEqual(opened, ["a", "b"]);
  });

  test("a 160 MiB file streams through tar, sha256, gzip and sha256 to disk without being held in memory", async () => {
    const size = 160 * 1024 * 1024;
    const chunk = 1024 * 1024;
    const dir = mkdtempSync(join(work, "big-"));
    // Each MiB: 64 KiB of fixed noise (beyond deflate's 32 KiB window, so it does not compress away) and zeros.
    const noise = createHash("sha512").update("seed").digest();
    const pattern = Buffer.alloc(64 * 1024);
    for (let i = 0; i < pattern.length; i += noise.length) createHash("sha512").update(noise).update(String(i)).digest().copy(pattern, i);
    let onDiskWhenSourceEnded = -1;
    let peakExternal = 0;
    const baseline = process.memoryUsage().arrayBuffers;
    async function* generate(): AsyncGenerator<Buffer> {
      for (let i = 0; i < size / chunk; i++) {
        const block = Buffer.alloc(chunk);
        pattern.copy(block, 0);
        block.writeUInt32BE(i, 0);
        peakExternal = Math.max(peakExternal, process.memoryUsage().arrayBuffers - baseline);
        if (i === size / chunk - 1) {
          const temp = readdirSync(dir).find((name) => name.startsWith(".chassis-layer-"));
          onDiskWhenSourceEnded = temp ? statSync(join(dir, temp)).size : 0;
        }
        yield block;
      }
    }
    const started = Date.now();
    const layer = await writeLayer([{ path: "models/big.bin", type: "file", size, data: () => Readable.from(generate()) }], {
      gzip: 1,
      dir,
      memoryLimit: 1024 * 1024,
    });
    const seconds = (Date.now() - started) / 1000;
    assert.ok(layer.path, "a blob over memoryLimit is a file");
    assert.equal(layer.data, undefined);
    assert.equal(layer.uncompressedSize, 2 * 512 + size + 2 * 512, "headers (models/, models/big.bin) + data + end blocks");
    assert.ok(
      onDiskWhenSourceEnded > layer.size * 0.8,
      `most of the gzip output (${onDiskWhenSourceEnded} of ${layer.size} bytes) was on disk before the source ended`,
    );
    assert.ok(peakExternal < 64 * 1024 * 1024, `buffers in use stayed under 64 MiB (peak ${peakExternal} bytes)`);
    // Independent checks: sha256sum of the blob, and of the decompressed tar; GNU tar lists it.
    const blobSha = execFileSync("sha256sum", [layer.path], { encoding: "utf8" }).split(" ")[0];
    assert.equal(`sha256:${blobSha}`, layer.digest);
    assert.equal(statSync(layer.path).size, layer.size);
    const tarSha = execFileSync("bash", ["-c", `gzip -dc '${layer.path}' | sha256sum`], { encoding: "utf8" }).split(" ")[0];
    assert.equal(`sha256:${tarSha}`, layer.diffId);
    const listing = execFileSync("tar", ["--numeric-owner", "-tvzf", layer.path], { encoding: "utf8" });
    assert.match(listing, new RegExp(`-rw-r--r-- 0/0 +${size} .* models/big.bin`));
    console.log(
      `# 160 MiB layer: ${seconds.toFixed(2)} s at gzip-1, blob ${layer.size} bytes, ${onDiskWhenSourceEnded} on disk when the source ended, peak extra buffers ${(peakExternal / 2 ** 20).toFixed(1)} MiB`,
    );
    rmSync(dir, { recursive: true, force: true });
  });

  test("memoryLimit: small blobs come back in memory, larger ones in a temp file in `dir`", async () => {
    const entries: TarEntry[] = [{ path: "f", type: "file", data: Buffer.alloc(4096, 7) }];
    const small = await writeLayer(entries, { gzip: false });
    assert.ok(small.data && small.path === undefined);
    const dir = mkdtempSync(join(work, "spill-"));
    const spilled = await writeLayer(entries, { gzip: false, memoryLimit: 100, dir });
    assert.ok(spilled.path?.startsWith(dir));
    assert.deepEqual(readFileSync(spilled.path as string), small.data);
    assert.equal(spilled.digest, small.digest);
  });

  test("an uncompressed layer: digest == diff_id, OCI tar media type; Docker family refuses it", async () => {
    const layer = await writeLayer([{ path: "w", type: "file", data: text("weights") }], { gzip: false });
    assert.equal(layer.digest, layer.diffId);
    assert.equal(layer.mediaType, MediaType.OciLayer);
    assert.equal(layer.compression, "none");
    assert.equal(layer.digest, sha256(layer.data as Buffer));
    await assert.rejects(writeLayer([{ path: "w", type: "file" }], { gzip: false, family: "docker" }), /needs an OCI manifest/);
    const docker = await writeLayer([{ path: "w", type: "file" }], { family: "docker" });
    assert.equal(docker.mediaType, MediaType.DockerLayerGzip);
  });
});

describe("determinism", () => {
  const entries = (): TarEntry[] => [
    { path: "/usr/bin/app", type: "file", data: text("#!/usr/bin/env node\n"), mode: 0o775 },
    { path: "/app/model/config.json", type: "file", data: text('{"a":1}'), mode: 0o600 },
    { path: "/app/model/weights.bin", type: "file", size: 100_000, data: () => Readable.from([Buffer.alloc(100_000, 3)]) },
    { path: "/usr/lib/x", type: "symlink", linkname: "../bin/app" },
  ];

  test("same entries twice (and in another order) give identical bytes, diff_id and digest", async () => {
    const first = await writeLayer(entries());
    const second = await writeLayer(entries());
    const shuffled = await writeLayer(entries().reverse());
    assert.deepEqual(second.data, first.data);
    assert.equal(second.digest, first.digest);
    assert.equal(second.diffId, first.diffId);
    assert.equal(shuffled.digest, first.digest);
    assert.equal(shuffled.diffId, first.diffId);
    assert.equal(first.mediaType, MediaType.OciLayerGzip);
    assert.equal(first.compression, "gzip-6");
    assert.equal(first.zlib, process.versions.zlib);
    console.log(`# layer digest ${first.digest} diff_id ${first.diffId} (zlib ${process.versions.zlib})`);
  });

  test("SOURCE_DATE_EPOCH sets the mtime (and so the digests); `mtime` overrides it; the default is 1", async () => {
    const base = await tarBuffer(entries());
    const epoch = await tarBuffer(entries(), { sourceDateEpoch: "1700000000" });
    const again = await tarBuffer(entries(), { sourceDateEpoch: "1700000000" });
    const explicit = await tarBuffer(entries(), { sourceDateEpoch: "1700000000", mtime: 5 });
    assert.notEqual(sha256(base), sha256(epoch));
    assert.equal(sha256(epoch), sha256(again));
    const mtimes = async (tar: Buffer) => {
      const out = new Set<number>();
      for await (const entry of readTar(Readable.from([tar]))) out.add(entry.mtime);
      return [...out];
    };
    assert.deepEqual(await mtimes(base), [1]);
    assert.deepEqual(await mtimes(epoch), [1_700_000_000]);
    assert.deepEqual(await mtimes(explicit), [5]);
    assert.deepEqual(await mtimes(await tarBuffer(entries(), { sourceDateEpoch: "" })), [1]);
    assert.throws(
      () => tarStream(entries(), { sourceDateEpoch: "yesterday" }),
      (error: unknown) => error instanceof ToolError && error.id === "CHASSIS_USAGE" && /SOURCE_DATE_EPOCH="yesterday"/.test(error.message),
    );
  });

  test("gzip: header pinned (MTIME 0, no name, OS 0xff), same bytes whatever the input chunking, decompresses to the tar", async () => {
    const tar = await tarBuffer(entries());
    const whole = await compressLayer(Readable.from([tar]));
    const bytewise = await compressLayer(
      Readable.from(Array.from({ length: Math.ceil(tar.length / 7) }, (_, i) => tar.subarray(i * 7, i * 7 + 7))),
    );
    const odd = await compressLayer(Readable.from([tar.subarray(0, 3), tar.subarray(3, 9999), tar.subarray(9999)]));
    assert.equal(bytewise.digest, whole.digest);
    assert.equal(odd.digest, whole.digest);
    const gz = whole.data as Buffer;
    assert.deepEqual([...gz.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff], "level 6: XFL 0, OS pinned to 0xff");
    assert.deepEqual(gunzipSync(gz), tar);
    assert.equal(whole.diffId, sha256(tar));
    const fast = await compressLayer(Readable.from([tar]), { gzip: 1 });
    assert.equal((fast.data as Buffer)[8], 4, "XFL depends on the level (4 = fastest), so the level is part of the format");
    assert.equal((fast.data as Buffer)[9], 0xff);
    assert.notEqual(fast.digest, whole.digest);
    assert.equal(fast.diffId, whole.diffId, "the diff_id depends only on the tar");
    // Python's gzip reads it too (an independent decoder).
    const py = spawnSync(
      "/usr/bin/python3",
      ["-c", "import gzip,hashlib,sys; print(hashlib.sha256(gzip.decompress(sys.stdin.buffer.read())).hexdigest())"],
      {
        input: gz,
      },
    );
    assert.equal(`sha256:${py.stdout.toString().trim()}`, whole.diffId);
    await assert.rejects(compressLayer(Readable.from([tar]), { gzip: 10 }), /gzip level 10/);
  });
});
