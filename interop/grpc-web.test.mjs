// The official gRPC-Web JavaScript runtime (npm grpc-web) against our server, in the wire format
// INTEROP_FORMAT names: binary (application/grpc-web+proto) or text (application/grpc-web-text,
// base64, the runtime's default). Node has no XMLHttpRequest, which the runtime needs: xhr2 is one.
// No protoc-gen-grpc-web plugin installs here, so the method descriptors are written out below;
// the messages come from proto/hello.proto (hello.mjs).
//
// GREETER_SERVER is the server's base URL (http://127.0.0.1:PORT).

import { test } from "node:test";
import assert from "node:assert/strict";
import XMLHttpRequest from "xhr2";
import grpcWeb from "grpc-web";
import { messageClass } from "./hello.mjs";

globalThis.XMLHttpRequest = XMLHttpRequest;
const { GrpcWebClientBase, MethodDescriptor, MethodType, StatusCode } = grpcWeb;

const server = process.env.GREETER_SERVER;
const format = process.env.INTEROP_FORMAT;
assert.ok(server, "GREETER_SERVER must name the server (cargo xtask interop sets it)");
assert.ok(["binary", "text"].includes(format), "INTEROP_FORMAT must be binary or text");

const HelloRequest = messageClass("hello.HelloRequest");
const HelloStreamRequest = messageClass("hello.HelloStreamRequest");
const HelloReply = messageClass("hello.HelloReply");

const method = (name, type, requestType) =>
  new MethodDescriptor(
    `/hello.Greeter/${name}`,
    type,
    requestType,
    HelloReply,
    (request) => request.serializeBinary(),
    (bytes) => HelloReply.deserializeBinary(bytes),
  );
const SayHello = method("SayHello", MethodType.UNARY, HelloRequest);
const SayHelloStream = method("SayHelloStream", MethodType.SERVER_STREAMING, HelloStreamRequest);

const client = new GrpcWebClientBase({ format });

function sayHello(name) {
  return client.unaryCall(`${server}/hello.Greeter/SayHello`, new HelloRequest({ name }), {}, SayHello);
}

/** Runs a server stream to its end: the greetings received and the final status. */
function sayHelloStream(fields) {
  return new Promise((resolve) => {
    const received = [];
    const stream = client.serverStreaming(
      `${server}/hello.Greeter/SayHelloStream`,
      new HelloStreamRequest(fields),
      {},
      SayHelloStream,
    );
    stream.on("data", (reply) => received.push(reply.toObject().message));
    stream.on("error", (error) => resolve({ received, code: error.code, message: error.message }));
    stream.on("end", () => resolve({ received, code: StatusCode.OK }));
  });
}

test(`unary (${format}): SayHello answers Hello, <name>`, async () => {
  const reply = await sayHello("Zoë 🦀");
  assert.equal(reply.toObject().message, "Hello, Zoë 🦀");
});

test(`unary (${format}): an empty name is INVALID_ARGUMENT with its message`, async () => {
  await assert.rejects(sayHello(""), (error) => {
    assert.equal(error.code, StatusCode.INVALID_ARGUMENT);
    assert.equal(error.message, "name must not be empty");
    return true;
  });
});

test(`server streaming (${format}): every greeting, in order`, async () => {
  const { received, code } = await sayHelloStream({ name: "Ada", count: 5, intervalMs: 10 });
  assert.equal(code, StatusCode.OK);
  assert.deepEqual(received, [1, 2, 3, 4, 5].map((i) => `Hello #${i}, Ada`));
});

test(`server streaming (${format}): a bad count is INVALID_ARGUMENT`, async () => {
  const { received, code, message } = await sayHelloStream({ name: "Ada", count: 1001 });
  assert.deepEqual(received, []);
  assert.equal(code, StatusCode.INVALID_ARGUMENT);
  assert.equal(message, "count must be between 1 and 1000, got 1001");
});
