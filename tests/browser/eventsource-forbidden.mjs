// A user whom RBAC denies, in a real browser, through the rules Periscope's SPA applies
// to a watch (its useResourceStream): an EventSource on the watch route; every `error`
// (a server `event: error` frame or a failed connection) counts once a second at most,
// a snapshot or a delta resets the count, and at 4 the page closes the stream and polls
// the list route, where 403 is its "forbidden" state. An EventSource that the browser
// gives up on (readyState CLOSED: a non-200 answer) leaves the page "reconnecting".
// Usage: node eventsource-forbidden.mjs <base> --token <jwt> --path /api/clusters/test/pods/watch
import { option, run } from "./lib.mjs";

const token = option("token");
const path = option("path") || "/api/clusters/test/pods/watch";
const seconds = Number(option("seconds") || 25);

await run(async (page, step, base) => {
  await step("open the origin with the token in the cookie", async () => {
    await page.goto(`${base}/healthz`);
    await page.context().addCookies([{ name: "periscope_token", value: token, url: base }]);
  });
  const outcome = await step("follow the SPA's rules until they settle", () =>
    page.evaluate(
      ({ path, seconds }) =>
        new Promise((resolve) => {
          const log = [];
          let budget = 0;
          let lastBump = -Infinity;
          const source = new EventSource(path, { withCredentials: true });
          const finish = (state, extra = {}) => {
            source.close();
            clearInterval(watcher);
            resolve({ state, log, ...extra });
          };
          const reset = (kind) => () => {
            log.push(kind);
            budget = 0;
            finish("live");
          };
          for (const kind of ["snapshot", "added", "modified", "deleted"]) source.addEventListener(kind, reset(kind));
          source.addEventListener("error", async (e) => {
            const frame = e instanceof MessageEvent;
            log.push(frame ? `error-frame ${e.data}` : "error");
            if (Date.now() - lastBump < 1000) return;
            lastBump = Date.now();
            budget += 1;
            if (budget < 4) return;
            source.close();
            const poll = await fetch(path.replace(/\/watch$/, ""), { credentials: "include" });
            const body = await poll.json().catch(() => null);
            finish(poll.status === 403 ? "forbidden" : `polling (${poll.status})`, { poll: poll.status, body });
          });
          // The browser gave up without another try: the SPA would show
          // "reconnecting" forever.
          const watcher = setInterval(() => {
            if (source.readyState === EventSource.CLOSED && budget < 4) finish("reconnecting");
          }, 100);
          setTimeout(() => finish(`unsettled after ${seconds} s`), seconds * 1000);
        }),
      { path, seconds },
    ),
  );
  await step("the page ends in its forbidden state, never reconnecting", async () => {
    if (outcome.state !== "forbidden") throw new Error(`state ${outcome.state}: ${JSON.stringify(outcome)}`);
    const frames = outcome.log.filter((entry) => entry.startsWith("error-frame "));
    if (frames.length < 2) throw new Error(`the server's error frames were not seen: ${JSON.stringify(outcome.log)}`);
    const message = JSON.parse(frames[0].slice("error-frame ".length)).message;
    if (typeof message !== "string" || !message) throw new Error(`an error frame without a message: ${frames[0]}`);
    if (outcome.body?.error !== "forbidden") throw new Error(`the poll's body: ${JSON.stringify(outcome.body)}`);
    console.log(`forbidden after ${outcome.log.length} events; first message: ${message}`);
  });
});
