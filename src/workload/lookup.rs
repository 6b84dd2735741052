//! Reading what a workload review depends on: its owning DittoServer's `spec.s3` and the
//! Secret it names, each answer reduced to what the decision needs (never a Secret value).

use crate::cluster::{Cluster, LookupError, ObjectRef};
use crate::credentials::{ConsumedCredentials, SecretData, consumed_fields, endpoint_finding};
use crate::dittoserver::{CredentialsRef, parse_s3};
use crate::settings::Settings;

/// The owning DittoServer's credentials, or why they cannot be known.
pub(super) enum Owner {
    NoCredentials,
    /// The credentials reference and the effective region.
    Credentials(CredentialsRef, String),
    /// The lookup failed: what the DittoServer names now is unknown.
    Unreadable(String),
    /// Read, but its spec.s3 is invalid (admitted before a rule changed): which credentials it
    /// names cannot be used, though its author's writes were reviewed.
    Invalid(String),
}

pub(super) fn read_owner(owner: ObjectRef<'_>, cluster: &dyn Cluster) -> Owner {
    // Of its owner a workload review reads spec.s3 only, and from the API server itself: a
    // cached answer up to 5 s old could still name a Secret the DittoServer dropped while its
    // image changed, and hand it to the new image. An answer about another object (a proxy's
    // page, another kind) is unreadable, so a template is kept rather than stripped.
    match cluster.get_fresh(owner, &["spec.s3".to_owned()]) {
        Err(LookupError::NotFound) => Owner::Unreadable(format!("{owner} was not found")),
        Err(error) => Owner::Unreadable(format!("cannot read {owner}: {error}")),
        Ok(ditto) => match parse_s3(&ditto) {
            Err(violations) => {
                let details: Vec<String> = violations.iter().map(ToString::to_string).collect();
                Owner::Invalid(format!(
                    "{owner} has an invalid spec.s3 ({})",
                    details.join("; ")
                ))
            }
            Ok(Some(spec)) => match spec.credentials {
                Some(credentials) => Owner::Credentials(credentials, spec.region),
                None => Owner::NoCredentials,
            },
            Ok(None) => Owner::NoCredentials,
        },
    }
}

/// Why the consumed credentials cannot be used.
pub enum SecretProblem {
    /// The lookup failed, or the Secret is missing or incomplete.
    Unavailable {
        reason: String,
        /// The Secret is missing or lacks a required entry: the container cannot start.
        blocks_start: bool,
    },
    /// The endpoint entry breaks the endpoint rules: credentials must not be sent there.
    Endpoint(String),
}

/// Reads the Secret as the container will: the endpoint entry must pass the endpoint rules,
/// and the hash covers the consumed entries only.
pub fn read_credentials(
    credentials: &CredentialsRef,
    namespace: &str,
    settings: &Settings,
    cluster: &dyn Cluster,
) -> Result<String, SecretProblem> {
    let secret_ref = ObjectRef::secret(namespace, &credentials.secret_name);
    let unavailable = |reason: String, blocks_start: bool| SecretProblem::Unavailable {
        reason,
        blocks_start,
    };
    let secret = match cluster.get(secret_ref, &consumed_fields(&credentials.keys)) {
        Ok(secret) => secret,
        Err(LookupError::NotFound) => {
            return Err(unavailable(format!("{secret_ref} was not found"), true));
        }
        Err(error) => {
            return Err(unavailable(
                format!("cannot read {secret_ref}: {error}"),
                false,
            ));
        }
    };
    let data = SecretData::from_object(&secret)
        .map_err(|problem| unavailable(format!("cannot read {secret_ref}: {problem}"), false))?;
    if let Some(finding) = endpoint_finding(&data, &credentials.keys.endpoint, settings) {
        return Err(SecretProblem::Endpoint(format!(
            "{secret_ref}: {}",
            finding.message
        )));
    }
    ConsumedCredentials::read(&data, &credentials.keys)
        .map(|consumed| consumed.hash())
        .map_err(|problems| {
            let details: Vec<String> = problems.iter().map(ToString::to_string).collect();
            unavailable(
                format!("{secret_ref} is incomplete: {}", details.join("; ")),
                true,
            )
        })
}
