// grpcurl against our server through server reflection alone: no .proto file is given to it.
//
// GREETER_SERVER is the server's base URL (http://127.0.0.1:PORT); GRPCURL is the grpcurl binary.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

const server = process.env.GREETER_SERVER;
const grpcurlPath = process.env.GRPCURL;
assert.ok(server && grpcurlPath, "GREETER_SERVER and GRPCURL must be set (cargo xtask test sets them)");
const address = new URL(server).host;

function grpcurl(...args) {
  const run = spawnSync(grpcurlPath, ["-plaintext", ...args], { encoding: "utf8", timeout: 20_000 });
  assert.equal(run.error, undefined, String(run.error));
  return run;
}

// Every service the server hosts (the interop suite's server hosts gRPC's TestService too), and
// no other service of the contracts they come from.
test("grpcurl lists the services", () => {
  const run = grpcurl(address, "list");
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(run.stdout.trim().split("\n").sort(), [
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.testing.TestService",
    "hello.Greeter",
    "hello.GreeterStats",
  ]);
});

test("grpcurl describes the Greeter", () => {
  const run = grpcurl(address, "describe", "hello.Greeter");
  assert.equal(run.status, 0, run.stderr);
  for (const rpc of [
    "rpc SayHello ( .hello.HelloRequest ) returns ( .hello.HelloReply );",
    "rpc SayHelloStream ( .hello.HelloStreamRequest ) returns ( stream .hello.HelloReply );",
    "rpc SayHelloToAll ( stream .hello.HelloRequest ) returns ( .hello.HelloSummary );",
    "rpc Chat ( stream .hello.HelloRequest ) returns ( stream .hello.HelloReply );",
  ]) {
    assert.ok(run.stdout.includes(rpc), `${rpc} missing from:\n${run.stdout}`);
  }
});

test("grpcurl calls SayHello and sees INVALID_ARGUMENT", () => {
  const ok = grpcurl("-d", '{"name":"grpcurl"}', address, "hello.Greeter/SayHello");
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { message: "Hello, grpcurl" });

  const bad = grpcurl("-d", '{"name":""}', address, "hello.Greeter/SayHello");
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /Code: InvalidArgument\s+Message: name must not be empty/);
});

test("grpcurl checks health", () => {
  const run = grpcurl(address, "grpc.health.v1.Health/Check");
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { status: "SERVING" });
});
