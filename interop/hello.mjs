// The Greeter contract for the JavaScript clients and servers, read from proto/hello.proto at run
// time, so nothing here is generated code or hand-written protobuf: protobufjs parses the .proto,
// and its descriptor feeds @bufbuild/protobuf's registry, which connect-es takes as a service.

import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import descriptor from "protobufjs/ext/descriptor/index.js";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

/** The parsed proto/hello.proto (protobufjs types: encode / decode / create). */
export const root = protobuf.loadSync(fileURLToPath(new URL("../proto/hello.proto", import.meta.url)));

export const fileDescriptorSet = descriptor.FileDescriptorSet.encode(root.toDescriptor("proto3")).finish();

/** The same schema as @bufbuild/protobuf descriptors, for connect-es clients and servers. */
export const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, fileDescriptorSet));

/** hello.Greeter as a connect-es service descriptor. */
export const Greeter = registry.getService("hello.Greeter");

/**
 * A class with the google-protobuf message interface (serializeBinary / deserializeBinary) over a
 * protobufjs type: what the grpc-web and improbable-eng runtimes expect of generated messages.
 */
export function messageClass(name) {
  const type = root.lookupType(name);
  return class {
    constructor(fields = {}) {
      this.fields = fields;
    }
    serializeBinary() {
      return type.encode(type.fromObject(this.fields)).finish();
    }
    toObject() {
      return type.toObject(type.decode(this.serializeBinary()), { defaults: true });
    }
    static deserializeBinary(bytes) {
      return new this(type.toObject(type.decode(bytes), { defaults: true }));
    }
  };
}
