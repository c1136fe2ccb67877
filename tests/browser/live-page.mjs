// The live page at `/` against a host serving the demo scenario:
//   node tests/browser/live-page.mjs <base url> [--polling-kind <kind>] [--screenshot <png>]
// It sees the demo's pods stream in, a row change from the churn, deployments after a
// kind switch and the namespace filter at work. With --polling-kind (a kind the host's
// watch.streams leave out) it also sees the page fall back to polling for that kind.
// With --screenshot it saves the pods table, a changed row highlighted, as a PNG:
//   node tests/browser/live-page.mjs http://127.0.0.1:8080 --screenshot docs/live-page.png

import { option, run } from "./lib.mjs";

const screenshot = option("screenshot");
const pollingKind = option("polling-kind");

async function describe(page) {
  return page.evaluate(() => {
    const badge = document.getElementById("status");
    const message = document.getElementById("message");
    const rows = document.querySelectorAll("#table tbody tr").length;
    return (
      `page: ${location.href}\n` +
      `badge: ${badge?.dataset.state} (${badge?.textContent})\n` +
      `message: ${message?.hidden ? "(none)" : message?.textContent}\n` +
      `table: kind=${document.getElementById("table")?.dataset.kind} rows=${rows}\n` +
      `caption: ${document.getElementById("summary")?.textContent}`
    );
  });
}

async function rows(page, kind) {
  await page.waitForSelector(`#table[data-kind="${kind}"] tbody tr`);
  return page.locator("#table tbody tr").count();
}

async function badge(page, state) {
  await page.waitForSelector(`#status[data-state="${state}"]`);
}

run(
  async (page, step, base) => {
    await step("open /", () => page.goto(`${base}/`));

    await step("the demo's pods fill the table from the snapshot", async () => {
      await badge(page, "live");
      const n = await rows(page, "pods");
      if (await page.isVisible("#signin")) throw new Error("the sign-in form shows with auth off");
      if (n < 5) throw new Error(`expected the demo's pods, saw ${n} rows`);
      const headers = await page.locator("#table thead th").allTextContents();
      for (const want of ["namespace", "name", "phase"]) {
        if (!headers.includes(want)) throw new Error(`no ${want} column in ${JSON.stringify(headers)}`);
      }
    });

    await step("a row changes from the demo's churn", async () => {
      const cell = page.locator("#table tbody tr.changed td.cell-changed").first();
      await cell.waitFor();
      const row = await cell.locator("xpath=..").getAttribute("data-id");
      console.log(`   changed: ${row} (${await cell.getAttribute("data-col")})`);
    });

    if (screenshot) {
      await step(`screenshot ${screenshot}`, () => page.screenshot({ path: screenshot }));
    }

    await step("switching kind to deployments shows their rows live", async () => {
      await page.selectOption("#kind", "deployments");
      await page.waitForFunction(() => location.hash.includes("/deployments"));
      await rows(page, "deployments");
      await badge(page, "live");
    });

    if (pollingKind) {
      await step(`${pollingKind}, which is not streamed, falls back to polling`, async () => {
        const cluster = await page.inputValue("#cluster");
        await page.evaluate(([c, k]) => (location.hash = `#/${c}/${k}`), [cluster, pollingKind]);
        await badge(page, "polling");
        await rows(page, pollingKind);
      });
    }

    await step("the namespace filter narrows the rows", async () => {
      await page.selectOption("#kind", "pods");
      await badge(page, "live");
      await rows(page, "pods");
      await page.fill("#namespace", "kube-system");
      await page.press("#namespace", "Enter");
      await page.waitForFunction(() => {
        const cells = [...document.querySelectorAll('#table tbody td[data-col="namespace"]')];
        return cells.length > 0 && cells.every((td) => td.textContent === "kube-system");
      });
      await badge(page, "live");
    });
  },
  { describe },
);
