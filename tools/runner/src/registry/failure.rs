//! oci-client errors turned into answers that say what went wrong and what to do about it.

use oci_client::errors::{OciDistributionError, OciErrorCode};

use super::location::{Location, is_loopback};

#[derive(Clone, Copy)]
pub enum Operation {
    Push,
    Pull,
}

/// What a failed registry call was doing, for the message.
pub struct Attempt<'a> {
    pub location: &'a Location,
    pub operation: Operation,
    pub authenticated: bool,
}

#[derive(Debug, PartialEq)]
enum Kind {
    Unreachable(String),
    UntrustedCertificate(String),
    Unauthorized,
    NotFound,
    Other,
}

fn kind(error: &OciDistributionError) -> Kind {
    use OciDistributionError as E;
    match error {
        E::RequestError(e) if has_certificate_error(e) => Kind::UntrustedCertificate(root_cause(e)),
        E::RequestError(e) if e.is_connect() || e.is_timeout() => Kind::Unreachable(root_cause(e)),
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => Kind::Unauthorized,
        E::ServerError {
            code: 401 | 403, ..
        } => Kind::Unauthorized,
        E::ImageManifestNotFoundError(_) | E::ServerError { code: 404, .. } => Kind::NotFound,
        E::RegistryError { envelope, .. } => {
            let codes = || envelope.errors.iter().map(|e| &e.code);
            if codes().any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)) {
                Kind::Unauthorized
            } else if codes().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                Kind::NotFound
            } else {
                Kind::Other
            }
        }
        _ => Kind::Other,
    }
}

type Link<'a> = &'a (dyn std::error::Error + 'static);

/// An error and its causes, outermost first. `io::Error::source()` skips the error an
/// `io::Error` wraps (where rustls' errors sit), so that one is taken through `get_ref`.
fn chain(error: Link) -> impl Iterator<Item = Link> {
    std::iter::successors(Some(error), |link| {
        match link
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(wrapped) => Some(wrapped),
            None => link.source(),
        }
    })
}

/// Whether the TLS handshake failed on the registry's certificate.
fn has_certificate_error(error: Link) -> bool {
    chain(error).any(|link| {
        matches!(
            link.downcast_ref(),
            Some(rustls::Error::InvalidCertificate(_))
        )
    })
}

/// The innermost cause, e.g. "Connection refused (os error 111)".
fn root_cause(error: Link) -> String {
    chain(error)
        .last()
        .map(ToString::to_string)
        .unwrap_or_default()
}

