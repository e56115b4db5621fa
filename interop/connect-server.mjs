// A Greeter server that is not tonic: connect-es's (@connectrpc/connect-node) gRPC, gRPC-Web and
// Connect server on HTTP/1.1, for pointing our wasm client at. It keeps the contract's rules
// (proto/hello.proto, and the messages the Rust server gives) for SayHello and SayHelloStream; the
// request-streaming methods are left UNIMPLEMENTED, as a partial implementation is in connect-es.
// CORS is answered here, since the browser tests load from another origin.
//
// Listens on 127.0.0.1:INTEROP_PORT and prints one line when it does.

import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, cors } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Greeter } from "./hello.mjs";

const MAX_NAME_BYTES = 1024;

function validateName(name) {
  if (name.trim() === "") {
    throw new ConnectError("name must not be empty", Code.InvalidArgument);
  }
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > MAX_NAME_BYTES) {
    throw new ConnectError(`name must be at most ${MAX_NAME_BYTES} bytes, got ${bytes}`, Code.InvalidArgument);
  }
}

function checkRange(field, value, min, max) {
  if (value < min || value > max) {
    throw new ConnectError(`${field} must be between ${min} and ${max}, got ${value}`, Code.InvalidArgument);
  }
}

const greeter = {
  sayHello({ name }) {
    validateName(name);
    return { message: `Hello, ${name}` };
  },
  async *sayHelloStream({ name, count, intervalMs }, context) {
    validateName(name);
    checkRange("count", count, 1, 1000);
    checkRange("interval_ms", intervalMs, 0, 10000);
    for (let i = 1; i <= count; i++) {
      if (i > 1 && intervalMs > 0) {
        // Rejects when the call is cancelled or its deadline passes, which ends the stream.
        await sleep(intervalMs, undefined, { signal: context.signal });
      }
      yield { message: `Hello #${i}, ${name}` };
    }
  },
};

const connect = connectNodeAdapter({ routes: (router) => router.service(Greeter, greeter) });

const server = http.createServer((request, response) => {
  response.setHeader("Access-Control-Allow-Origin", "*");
  response.setHeader("Access-Control-Expose-Headers", cors.exposedHeaders.join(", "));
  if (request.method === "OPTIONS") {
    response.writeHead(204, {
      "Access-Control-Allow-Methods": cors.allowedMethods.join(", "),
      "Access-Control-Allow-Headers": cors.allowedHeaders.join(", "),
      "Access-Control-Max-Age": "600",
    });
    response.end();
    return;
  }
  connect(request, response);
});

const port = Number(process.env.INTEROP_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error("INTEROP_PORT must be a port number");
  process.exit(2);
}
server.listen(port, "127.0.0.1", () => {
  console.log(`connect-node Greeter listening on http://127.0.0.1:${port}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
