import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { seededRandom } from "../../test/helpers/random.js";
import { IdTable } from "./id-table.js";

describe("IdTable", () => {
  test("gets, replaces and deletes by id, and counts its entries", () => {
    const table = new IdTable<string>();
    assert.equal(table.size, 0);
    assert.equal(table.get(1), undefined);
    table.set(1, "a");
    table.set(3, "b");
    table.set(1, "c");
    assert.equal(table.size, 2);
    assert.equal(table.get(1), "c");
    assert.equal(table.has(3), true);
    assert.equal(table.delete(3), true);
    assert.equal(table.delete(3), false);
    assert.equal(table.has(3), false);
    assert.deepEqual(table.values(), ["c"]);
    table.clear();
    assert.equal(table.size, 0);
    assert.equal(table.get(1), undefined);
  });

  test("takes ids up to 2^53 - 1, including 0 and ids that share their low 32 bits", () => {
    const table = new IdTable<number>();
    const ids = [0, 2 ** 31, 2 ** 32, 2 ** 32 + 5, 5, Number.MAX_SAFE_INTEGER];
    for (const [i, id] of ids.entries()) table.set(id, i);
    for (const [i, id] of ids.entries()) assert.equal(table.get(id), i, `id ${id}`);
    assert.equal(table.delete(5), true);
    assert.equal(table.get(2 ** 32 + 5), 3);
  });

  test("refuses an id that is negative, fractional or past 2^53 - 1, and finds none there", () => {
    const table = new IdTable<number>();
    for (const id of [-1, 1.5, Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY]) {
      assert.throws(() => table.set(id, 1), { name: "RangeError", message: new RegExp(`non-negative safe integer \\(got ${id}\\)`) });
      assert.equal(table.has(id), false);
    }
    assert.equal(table.size, 0);
  });

  test("values() is a copy: deleting while going through it is safe", () => {
    const table = new IdTable<number>();
    for (let id = 1; id < 100; id += 2) table.set(id, id);
    let seen = 0;
    for (const value of table.values()) {
      table.delete(value);
      seen++;
    }
    assert.equal(seen, 50);
    assert.equal(table.size, 0);
  });

  test("matches a Map over 300,000 random sets, gets and deletes, growing into the thousands and shrinking back", () => {
    const uniform = seededRandom(2024);
    const random = (n: number) => Math.floor(uniform() * n);
    const table = new IdTable<number>();
    const model = new Map<number, number>();
    const keys: number[] = []; // the model's keys, to pick a victim in O(1)
    const forget = (key: number) => {
      const at = keys.indexOf(key);
      keys[at] = keys[keys.length - 1] as number;
      keys.pop();
    };
    let nextStream = 1;
    for (let step = 0; step < 300_000; step++) {
      // Phases of 20,000 steps: more sets than deletes, then the reverse; ids mostly rising by 2 (stream ids), some anywhere.
      const growing = Math.floor(step / 20_000) % 2 === 0;
      const op = random(100);
      const id = random(4) === 0 ? random(1 << 20) : nextStream;
      if (op < (growing ? 60 : 35)) {
        table.set(id, step);
        if (!model.has(id)) keys.push(id);
        model.set(id, step);
        if (id === nextStream) nextStream += 2;
      } else if (op < 95) {
        const victim = keys.length > 0 && random(3) > 0 ? (keys[random(keys.length)] as number) : id;
        const had = model.delete(victim);
        if (had) forget(victim);
        assert.equal(table.delete(victim), had, `step ${step}: delete ${victim}`);
      } else {
        assert.equal(table.get(id), model.get(id), `step ${step}: get ${id}`);
      }
      assert.equal(table.size, model.size, `step ${step}`);
      if (step % 5000 === 0) {
        for (const [key, value] of model) assert.equal(table.get(key), value, `step ${step}: key ${key}`);
        assert.deepEqual(
          table.values().sort((a, b) => a - b),
          [...model.values()].sort((a, b) => a - b),
        );
      }
    }
  });

  test("long-lived tables with an entry added and removed per call let the calls die young (Maps do not)", () => {
    // A child runs the churn with --trace-gc-nvp: each scavenge prints the bytes it promoted to the old generation.
    const script = fileURLToPath(new URL("../../test/fixtures/id-table-churn.ts", import.meta.url));
    const promoted = (kind: string) => {
      const out = execFileSync(process.execPath, ["--import", "tsx", "--expose-gc", "--trace-gc-nvp", script, kind], { encoding: "utf8" });
      const bytes = [...out.matchAll(/ promoted=(\d+)/g)].map((m) => Number(m[1]));
      assert.ok(bytes.length > 10, `${kind}: only ${bytes.length} scavenges; the churn is too short to tell`);
      return bytes.reduce((a, b) => a + b, 0);
    };
    const table = promoted("id-table");
    // 400,000 calls of about 1 KB: 400 MB if every call were promoted. Measured: IdTable 4 MB (tsx's own), Map 370-387
    // MB in most runs, 33 MB in some and 16 MB in one of 20 (a major GC can break the chain): hence up to three tries.
    assert.ok(table < 20e6, `the IdTable's calls were promoted: ${table} bytes`);
    const maps: number[] = [];
    while (maps.length < 3 && !maps.some((map) => map > 4 * table)) maps.push(promoted("map"));
    assert.ok(
      maps.some((map) => map > 4 * table),
      `the Map promoted ${maps.join(", ")} bytes, the IdTable ${table}: if V8 no longer keeps a churning Map's calls, core/id-table may go`,
    );
  });
});
