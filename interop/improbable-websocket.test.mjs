// improbable-eng's grpc-web client, with its own WebsocketTransport, against our server: client
// streaming and bidirectional streaming over the `grpc-websockets` protocol. The messages come
// from proto/hello.proto through protobufjs, so nothing here encodes protobuf by hand.
//
// GREETER_SERVER is the server's base URL (http://127.0.0.1:PORT).

import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import improbable from "@improbable-eng/grpc-web";
import { messageClass } from "./hello.mjs";

const { grpc } = improbable;
// Node 20 has no global WebSocket; improbable's transport uses the global one.
globalThis.WebSocket = WebSocket;

const server = process.env.GREETER_SERVER;
assert.ok(server, "GREETER_SERVER must name the server (cargo xtask test sets it)");

const HelloRequest = messageClass("hello.HelloRequest");
const HelloReply = messageClass("hello.HelloReply");
const HelloSummary = messageClass("hello.HelloSummary");
const Greeter = { serviceName: "hello.Greeter" };
const method = (methodName, requestStream, responseStream, responseType) => ({
  methodName,
  service: Greeter,
  requestStream,
  responseStream,
  requestType: HelloRequest,
  responseType,
});
const SayHelloToAll = method("SayHelloToAll", true, false, HelloSummary);
const Chat = method("Chat", true, true, HelloReply);

/** Starts a call over improbable's WebsocketTransport; resolves with what it received. */
function call(descriptor, drive) {
  return new Promise((resolve) => {
    const received = [];
    const client = grpc.client(descriptor, {
      host: server,
      transport: grpc.WebsocketTransport(),
    });
    client.onMessage((message) => {
      received.push(message.toObject());
      drive.onMessage?.(client, message.toObject());
    });
    client.onEnd((status, statusMessage) => resolve({ status, statusMessage, received }));
    client.start();
    drive.start(client);
  });
}

test("client streaming over grpc-websockets", async () => {
  const names = ["Ann", "Ben", "Cy"];
  const { status, statusMessage, received } = await call(SayHelloToAll, {
    start(client) {
      for (const name of names) client.send(new HelloRequest({ name }));
      client.finishSend();
    },
  });
  assert.equal(status, grpc.Code.OK, statusMessage);
  assert.deepEqual(received, [
    { messages: names.map((n) => `Hello, ${n}`), count: 3 },
  ]);
});

test("client streaming of 1000 names", async () => {
  const names = Array.from({ length: 1000 }, (_, i) => `n${i + 1}`);
  const { status, received } = await call(SayHelloToAll, {
    start(client) {
      for (const name of names) client.send(new HelloRequest({ name }));
      client.finishSend();
    },
  });
  assert.equal(status, grpc.Code.OK);
  assert.equal(received[0].count, 1000);
  assert.deepEqual(received[0].messages, names.map((n) => `Hello, ${n}`));
});

test("bidirectional streaming: each reply before the next name", async () => {
  const names = ["x", "y", "z"];
  let next = 0;
  const { status, received } = await call(Chat, {
    start(client) {
      client.send(new HelloRequest({ name: names[next++] }));
    },
    onMessage(client) {
      if (next < names.length) client.send(new HelloRequest({ name: names[next++] }));
      else client.finishSend();
    },
  });
  assert.equal(status, grpc.Code.OK);
  assert.deepEqual(received, names.map((n) => ({ message: `Hello, ${n}` })));
});

test("a bad name ends the call with INVALID_ARGUMENT", async () => {
  const { status, statusMessage, received } = await call(Chat, {
    start(client) {
      client.send(new HelloRequest({ name: "ok" }));
      client.send(new HelloRequest({ name: "" }));
      client.finishSend();
    },
  });
  assert.deepEqual(received, [{ message: "Hello, ok" }]);
  assert.equal(status, grpc.Code.InvalidArgument);
  assert.equal(statusMessage, "name #2: name must not be empty");
});
