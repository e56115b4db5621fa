//! What the server hosts, read from its services' own descriptor sets rather than from a list kept
//! by hand: the method paths (`/package.Service/Method`) that metrics label calls by, and each
//! method's shape (whether it streams its request, its response), which the call gate bounds
//! calls by.
//!
//! A client can send any path; only these become metric labels, so what a client invents can
//! neither grow the metrics nor take a real method's label.

use prost::Message;
use prost_types::FileDescriptorSet;

/// One hosted method: its path and its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Method {
    /// `/package.Service/Method`.
    pub path: String,
    /// The client sends a stream of messages (client or bidirectional streaming).
    pub client_streaming: bool,
    /// The server sends a stream of messages (server or bidirectional streaming).
    pub server_streaming: bool,
}

#[cfg(test)]
impl Method {
    /// A unary method at `path`.
    pub(crate) fn unary(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            client_streaming: false,
            server_streaming: false,
        }
    }
}

/// Every method of every service in an encoded `FileDescriptorSet`, with its shape.
///
/// # Panics
/// If `encoded` is not a valid descriptor set: for the sets compiled into this crate. The server
/// checks every set it is given with [`try_methods`] first.
pub(crate) fn methods(encoded: &[u8]) -> Vec<Method> {
    try_methods(encoded).expect("an embedded descriptor set is valid")
}

/// [`methods`], or why `encoded` is not a descriptor set.
pub(crate) fn try_methods(encoded: &[u8]) -> Result<Vec<Method>, prost::DecodeError> {
    let set = FileDescriptorSet::decode(encoded)?;
    let mut methods = Vec::new();
    for file in &set.file {
        let package = file.package();
        for service in &file.service {
            let service_name = match package {
                "" => service.name().to_owned(),
                package => format!("{package}.{}", service.name()),
            };
            for method in &service.method {
                methods.push(Method {
                    path: format!("/{service_name}/{}", method.name()),
                    client_streaming: method.client_streaming(),
                    server_streaming: method.server_streaming(),
                });
            }
        }
    }
    Ok(methods)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method_paths(encoded: &[u8]) -> Vec<String> {
        methods(encoded)
            .into_iter()
            .map(|method| method.path)
            .collect()
    }

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
    fn reads_each_method_s_shape() {
        let shapes: Vec<_> = methods(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .into_iter()
            .chain(methods(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET))
            .map(|method| (method.client_streaming, method.server_streaming))
            .collect();
        // Check (unary), Watch (server streaming), ServerReflectionInfo (bidirectional).
        assert_eq!(shapes, [(false, false), (false, true), (true, true)]);
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
