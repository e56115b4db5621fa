# The interop test case special_status_message, as gRPC's interop test description gives it, which
# the interop client in Debian's ruby-grpc (1.51) predates: the same Ruby gRPC stack and the gem's
# own grpc.testing stubs, calling UnaryCall with a status message of whitespace and Unicode that
# must come back unchanged.
#
# Usage: ruby special_status_message.rb HOST PORT

require 'grpc'

pb_dir = File.join(Gem::Specification.find_by_name('grpc').gem_dir, 'src/ruby/pb')
$LOAD_PATH.unshift(pb_dir)
require 'src/proto/grpc/testing/test_services_pb'

host, port = ARGV
abort 'usage: special_status_message.rb HOST PORT' unless host && port

message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
stub = Grpc::Testing::TestService::Stub.new("#{host}:#{port}", :this_channel_is_insecure)
request = Grpc::Testing::SimpleRequest.new(
  response_status: Grpc::Testing::EchoStatus.new(code: GRPC::Core::StatusCodes::UNKNOWN, message: message)
)
begin
  stub.unary_call(request)
  abort 'special_status_message: expected UNKNOWN, the call succeeded'
rescue GRPC::Unknown => e
  details = e.details.dup.force_encoding(Encoding::UTF_8)
  abort "special_status_message: got #{details.inspect}, expected #{message.inspect}" unless details == message
end
puts 'special_status_message: passed'
