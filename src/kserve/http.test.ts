import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, test } from "node:test";
import { sendText } from "./http.js";

/** Just what sendText uses of a ServerResponse, recording what happens to it. */
function fakeResponse(failOnEnd = false) {
  const seen: { status?: number; body?: unknown; destroyed?: Error } = {};
  const res = {
    writeHead(status: number) {
      seen.status = status;
    },
    end(body: unknown) {
      if (failOnEnd) throw new Error("end failed");
      seen.body = body;
    },
    destroy(error: Error) {
      seen.destroyed = error;
    },
  };
  return { res: res as unknown as ServerResponse, seen };
}

const afterReads = () => new Promise((resolve) => setImmediate(resolve));

describe("sendText", () => {
  test("answers wait for the check phase, leave in order, and one that throws neither stops the others nor later answers", async () => {
    const failing = fakeResponse(true);
    const second = fakeResponse();
    sendText(failing.res, 500, "one", "text/plain");
    sendText(second.res, 200, "two", "text/plain");
    assert.equal(second.seen.body, undefined, "nothing is written before the event loop's check phase");
    await afterReads();
    assert.equal(failing.seen.destroyed?.message, "end failed");
    assert.equal(second.seen.body, "two");
    const third = fakeResponse();
    sendText(third.res, 200, "three", undefined);
    await afterReads();
    assert.equal(third.seen.body, "three");
  });
});
