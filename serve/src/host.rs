//! Which host names the server answers for: the defence against DNS rebinding.
//!
//! A page on `evil.example` can make its own name resolve to 127.0.0.1 and then call a server
//! on loopback as if it were same-origin: the browser sends `Host: evil.example:PORT`. A server
//! bound to a loopback address therefore answers only loopback host names (`localhost`, and IP
//! literals of the loopback range such as `127.0.0.1` and `[::1]`, with any port), plus the names
//! given by `--allowed-host`. A server bound to any other address is meant to be reached by
//! other names, usually through a load balancer: it answers the names given by `--allowed-host`,
//! or any name when none is given.
//!
//! The host is the request's `:authority` (HTTP/2, or an absolute URI) or its `Host` header.

use std::net::{IpAddr, SocketAddr};

use http::{header, Request};

/// The host names a server answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AllowedHosts {
    /// Every host name.
    Any,
    /// Loopback names, if `loopback`, and these names (lower-case, without a port).
    Only { loopback: bool, names: Vec<String> },
}

impl AllowedHosts {
    /// The policy for a server bound to `addr` with `--allowed-host` names `names`.
    pub(crate) fn for_address(addr: SocketAddr, names: &[String]) -> Self {
        let loopback = addr.ip().is_loopback();
        if !loopback && names.is_empty() {
            return Self::Any;
        }
        Self::Only {
            loopback,
            names: names.iter().map(|name| name.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether a request to `authority` (`host` or `host:port`) is answered.
    pub(crate) fn allows(&self, authority: &str) -> bool {
        let Self::Only { loopback, names } = self else {
            return true;
        };
        let host = strip_port(authority);
        (*loopback && is_loopback_host(host))
            || names.iter().any(|name| name.eq_ignore_ascii_case(host))
    }

    /// Whether a request is answered: its host is allowed, or every host is. A request that names
    /// no host at all is answered only when every host is.
    pub(crate) fn allows_request<B>(&self, request: &Request<B>) -> bool {
        if *self == Self::Any {
            return true;
        }
        request_authority(request).is_some_and(|authority| self.allows(authority))
    }

    /// The policy in words, for the start-up log.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Any => "any host name (bound to a non-loopback address with no --allowed-host; \
                          a load balancer in front should check the Host)"
                .to_owned(),
            Self::Only { loopback, names } => {
                let mut answered: Vec<&str> = Vec::new();
                if *loopback {
                    answered.push("loopback host names");
                }
                answered.extend(names.iter().map(String::as_str));
                answered.join(", ")
            }
        }
    }
}

/// The request's authority: `:authority` or the absolute URI's, else the `Host` header.
pub(crate) fn request_authority<B>(request: &Request<B>) -> Option<&str> {
    match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request.headers().get(header::HOST)?.to_str().ok(),
    }
}

/// Whether the request names two different authorities: an HTTP/2 `:authority` or an HTTP/1.1
/// absolute-form URI, and a `Host` header that says otherwise. A proxy in front may route by one
/// while this server checks the other, so such a request is refused.
pub(crate) fn authority_conflict<B>(request: &Request<B>) -> bool {
    match (
        request.uri().authority(),
        request.headers().get(header::HOST),
    ) {
        (Some(authority), Some(host)) => !host
            .as_bytes()
            .eq_ignore_ascii_case(authority.as_str().as_bytes()),
        _ => false,
    }
}

/// The longest client-sent host name repeated in a reason or a log line.
pub(crate) const MAX_PRINTED_HOST: usize = 100;

/// `host` from `host:port`, `[v6]` from `[v6]:port`.
pub(crate) fn strip_port(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((host, port))
            if port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']')) =>
        {
            host
        }
        _ => authority,
    }
}

/// `localhost`, or an IP literal in the loopback range (`127.0.0.0/8`, `[::1]`).
fn is_loopback_host(host: &str) -> bool {
    // The names nearly every local request uses, before any parsing.
    if matches!(host, "127.0.0.1" | "[::1]") || host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let literal = host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host);
    literal.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Accepts a host name for `--allowed-host`: a DNS name or an IP literal, with no scheme, port or
/// path.
pub(crate) fn parse_host_name(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 253
        && (value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            || (value.starts_with('[')
                && value.ends_with(']')
                && value[1..value.len() - 1]
                    .parse::<std::net::Ipv6Addr>()
                    .is_ok()));
    if valid {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{value}` is not a host name: expected a name such as app.example.com or an IP \
             address, with no scheme, port or path"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback_server(names: &[&str]) -> AllowedHosts {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        AllowedHosts::for_address("127.0.0.1:50051".parse().unwrap(), &names)
    }

    #[test]
    fn a_loopback_server_answers_loopback_names_on_any_port() {
        let hosts = loopback_server(&[]);
        for authority in [
            "localhost",
            "localhost:50051",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:50051",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:50051",
        ] {
            assert!(hosts.allows(authority), "{authority}");
        }
        for authority in [
            "evil.example:50051",
            "evil.example",
            "localhost.evil.example:50051",
            "127.0.0.1.nip.io:50051",
            "10.0.0.1:50051",
            "[::2]:50051",
            "",
        ] {
            assert!(!hosts.allows(authority), "{authority}");
        }
    }

    #[test]
    fn allowed_hosts_add_to_loopback_names() {
        let hosts = loopback_server(&["app.example.com"]);
        assert!(hosts.allows("App.Example.com:443"));
        assert!(hosts.allows("localhost:1"));
        assert!(!hosts.allows("example.com"));
    }

    #[test]
    fn another_address_answers_any_host_unless_names_are_given() {
        let any = AllowedHosts::for_address("0.0.0.0:8080".parse().unwrap(), &[]);
        assert_eq!(any, AllowedHosts::Any);
        assert!(any.allows("evil.example"));
        let named =
            AllowedHosts::for_address("0.0.0.0:8080".parse().unwrap(), &["app.example".into()]);
        assert!(named.allows("app.example:8080"));
        assert!(!named.allows("localhost:8080"));
        assert!(!named.allows("evil.example"));
    }

    #[test]
    fn reads_the_authority_or_the_host_header() {
        let hosts = loopback_server(&[]);
        let h1 = Request::get("/")
            .header("host", "evil.example")
            .body(())
            .unwrap();
        assert!(!hosts.allows_request(&h1));
        let h2 = Request::get("http://localhost:1/x")
            .header("host", "evil.example")
            .body(())
            .unwrap();
        assert!(hosts.allows_request(&h2));
        let none = Request::get("/").body(()).unwrap();
        assert!(!hosts.allows_request(&none));
        assert!(AllowedHosts::Any.allows_request(&none));
    }

    #[test]
    fn host_names_are_checked() {
        assert_eq!(
            parse_host_name("App.Example.com").unwrap(),
            "app.example.com"
        );
        assert_eq!(parse_host_name("[::1]").unwrap(), "[::1]");
        for bad in [
            "",
            "http://a.example",
            "a.example:80",
            "a.example/x",
            "*.example",
            "[zz]",
        ] {
            assert!(parse_host_name(bad).is_err(), "{bad}");
        }
    }
}
