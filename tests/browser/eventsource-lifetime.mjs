// An EventSource on a quiet kind under a short stream lifetime cap, in a real browser:
// every time the server ends the stream, the browser reconnects with Last-Event-ID, and
// the reconnect must carry a frame that resets Periscope's SPA error budget (a
// snapshot or a delta, spec 3.4). Usage: node eventsource-lifetime.mjs <base> --path
// /api/clusters/test/nodes/watch --seconds 12

import { option, run } from "./lib.mjs";

const path = option("path") || "/api/clusters/test/nodes/watch";
const seconds = Number(option("seconds") || 12);

await run(async (page, step, base) => {
  await step("open the origin", () => page.goto(`${base}/healthz`));
  const log = await step(`record ${path} for ${seconds} s`, () =>
    page.evaluate(
      ({ path, seconds }) =>
        new Promise((resolve) => {
          const log = [];
          const source = new EventSource(path);
          const note = (kind) => log.push({ kind, at: Date.now() });
          source.onopen = () => note("open");
          // A server `event: error` frame and a failed connection share the type
          // "error"; only the frame is a MessageEvent with data.
          source.addEventListener("error", (e) => note(e instanceof MessageEvent ? "error-frame" : "error"));
          for (const kind of ["snapshot", "added", "modified", "deleted", "relist"]) {
            source.addEventListener(kind, () => note(kind));
          }
          setTimeout(() => {
            source.close();
            resolve(log);
          }, seconds * 1000);
        }),
      { path, seconds },
    ),
  );
  await step("every reconnect is followed by a frame that resets the budget", async () => {
    const opens = log.filter((e) => e.kind === "open").length;
    if (opens < 3) throw new Error(`only ${opens} connections in ${seconds} s: ${JSON.stringify(log)}`);
    // Between two consecutive opens there must be a snapshot or a delta.
    let sinceOpen = null;
    for (const event of log) {
      if (event.kind === "open") {
        if (sinceOpen === false) throw new Error(`a connection carried no frame: ${JSON.stringify(log)}`);
        sinceOpen = false;
      } else if (["snapshot", "added", "modified", "deleted"].includes(event.kind)) {
        sinceOpen = true;
      } else if (event.kind === "error-frame") {
        throw new Error(`the server sent an error frame: ${JSON.stringify(log)}`);
      }
    }
    // The SPA's rule: +1 per failed connection (at most once a second), reset by a
    // snapshot or delta, polling at 4.
    let budget = 0;
    let lastBump = -Infinity;
    let worst = 0;
    for (const event of log) {
      if (event.kind === "error" && event.at - lastBump >= 1000) {
        budget += 1;
        lastBump = event.at;
      }
      if (["snapshot", "added", "modified", "deleted"].includes(event.kind)) budget = 0;
      worst = Math.max(worst, budget);
    }
    if (worst >= 4) throw new Error(`the SPA's budget reached ${worst}: ${JSON.stringify(log)}`);
    console.log(`${opens} connections, budget never above ${worst}`);
  });
});
