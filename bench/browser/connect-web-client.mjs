// connect-web's gRPC-Web client for the benchmark page, bundled by build-page.mjs. The Greeter's
// descriptor is put in at build time (HELLO_DESCRIPTOR, base64 of a FileDescriptorSet read from
// proto/hello.proto), so the page needs no code generation and no eval.

import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

/* global HELLO_DESCRIPTOR */
const bytes = Uint8Array.from(atob(HELLO_DESCRIPTOR), (c) => c.charCodeAt(0));
const Greeter = createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes)).getService("hello.Greeter");

export function connectGreeter(baseUrl) {
  return createClient(Greeter, createGrpcWebTransport({ baseUrl }));
}
