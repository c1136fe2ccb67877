// The live page's sign-in against a host with JWT auth:
//   node tests/browser/sign-in.mjs <base url> --token <jwt>
// Without a token the stream answers 401 and the page shows the token form; after
// signing in (sessionStorage, the Authorization header, the periscope_token cookie for
// EventSource) the pods stream live.

import { option, run } from "./lib.mjs";

const token = option("token");
if (!token) {
  console.error("usage: node tests/browser/sign-in.mjs <base url> --token <jwt>");
  process.exit(2);
}

async function describe(page) {
  return page.evaluate(() => {
    const badge = document.getElementById("status");
    const message = document.getElementById("message");
    return (
      `page: ${location.href}\n` +
      `badge: ${badge?.dataset.state} (${badge?.textContent})\n` +
      `message: ${message?.hidden ? "(none)" : message?.textContent}\n` +
      `sign-in form shown: ${!document.getElementById("signin")?.hidden}\n` +
      `rows: ${document.querySelectorAll("#table tbody tr").length}\n` +
      `cookie set: ${document.cookie.includes("periscope_token=")}`
    );
  });
}

run(
  async (page, step, base) => {
    await step("open /", () => page.goto(`${base}/`));

    await step("a 401 from the stream shows the token form", async () => {
      await page.waitForSelector('#status[data-state="signin"]');
      await page.waitForSelector("#signin:not([hidden])");
      const focused = await page.evaluate(() => document.activeElement?.id);
      if (focused !== "token") throw new Error(`the token field is not focused (focus: ${focused})`);
    });

    await step("a wrong token keeps the form", async () => {
      await page.fill("#token", "not-a-jwt");
      await page.press("#token", "Enter");
      await page.waitForSelector('#status[data-state="signin"]');
      await page.waitForSelector("#signin:not([hidden])");
    });

    await step("signing in streams the pods", async () => {
      await page.fill("#token", token);
      await page.press("#token", "Enter");
      await page.waitForSelector('#status[data-state="live"]');
      await page.waitForSelector('#table[data-kind="pods"] tbody tr');
      if (await page.isVisible("#signin")) throw new Error("the form is still shown");
    });

    await step("the token survives a reload of the tab", async () => {
      await page.reload();
      await page.waitForSelector('#status[data-state="live"]');
      await page.waitForSelector('#table[data-kind="pods"] tbody tr');
    });
  },
  { describe },
);
