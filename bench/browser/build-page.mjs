// Builds the benchmark page into OUT_DIR: its HTML and script, and connect-web's client bundled by
// esbuild with the Greeter's descriptor inside. The wasm client is added by `cargo xtask bench`
// (wasm-bindgen's output for bench/wasm).
//
// Usage: node build-page.mjs OUT_DIR

import { copyFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { fileDescriptorSet } from "../../interop/hello.mjs";

const out = process.argv[2];
if (!out) {
  console.error("usage: node build-page.mjs OUT_DIR");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
for (const file of ["index.html", "bench.js", "floor.html"]) {
  copyFileSync(fileURLToPath(new URL(`page/${file}`, import.meta.url)), `${out}/${file}`);
}
await build({
  entryPoints: [fileURLToPath(new URL("connect-web-client.mjs", import.meta.url))],
  bundle: true,
  format: "esm",
  minify: true,
  outfile: `${out}/connect-web.js`,
  define: { HELLO_DESCRIPTOR: JSON.stringify(Buffer.from(fileDescriptorSet).toString("base64")) },
  logLevel: "warning",
});
