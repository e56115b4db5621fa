// Opens the benchmark page (build-page.mjs) in headless Chromium and runs its side-by-side timing of
// the page's wasm client and connect-web's client.
//
// Usage: node page-clients.mjs URL   (CHROMIUM: the browser binary; default /usr/bin/chromium)
// Prints one JSON line: {"wasm": {"unaryMs", "streamPerSecond"}, "connect": {...}}

import { chromium } from "playwright-core";

const url = process.argv[2];
if (!url) {
  console.error("usage: node page-clients.mjs URL");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  page.on("pageerror", (error) => console.error(`page error: ${error}`));
  await page.goto(url);
  await page.waitForFunction(() => document.querySelector("#status")?.textContent === "ready", null, {
    timeout: 30_000,
  });
  const result = await page.evaluate(() =>
    window.runBench({ rounds: 20, callsPerRound: 100, streamCount: 1000 }),
  );
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
