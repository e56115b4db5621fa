//! What the server hosts, read from its services' own descriptor sets rather than from a list kept
//! by hand: the method paths (`/package.Service/Method`) that metrics label calls by.
//!
//! A client can send any path; only these become metric labels, so what a client invents can
//! neither grow the metrics nor take a real method's label.

use prost::Message;
use prost_types::FileDescriptorSet;

/// Every method path of every service in an encoded `FileDescriptorSet`.
///
/// # Panics
/// If `encoded` is not a valid descriptor set: these are compiled into the binary, so a bad one
/// is a build defect, not a run-time condition.
pub fn method_paths(encoded: &[u8]) -> Vec<String> {
    let set = FileDescriptorSet::decode(encoded).expect("an embedded descriptor set is valid");
    let mut paths = Vec::new();
    for file in &set.file {
        let package = file.package();
        for service in &file.service {
            let service_name = match package {
                "" => service.name().to_owned(),
                package => format!("{package}.{}", service.name()),
            };
            for method in &service.method {
                paths.push(format!("/{service_name}/{}", method.name()));
            }
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_greeter_and_its_stats_service() {
        let paths = method_paths(hello_proto::FILE_DESCRIPTOR_SET);
        assert_eq!(
            paths,
            [
                "/hello.Greeter/SayHello",
                "/hello.Greeter/SayHelloStream",
                "/hello.Greeter/SayHelloToAll",
                "/hello.Greeter/Chat",
                "/hello.GreeterStats/GetStreamStats",
            ]
        );
    }

    #[test]
    fn lists_health_and_reflection() {
        assert_eq!(
            method_paths(tonic_health::pb::FILE_DESCRIPTOR_SET),
            [
                "/grpc.health.v1.Health/Check",
                "/grpc.health.v1.Health/Watch"
            ]
        );
        assert_eq!(
            method_paths(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET),
            ["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"]
        );
    }
}
