import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatBytes, parseDuration, parseSize } from "./units.js";

const K = 1024;
const M = 1024 ** 2;
const G = 1024 ** 3;

describe("parseSize", () => {
  test("K, M, G and T are binary multiples", () => {
    assert.equal(parseSize("512K"), 512 * K);
    assert.equal(parseSize("1M"), M);
    assert.equal(parseSize("1M"), 1_048_576);
    assert.equal(parseSize("2G"), 2 * G);
    assert.equal(parseSize("1T"), 1024 ** 4);
  });

  test("fractions are floored to whole bytes", () => {
    assert.equal(parseSize("1.5G"), 1_610_612_736);
    assert.equal(parseSize("0.5K"), 512);
    assert.equal(parseSize("1.5"), 1);
    assert.equal(parseSize("1.0001K"), 1024);
  });

  test("a bare number is bytes", () => {
    assert.equal(parseSize("100"), 100);
    assert.equal(parseSize("0"), 0);
  });

  test("iB and B suffixes read the same as the bare letter", () => {
    assert.equal(parseSize("2MiB"), 2 * M);
    assert.equal(parseSize("10KB"), 10 * K);
    assert.equal(parseSize("3GiB"), 3 * G);
    assert.equal(parseSize("7B"), 7);
  });

  test("units are case-insensitive", () => {
    assert.equal(parseSize("512k"), 512 * K);
    assert.equal(parseSize("1m"), M);
    assert.equal(parseSize("2mib"), 2 * M);
    assert.equal(parseSize("10kb"), 10 * K);
    assert.equal(parseSize("1.5g"), 1_610_612_736);
  });

  test("surrounding spaces and a space before the unit are accepted", () => {
    assert.equal(parseSize("  1M  "), M);
    assert.equal(parseSize("1 M"), M);
    assert.equal(parseSize("\t512 KiB\n"), 512 * K);
  });

  for (const bad of ["", " ", "M", "KB", "-1M", "1Q", "1.2.3", "1,5M", ".5M", "1.M", "1MM", "M1", "1e3", "one", "1 M B", "+1M"]) {
    test(`${JSON.stringify(bad)} is not a size`, () => {
      assert.equal(parseSize(bad), undefined);
    });
  }

  test("a lone i (no unit letter) is not a size", () => {
    assert.equal(parseSize("1i"), undefined);
    assert.equal(parseSize("5iB"), undefined);
  });
});

describe("parseDuration", () => {
  test("ms, s, m and h", () => {
    assert.equal(parseDuration("60s"), 60_000);
    assert.equal(parseDuration("500ms"), 500);
    assert.equal(parseDuration("5m"), 300_000);
    assert.equal(parseDuration("1h"), 3_600_000);
  });

  test("a bare number is seconds", () => {
    assert.equal(parseDuration("30"), 30_000);
    assert.equal(parseDuration("0.5"), 500);
  });

  test("fractions, case and spaces", () => {
    assert.equal(parseDuration("1.5s"), 1500);
    assert.equal(parseDuration("0.25h"), 900_000);
    assert.equal(parseDuration("60S"), 60_000);
    assert.equal(parseDuration("500MS"), 500);
    assert.equal(parseDuration(" 2 m "), 120_000);
    assert.equal(parseDuration("0s"), 0);
  });

  for (const bad of ["", " ", "s", "ms", "-1s", "10x", "1d", "1.2.3s", "5 minutes", "1sec", "1e3ms", "s10", "1m30s"]) {
    test(`${JSON.stringify(bad)} is not a duration`, () => {
      assert.equal(parseDuration(bad), undefined);
    });
  }
});

describe("formatBytes", () => {
  test("picks the largest unit that fits, with up to two decimals", () => {
    assert.equal(formatBytes(M), "1M");
    assert.equal(formatBytes(1024), "1K");
    assert.equal(formatBytes(1536), "1.5K");
    assert.equal(formatBytes(512 * K), "512K");
    assert.equal(formatBytes(1_610_612_736), "1.5G");
    assert.equal(formatBytes(2 * G), "2G");
    assert.equal(formatBytes(1000), "1000 bytes");
    assert.equal(formatBytes(0), "0 bytes");
    assert.equal(formatBytes(1023), "1023 bytes");
    assert.equal(formatBytes(K + 10), "1.01K");
  });

  test("round-trips with parseSize for the sizes authors write", () => {
    for (const size of ["512K", "1M", "1.5G", "2M", "10K"]) {
      assert.equal(formatBytes(parseSize(size) as number), size);
    }
  });

  test("just under a unit boundary moves up to that unit", () => {
    assert.equal(formatBytes(M - 1), "1M");
    assert.equal(formatBytes(G - 1), "1G");
  });
});
