// Time from navigation to the first greeting on the page, in headless Chromium with a cold cache
// (a new browser context each run). The page records its own times (performance.now(), from
// navigation start): when the app has mounted its name field, when the button is clicked, and
// when the greeting shows. The figure is mount + (greeting − click): what a user who clicks the
// moment the page is ready sees, without the automation's own delay between the two.
//
// With FLOOR_URL, a page of plain HTML with the same field (no script at all) is loaded the same
// way: the time its field appears is the floor that this browser and machine put under any page.
//
// Usage: node first-greeting.mjs URL RUNS [FLOOR_URL]   (CHROMIUM: the browser; default /usr/bin/chromium)
// Prints one JSON line: {"runs": [{"ready", "roundTrip", "firstGreeting", and the parts: "html",
// "code" (script and wasm received), "clickToRequest", "request", "responseToShown"}, ...],
// "floor": [ms, ...]}

import { chromium } from "playwright-core";

const [url, runsArg, floorUrl] = process.argv.slice(2);
const runs = Number(runsArg ?? 10);
if (!url || !Number.isInteger(runs) || runs < 1) {
  console.error("usage: node first-greeting.mjs URL RUNS");
  process.exit(2);
}

// Runs in the page before its own scripts.
function recordTimes() {
  window.__times = {};
  const observer = new MutationObserver(() => {
    const times = window.__times;
    if (times.ready === undefined && document.querySelector("#name")) {
      times.ready = performance.now();
    }
    const reply = document.querySelector("#reply");
    if (times.shown === undefined && reply && reply.textContent.startsWith("Hello, ")) {
      times.shown = performance.now();
    }
  });
  observer.observe(document, { childList: true, subtree: true, characterData: true });
  document.addEventListener("click", () => (window.__times.clicked ??= performance.now()), true);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
/** Opens `address` in a new context (a cold cache), with the page's times recorded, and returns
 * what `measure` reads from the page. */
async function coldLoad(address, measure) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.addInitScript(recordTimes);
    await page.goto(address);
    return await measure(page);
  } finally {
    await context.close();
  }
}

try {
  const results = [];
  for (let run = 0; run < runs; run++) {
    const times = await coldLoad(url, async (page) => {
      await page.fill("#name", "Bench");
      await page.click("#say-hello");
      await page.waitForFunction(() => window.__times.shown !== undefined, null, { timeout: 10_000 });
      const text = await page.textContent("#reply");
      if (text !== "Hello, Bench") {
        throw new Error(`the page shows ${JSON.stringify(text)}`);
      }
      return page.evaluate(() => {
        // Where the time went, from the browser's own resource timings.
        const resources = performance.getEntriesByType("resource");
        const ended = (pattern) =>
          Math.max(...resources.filter((entry) => pattern.test(entry.name)).map((entry) => entry.responseEnd));
        const call = resources.find((entry) => entry.name.endsWith("/SayHello"));
        return {
          ...window.__times,
          html: performance.getEntriesByType("navigation")[0].responseEnd,
          code: ended(/\.(js|wasm)$/),
          requestSent: call.startTime,
          responseEnd: call.responseEnd,
        };
      });
    });
    results.push({
      ready: times.ready,
      roundTrip: times.shown - times.clicked,
      firstGreeting: times.ready + (times.shown - times.clicked),
      html: times.html,
      code: times.code,
      clickToRequest: times.requestSent - times.clicked,
      request: times.responseEnd - times.requestSent,
      responseToShown: times.shown - times.responseEnd,
    });
  }
  const floor = [];
  for (let run = 0; floorUrl && run < runs; run++) {
    floor.push(
      await coldLoad(floorUrl, async (page) => {
        await page.waitForFunction(() => window.__times.ready !== undefined, null, { timeout: 10_000 });
        return page.evaluate(() => window.__times.ready);
      }),
    );
  }
  console.log(JSON.stringify({ runs: results, floor }));
} finally {
  await browser.close();
}
