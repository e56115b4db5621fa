// connect-es (@connectrpc/connect-node) against our server, over the transport INTEROP_TRANSPORT
// names: grpc-web-h1 (gRPC-Web over HTTP/1.1), grpc-web-h2c (gRPC-Web over cleartext HTTP/2) or
// grpc-h2c (native gRPC). The service descriptor comes from proto/hello.proto (hello.mjs).
//
// GREETER_SERVER is the server's base URL (http://127.0.0.1:PORT).

import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Greeter } from "./hello.mjs";

const server = process.env.GREETER_SERVER;
const transportName = process.env.INTEROP_TRANSPORT;
assert.ok(server, "GREETER_SERVER must name the server (cargo xtask interop sets it)");

const transports = {
  "grpc-web-h1": () => createGrpcWebTransport({ baseUrl: server, httpVersion: "1.1" }),
  "grpc-web-h2c": () => createGrpcWebTransport({ baseUrl: server, httpVersion: "2" }),
  "grpc-h2c": () => createGrpcTransport({ baseUrl: server, httpVersion: "2" }),
};
assert.ok(transports[transportName], `INTEROP_TRANSPORT must be one of ${Object.keys(transports)}`);
const client = createClient(Greeter, transports[transportName]());
const requestsStream = transportName !== "grpc-web-h1";

async function* names(...list) {
  for (const name of list) {
    yield { name };
  }
}

function rejectsWith(code, message) {
  return (error) => {
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(Code[error.code], Code[code]);
    if (message !== undefined) {
      assert.equal(error.rawMessage, message);
    }
    return true;
  };
}

test("unary: SayHello answers Hello, <name>", async () => {
  const reply = await client.sayHello({ name: "Zoë 🦀" });
  assert.equal(reply.message, "Hello, Zoë 🦀");
});

test("unary: an empty name is INVALID_ARGUMENT with its message", async () => {
  await assert.rejects(
    client.sayHello({ name: "" }),
    rejectsWith(Code.InvalidArgument, "name must not be empty"),
  );
});

test("server streaming: every greeting, in order", async () => {
  const received = [];
  for await (const reply of client.sayHelloStream({ name: "Ada", count: 5, intervalMs: 10 })) {
    received.push(reply.message);
  }
  assert.deepEqual(received, [1, 2, 3, 4, 5].map((i) => `Hello #${i}, Ada`));
});

test("server streaming: a bad count is INVALID_ARGUMENT", async () => {
  const consume = async () => {
    for await (const _ of client.sayHelloStream({ name: "Ada", count: 0 })) {
      assert.fail("no greeting expected");
    }
  };
  await assert.rejects(consume, rejectsWith(Code.InvalidArgument, "count must be between 1 and 1000, got 0"));
});

test("server streaming: a short deadline ends a slow stream with DEADLINE_EXCEEDED", async () => {
  const received = [];
  const consume = async () => {
    const stream = client.sayHelloStream({ name: "Slow", count: 10, intervalMs: 200 }, { timeoutMs: 500 });
    for await (const reply of stream) {
      received.push(reply.message);
    }
  };
  await assert.rejects(consume, rejectsWith(Code.DeadlineExceeded));
  assert.ok(received.length <= 3, String(received));
});

// HTTP/1.1 cannot carry a request body and a response at once: request streams need HTTP/2.
if (requestsStream) {
  test("client streaming: every name greeted at the end", async () => {
    const summary = await client.sayHelloToAll(names("Ann", "Bo", "Cy"));
    assert.deepEqual(summary.messages, ["Hello, Ann", "Hello, Bo", "Hello, Cy"]);
    assert.equal(summary.count, 3);
  });

  test("bidirectional streaming: each name answered", async () => {
    const received = [];
    for await (const reply of client.chat(names("Ann", "Bo"))) {
      received.push(reply.message);
    }
    assert.deepEqual(received, ["Hello, Ann", "Hello, Bo"]);
  });
}
