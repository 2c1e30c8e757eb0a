/**
 * /docs in a real browser: Debian's Chromium (driven by playwright-core, which
 * downloads no browser) loads the Swagger UI page from a real server in this
 * process, runs "Try it out" on the digits model's predict route with a real
 * instance and reads the predicted class from the page.
 *
 * Needs /usr/bin/chromium (scripts/install-chromium.sh): skipped without it
 * locally, a failure in CI. Set DOCS_SCREENSHOT=/path.png to keep a screenshot.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import type { RunningServer } from "../../src/server/serve.js";
import { startInProcess } from "../helpers/server.js";

const CHROMIUM = "/usr/bin/chromium";
const DIGITS = fileURLToPath(new URL("../../examples/digits", import.meta.url));
const SAMPLE = JSON.parse(readFileSync(new URL("../../examples/digits/sample.json", import.meta.url), "utf8")) as number[];
/** The class examples/digits/sample.json shows (its README and model tests agree). */
const SAMPLE_CLASS = 1;

const missing = !existsSync(CHROMIUM);
const skip = missing && !process.env.CI ? `${CHROMIUM} is missing: run "bash scripts/install-chromium.sh" as root to run this test` : false;

describe("/docs (Swagger UI) in Chromium", { skip, timeout: 30_000 }, () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let origin: string;
  const external: string[] = [];
  const pageErrors: string[] = [];
  const scratch = mkdtempSync(join(tmpdir(), "chassis-docs-"));

  before(async () => {
    // In CI a missing browser is a broken setup, not a reason to skip.
    if (missing) throw new Error(`${CHROMIUM} is missing: CI must run scripts/install-chromium.sh first`);
    [server, browser] = await Promise.all([
      startInProcess(DIGITS, { interface: "kserve", "http-port": "0" }),
      chromium.launch({
        executablePath: CHROMIUM,
        timeout: 15_000,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      }),
    ]);
    assert.ok(server.httpPort > 0, "the KServe REST port is open");
    origin = `http://127.0.0.1:${server.httpPort}`;
    page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    page.setDefaultTimeout(10_000);
    // Everything must come from the server itself: the machine (and many clusters) have no internet.
    await page.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith(`${origin}/`) || url.startsWith("data:")) return route.continue();
      external.push(url);
      return route.abort();
    });
    page.on("pageerror", (error) => pageErrors.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") pageErrors.push(message.text());
    });
  });

  after(async () => {
    await browser?.close();
    await server?.shutdown("test done");
    rmSync(scratch, { recursive: true, force: true });
  });

  test("the page lists the model's routes under its name, with no spec errors", async () => {
    await page.goto(`${origin}/docs`);
    const predict = page.locator("#operations-v1-v1Predict");
    await predict.waitFor();
    assert.equal((await predict.locator(".opblock-summary-path").textContent())?.trim(), `/v1/models/${server.modelName}:predict`);
    const paths = await page.locator(".opblock-summary-path").allTextContents();
    assert.ok(paths.length >= 13, `all REST routes listed: ${paths.join(", ")}`);
    assert.ok(
      paths.every((path) => !path.includes("{")),
      "paths carry the model name",
    );
    assert.equal(await page.locator(".errors-wrapper").count(), 0, "Swagger UI reports no errors in the document");
  });

  test("Try it out: predict with a real digits instance answers 200 with class 1", async (t) => {
    const op = page.locator("#operations-v1-v1Predict");
    await op.locator(".opblock-summary-control").click();
    // tryItOutEnabled opens the editor at once (the button then reads "Cancel"); click it when it does not.
    const tryOut = op.locator("button.try-out__btn");
    await tryOut.waitFor();
    if ((await tryOut.textContent())?.trim() === "Try it out") await tryOut.click();
    const body = op.locator("textarea.body-param__text");
    assert.match(await body.inputValue(), /"instances"/, "the example fills the editor");
    await body.fill(JSON.stringify({ instances: [SAMPLE] }));
    await op.locator("button.execute").click();

    const live = op.locator(".live-responses-table");
    const status = live.locator("tbody .response-col_status").first();
    await status.waitFor();
    assert.equal((await status.textContent())?.trim(), "200");
    const text = (await live.locator(".response-col_description pre").first().textContent()) ?? "";
    const answer = JSON.parse(text) as { predictions: string[] };
    assert.equal(answer.predictions.length, 1);
    const prediction = JSON.parse(answer.predictions[0] as string) as { classPredictions: Array<{ class: number; score: number }> };
    assert.equal(prediction.classPredictions[0]?.class, SAMPLE_CLASS);

    const shot = process.env.DOCS_SCREENSHOT || join(scratch, "predict.png");
    const png = await op.screenshot({ path: shot });
    assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], "a PNG");
    t.diagnostic(`screenshot: ${shot}`);
  });

  test("v2 infer runs its own example as shown", async () => {
    const op = page.locator("#operations-v2-v2Infer");
    await op.locator(".opblock-summary-control").click();
    const tryOut = op.locator("button.try-out__btn");
    await tryOut.waitFor();
    if ((await tryOut.textContent())?.trim() === "Try it out") await tryOut.click();
    await op.locator("button.execute").click();
    const live = op.locator(".live-responses-table");
    const status = live.locator("tbody .response-col_status").first();
    await status.waitFor();
    const text = (await live.locator(".response-col_description pre").first().textContent()) ?? "";
    assert.equal((await status.textContent())?.trim(), "200", text);
    const answer = JSON.parse(text) as { model_name: string; outputs: Array<{ name: string; data: string[] }> };
    assert.equal(answer.model_name, server.modelName);
    assert.match(answer.outputs[0]?.data[0] ?? "", /classPredictions/);
  });

  test("nothing was fetched from elsewhere and the page logged no errors", () => {
    assert.deepEqual(external, []);
    assert.deepEqual(pageErrors, []);
  });
});
