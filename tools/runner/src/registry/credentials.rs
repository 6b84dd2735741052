//! Registry credentials from the Docker config file, the one `docker login`, kwctl and
//! policy-server read: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Result, bail};
use docker_credential::{CredentialRetrievalError, DockerCredential};
use oci_client::secrets::RegistryAuth;

/// Where the credentials come from; named in messages, never the credentials themselves.
pub fn config_path() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))
        .map(|dir| dir.join("config.json"))
}

/// The credentials for `registry`; anonymous when there is no config file or no entry for it.
pub fn for_registry(registry: &str) -> Result<RegistryAuth> {
    let Some(path) = config_path() else {
        return Ok(RegistryAuth::Anonymous);
    };
    match std::fs::File::open(&path) {
        Ok(file) => from_config(file, registry).map_err(|e| e.context(path.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RegistryAuth::Anonymous),
        Err(e) => bail!("cannot read {}: {e}", path.display()),
    }
}

/// The credentials a Docker config (`auths`, `credHelpers`, `credsStore`) holds for `registry`.
pub fn from_config(config: impl Read, registry: &str) -> Result<RegistryAuth> {
    match docker_credential::get_credential_from_reader(config, registry) {
        Ok(DockerCredential::UsernamePassword(username, password)) => {
            Ok(RegistryAuth::Basic(username, password))
        }
        Ok(DockerCredential::IdentityToken(token)) => Ok(RegistryAuth::Bearer(token)),
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(RegistryAuth::Anonymous),
        // The helper's output may hold the credential: name the helper, nothing more.
        Err(CredentialRetrievalError::HelperFailure { helper, .. }) => {
            bail!("the credential helper docker-credential-{helper} failed for {registry}")
        }
        Err(CredentialRetrievalError::ConfigReadError) => {
            bail!("the Docker config is not valid JSON")
        }
        Err(error) => bail!("no usable credentials for {registry}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn auth_for(config: &str, registry: &str) -> Result<RegistryAuth> {
        from_config(config.as_bytes(), registry)
    }

    #[test]
    fn credentials_come_from_the_entry_for_the_registry() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("fake-user:fake-password");
        let config = format!(
            r#"{{"auths": {{"127.0.0.1:5000": {{"auth": "{encoded}"}},
                           "ghcr.io": {{"identitytoken": "fake-token"}}}}}}"#
        );
        assert_eq!(
            auth_for(&config, "127.0.0.1:5000").unwrap(),
            RegistryAuth::Basic("fake-user".into(), "fake-password".into())
        );
        assert_eq!(
            auth_for(&config, "ghcr.io").unwrap(),
            RegistryAuth::Bearer("fake-token".into())
        );
        assert_eq!(
            auth_for(&config, "quay.io").unwrap(),
            RegistryAuth::Anonymous
        );
        assert_eq!(auth_for("{}", "quay.io").unwrap(), RegistryAuth::Anonymous);
    }

    #[test]
    fn a_broken_config_is_an_error() {
        let error = auth_for("not json", "ghcr.io").unwrap_err().to_string();
        assert!(error.contains("not valid JSON"), "{error}");
        let error = auth_for(r#"{"auths": {"ghcr.io": {"auth": "%%%"}}}"#, "ghcr.io")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no usable credentials for ghcr.io"),
            "{error}"
        );
    }

    #[test]
    fn a_failing_helper_is_named_without_its_output() {
        let config = r#"{"credHelpers": {"ghcr.io": "dittofs-test-missing-helper"}}"#;
        let error = format!("{:#}", auth_for(config, "ghcr.io").unwrap_err());
        assert!(error.contains("ghcr.io"), "{error}");
        assert!(!error.contains("stdout"), "{error}");
    }
}
