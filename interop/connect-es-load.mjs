// connect-es (@connectrpc/connect-node) as steady load on a server: SayHello every 10 ms, over
// gRPC-Web on HTTP/1.1 and over native gRPC on cleartext HTTP/2, each greeting checked, until
// SIGTERM. Then it writes what it saw to LOAD_REPORT as JSON: {"ok": n, "failed": n,
// "failures": [first ten]}. The cluster tests run it through the load balancer while replicas
// restart; no retry happens here, so every failure the balancer lets through is counted.
//
// GREETER_SERVER is the server's base URL (http://127.0.0.1:PORT).

import { writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Greeter } from "./hello.mjs";

const server = process.env.GREETER_SERVER;
const report = process.env.LOAD_REPORT;
if (!server || !report) {
  console.error("GREETER_SERVER and LOAD_REPORT must be set");
  process.exit(2);
}

const transports = {
  "gRPC-Web, HTTP/1.1": createGrpcWebTransport({ baseUrl: server, httpVersion: "1.1" }),
  "gRPC, HTTP/2": createGrpcTransport({ baseUrl: server, httpVersion: "2" }),
};
const seen = { ok: 0, failed: 0, failures: [] };
let stopping = false;

async function load(label, transport) {
  const client = createClient(Greeter, transport);
  for (let i = 1; !stopping; i++) {
    await sleep(10);
    const name = `connect-es ${label} ${i}`;
    try {
      const reply = await client.sayHello({ name }, { timeoutMs: 10000 });
      if (reply.message !== `Hello, ${name}`) {
        throw new Error(`${JSON.stringify(reply.message)} instead of "Hello, ${name}"`);
      }
      seen.ok += 1;
    } catch (error) {
      seen.failed += 1;
      if (seen.failures.length < 10) {
        seen.failures.push(`${label}: ${error}`);
      }
    }
  }
}

const loops = Object.entries(transports).map(([label, transport]) => load(label, transport));
process.on("SIGTERM", async () => {
  stopping = true;
  await Promise.all(loops);
  writeFileSync(report, JSON.stringify(seen));
  process.exit(0);
});
