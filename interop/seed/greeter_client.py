# The Greeter client of the gRPC overview (shared seed document), as written there, with one change:
# the address comes from GREETER_ADDR (default: the seed's localhost:50051).
# hello_pb2 and hello_pb2_grpc are generated from proto/hello.proto by grpc_tools.protoc.
import os

import grpc
import hello_pb2
import hello_pb2_grpc


def run():
    # 获取channel连接
    with grpc.insecure_channel(os.environ.get("GREETER_ADDR", "localhost:50051")) as channel:
        # 使用生成的客户端存根
        stub = hello_pb2_grpc.GreeterStub(channel)
        response = stub.SayHello(hello_pb2.HelloRequest(name="Alice"))
        print("Server replied:", response.message)


if __name__ == "__main__":
    run()
