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
    fn lists_every_method_of_every_service_in_every_file() {
        use prost_types::{FileDescriptorProto, MethodDescriptorProto, ServiceDescriptorProto};
        let service = |name: &str, methods: &[&str]| ServiceDescriptorProto {
            name: Some(name.into()),
            method: methods
                .iter()
                .map(|method| MethodDescriptorProto {
                    name: Some((*method).into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let set = FileDescriptorSet {
            file: vec![
                FileDescriptorProto {
                    package: Some("chat.v1".into()),
                    service: vec![
                        service("Room", &["Join", "Say"]),
                        service("Admin", &["Kick"]),
                    ],
                    ..Default::default()
                },
                FileDescriptorProto {
                    service: vec![service("Bare", &["Ping"])],
                    ..Default::default()
                },
            ],
        };
        assert_eq!(
            method_paths(&set.encode_to_vec()),
            [
                "/chat.v1.Room/Join",
                "/chat.v1.Room/Say",
                "/chat.v1.Admin/Kick",
                "/Bare/Ping"
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
