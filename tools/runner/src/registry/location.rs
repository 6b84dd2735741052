//! `registry://` references, and which of them may be reached over plain HTTP.

use std::net::IpAddr;

use anyhow::{Result, anyhow, bail};
use oci_client::Reference;

const SCHEME: &str = "registry://";

/// Where a policy lives in a registry, and how to reach it.
pub struct Location {
    pub reference: Reference,
    /// Plain HTTP, allowed only for a loopback registry and only when asked for.
    pub plain_http: bool,
}

impl Location {
    /// `uri` must be `registry://HOST/REPO[:TAG][@DIGEST]`. `plain_http` is refused for any
    /// registry but a loopback one, so credentials never cross a network in the clear.
    pub fn parse(uri: &str, plain_http: bool) -> Result<Self> {
        let rest = uri.strip_prefix(SCHEME).ok_or_else(|| {
            anyhow!("{uri} is not a registry reference (expected {SCHEME}HOST/REPO:TAG)")
        })?;
        let reference: Reference = rest
            .parse()
            .map_err(|e| anyhow!("{uri} is not a valid OCI reference: {e}"))?;
        if plain_http && !is_loopback(reference.resolve_registry()) {
            bail!(
                "--plain-http is allowed only for loopback registries (localhost, 127.0.0.0/8, [::1]); \
                 {} is reached over TLS",
                reference.resolve_registry()
            );
        }
        Ok(Self {
            reference,
            plain_http,
        })
    }

    pub fn registry(&self) -> &str {
        self.reference.resolve_registry()
    }

    /// The reference as given, e.g. `registry://127.0.0.1:5000/policies/p:v1`.
    pub fn uri(&self) -> String {
        format!("{SCHEME}{}", self.reference.whole())
    }

    /// The content-addressed reference of the manifest with `digest`.
    pub fn immutable(&self, digest: &str) -> String {
        format!(
            "{}/{}@{digest}",
            self.reference.registry(),
            self.reference.repository()
        )
    }
}

/// `immutable` (as `Location::immutable` prints it) as a `registry://` URI.
pub fn as_uri(immutable: &str) -> String {
    format!("{SCHEME}{immutable}")
}

/// Whether a registry (`host`, `host:port`, `[v6]:port`) is on this machine.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => registry.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for registry in [
            "localhost",
            "LOCALHOST:5000",
            "127.0.0.1:5000",
            "127.8.9.10",
            "[::1]:5000",
        ] {
            assert!(is_loopback(registry), "{registry}");
        }
        for registry in [
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "127.0.0.1.nip.io:5000",
            "[::2]:5000",
        ] {
            assert!(!is_loopback(registry), "{registry}");
        }
    }

    #[test]
    fn plain_http_is_refused_for_remote_registries() {
        let error = Location::parse("registry://ghcr.io/dittofs/policy:v1", true)
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("--plain-http is allowed only for loopback"),
            "{error}"
        );
        assert!(error.contains("ghcr.io"), "{error}");
        assert!(Location::parse("registry://ghcr.io/dittofs/policy:v1", false).is_ok());
        assert!(Location::parse("registry://127.0.0.1:5000/dittofs/policy:v1", true).is_ok());
    }

    #[test]
    fn references_are_parsed_and_printed() {
        let location = Location::parse("registry://127.0.0.1:5000/policies/p:v1", true).unwrap();
        assert_eq!(location.registry(), "127.0.0.1:5000");
        assert_eq!(location.reference.repository(), "policies/p");
        assert_eq!(location.reference.tag(), Some("v1"));
        assert_eq!(location.uri(), "registry://127.0.0.1:5000/policies/p:v1");
        let immutable = location.immutable("sha256:abc");
        assert_eq!(immutable, "127.0.0.1:5000/policies/p@sha256:abc");
        assert_eq!(
            as_uri(&immutable),
            "registry://127.0.0.1:5000/policies/p@sha256:abc"
        );
    }

    #[test]
    fn malformed_references_are_refused() {
        for uri in [
            "127.0.0.1:5000/p:v1",
            "https://ghcr.io/p:v1",
            "registry://",
            "registry://Host/UPPER:v1",
        ] {
            assert!(Location::parse(uri, false).is_err(), "{uri}");
        }
    }
}