pub fn explain(error: &OciDistributionError, attempt: &Attempt) -> anyhow::Error {
    let location = attempt.location;
    let registry = location.registry();
    let uri = location.uri();
    let (verb, preposition) = match attempt.operation {
        Operation::Push => ("push", "to"),
        Operation::Pull => ("pull", "from"),
    };
    match kind(error) {
        Kind::Unreachable(cause) => {
            let transport = if location.plain_http {
                "plain HTTP"
            } else {
                "HTTPS"
            };
            let hint = if !location.plain_http && is_loopback(registry) {
                "; a loopback registry that serves plain HTTP needs --plain-http"
            } else {
                ""
            };
            anyhow::anyhow!("cannot reach the registry {registry} over {transport}: {cause}{hint}")
        }
        Kind::UntrustedCertificate(cause) => anyhow::anyhow!(
            "cannot reach the registry {registry} over HTTPS: its certificate is not trusted \
             ({cause}); add its CA to the system's trust store, or name a PEM bundle in SSL_CERT_FILE"
        ),
        Kind::Unauthorized => {
            let config = super::credentials::config_path().map_or_else(
                || "the Docker config".to_owned(),
                |p| p.display().to_string(),
            );
            let who = if attempt.authenticated {
                format!("the credentials for {registry} in {config}")
            } else {
                format!("anonymous access (no credentials for {registry} in {config})")
            };
            anyhow::anyhow!(
                "unauthorized: the registry {registry} refused {who} to {verb} {uri}; \
                 log in with `docker login {registry}`"
            )
        }
        Kind::NotFound => anyhow::anyhow!(
            "{uri} not found: the registry has no manifest with that tag or digest \
             in {}",
            location.reference.repository()
        ),
        Kind::Other => anyhow::anyhow!("cannot {verb} {uri} {preposition} {registry}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::errors::OciEnvelope;

    fn registry_error(code: &str) -> OciDistributionError {
        let envelope: OciEnvelope = serde_json::from_str(&format!(
            r#"{{"errors": [{{"code": "{code}", "message": "m"}}]}}"#
        ))
        .unwrap();
        OciDistributionError::RegistryError {
            envelope,
            url: "u".into(),
        }
    }

    fn server_error(code: u16) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: "u".into(),
            message: "m".into(),
        }
    }

    #[test]
    fn errors_are_sorted_into_what_users_can_act_on() {
        let cases = [
            (
                OciDistributionError::UnauthorizedError { url: "u".into() },
                Kind::Unauthorized,
            ),
            (
                OciDistributionError::AuthenticationFailure("no".into()),
                Kind::Unauthorized,
            ),
            (server_error(401), Kind::Unauthorized),
            (server_error(403), Kind::Unauthorized),
            (registry_error("UNAUTHORIZED"), Kind::Unauthorized),
            (registry_error("DENIED"), Kind::Unauthorized),
            (
                OciDistributionError::ImageManifestNotFoundError("m".into()),
                Kind::NotFound,
            ),
            (server_error(404), Kind::NotFound),
            (registry_error("MANIFEST_UNKNOWN"), Kind::NotFound),
            (registry_error("NAME_UNKNOWN"), Kind::NotFound),
            (registry_error("BLOB_UPLOAD_INVALID"), Kind::Other),
            (server_error(500), Kind::Other),
        ];
        for (error, expected) in cases {
            assert_eq!(kind(&error), expected, "{error}");
        }
    }

    #[test]
    fn certificate_errors_are_found_inside_nested_io_errors() {
        use std::io::{Error, ErrorKind};
        let untrusted = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        // The shape hyper-rustls hands back: an io::Error around an io::Error around rustls' error.
        let nested = Error::other(Error::new(ErrorKind::InvalidData, untrusted));
        assert!(has_certificate_error(&nested));
        assert_eq!(
            root_cause(&nested),
            "invalid peer certificate: UnknownIssuer"
        );

        let refused = Error::other(Error::from_raw_os_error(111));
        assert!(!has_certificate_error(&refused));
        assert!(
            root_cause(&refused).contains("os error 111"),
            "{}",
            root_cause(&refused)
        );
        let other_tls = Error::new(ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert!(!has_certificate_error(&other_tls));
    }

    fn message(error: OciDistributionError, operation: Operation, authenticated: bool) -> String {
        let location = Location::parse("registry://127.0.0.1:5000/policies/p:v1", true).unwrap();
        let attempt = Attempt {
            location: &location,
            operation,
            authenticated,
        };
        explain(&error, &attempt).to_string()
    }

    #[test]
    fn messages_name_the_reference_and_the_remedy() {
        let unauthorized = message(server_error(401), Operation::Push, false);
        assert!(unauthorized.starts_with("unauthorized:"), "{unauthorized}");
        assert!(unauthorized.contains("anonymous access"), "{unauthorized}");
        assert!(
            unauthorized.contains("to push registry://127.0.0.1:5000/policies/p:v1"),
            "{unauthorized}"
        );
        assert!(
            unauthorized.contains("docker login 127.0.0.1:5000"),
            "{unauthorized}"
        );
        let unauthorized = message(server_error(401), Operation::Pull, true);
        assert!(
            unauthorized.contains("refused the credentials for 127.0.0.1:5000"),
            "{unauthorized}"
        );

        let not_found = message(registry_error("MANIFEST_UNKNOWN"), Operation::Pull, false);
        assert!(
            not_found.starts_with("registry://127.0.0.1:5000/policies/p:v1 not found"),
            "{not_found}"
        );
        assert!(not_found.contains("policies/p"), "{not_found}");

        let other = message(server_error(500), Operation::Pull, false);
        assert!(
            other.starts_with("cannot pull registry://127.0.0.1:5000/policies/p:v1 from"),
            "{other}"
        );
    }
}
