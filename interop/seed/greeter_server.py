# The Greeter server of the gRPC overview (shared seed document), as written there, with one change:
# the address comes from GREETER_ADDR (default: the seed's [::]:50051), so tests can use a free port.
# hello_pb2 and hello_pb2_grpc are generated from proto/hello.proto by grpc_tools.protoc.
import os

import grpc
from concurrent import futures
import hello_pb2
import hello_pb2_grpc


# rpc service接口实现
class GreeterImpl(hello_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        print("Received:", request.name, flush=True)
        return hello_pb2.HelloReply(message=f"Hello, {request.name}")


def serve():
    # 创建服务器
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))

    # 添加服务接口实现
    hello_pb2_grpc.add_GreeterServicer_to_server(GreeterImpl(), server)
    address = os.environ.get("GREETER_ADDR", "[::]:50051")
    server.add_insecure_port(address)
    server.start()
    print(f"Server started at {address}.", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    serve()
