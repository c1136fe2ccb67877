// Shared helpers of the browser tests: launch Debian's chromium through playwright-core
// (never a downloaded browser), run named steps, and fail with a clear message.
//
// Every script takes the page's base URL as its first argument and exits non-zero on
// failure; the Rust side (periscope_tests::browser) installs what is needed and runs it.

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The value after `--<name>` on the command line, or null. */
export function option(name) {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 && at + 1 < process.argv.length ? process.argv[at + 1] : null;
}

/** The chromium binary: $PERISCOPE_CHROMIUM, else Debian's. */
export const CHROMIUM = process.env.PERISCOPE_CHROMIUM || "/usr/bin/chromium";

/** How long one expectation may take (PERISCOPE_TEST_PATIENCE_MS stretches it). */
export const PATIENCE = Number(process.env.PERISCOPE_TEST_PATIENCE_MS) || 30000;

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Opens a browser with a fresh profile in a temp directory and returns
 * `{ context, page, close }`; `close` removes the profile. Page errors and console
 * errors are collected in `page.problems`.
 */
export async function launch({ viewport = { width: 1280, height: 800 } } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "periscope-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport,
      timeout: PATIENCE,
    });
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw new Error(`cannot launch ${CHROMIUM} (run scripts/install-browser.sh): ${error.message}`);
  }
  context.setDefaultTimeout(PATIENCE);
  const page = context.pages()[0] || (await context.newPage());
  page.problems = [];
  page.on("pageerror", (error) => page.problems.push(`page error: ${error.message}`));
  page.on("console", (msg) => {
    // A refused request (the watch route's 404 for a kind it does not stream) is
    // logged by the browser itself; the scripts check what the page makes of it.
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) {
      page.problems.push(`console error: ${msg.text()}`);
    }
  });
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, close };
}

/**
 * Runs `body(page, step)` against a fresh browser, where `step(name, fn)` names each
 * stage so a failure says which one failed. Exits 0 on success, 1 with a message (and
 * `describe(page)`'s view of the page) otherwise.
 */
export async function run(body, { describe = async () => "" } = {}) {
  const url = process.argv[2];
  if (!url) {
    console.error(`usage: node ${process.argv[1]} <base url>`);
    process.exit(2);
  }
  let browser;
  let current = "launch";
  const step = async (name, fn) => {
    current = name;
    const began = Date.now();
    const value = await fn();
    console.log(`ok: ${name} (${Date.now() - began} ms)`);
    return value;
  };
  try {
    browser = await step("launch chromium", () => launch());
    await body(browser.page, step, url.replace(/\/$/, ""));
    current = "no page errors";
    if (browser.page.problems.length) throw new Error("the page reported problems (below)");
    await browser.close();
    console.log("browser test passed");
    process.exit(0);
  } catch (error) {
    console.error(`FAILED at step "${current}": ${error.message}`);
    if (browser) {
      const state = await describe(browser.page).catch((e) => `(cannot describe the page: ${e.message})`);
      if (state) console.error(state);
      for (const problem of browser.page.problems) console.error(problem);
      await browser.close();
    }
    process.exit(1);
  }
}
