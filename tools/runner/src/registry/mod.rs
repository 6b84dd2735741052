//! `push` and `pull` of policies as OCI artifacts in Kubewarden's layout, over oci-client.
//! Everything here is blocking for the caller: each push or pull runs its own single-threaded
//! runtime.

mod credentials;
mod failure;
mod layout;
mod location;

use std::time::Duration;

use anyhow::{Result, anyhow};
use http::HeaderValue;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OCI_IMAGE_MEDIA_TYPE;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use self::failure::{Attempt, Operation};
use self::layout::Artifact;
pub use self::location::{Location, as_uri};

/// A module fetched from a registry.
pub struct Pulled {
    pub module: Vec<u8>,
    /// `HOST/REPO@sha256:…`: what was pulled, whatever tag named it.
    pub immutable_ref: String,
}

/// Pushes an annotated module to `location` and returns its immutable `HOST/REPO@sha256:…`.
pub fn push(module: Vec<u8>, location: &Location) -> Result<String> {
    let artifact = Artifact::package(module)?;
    let auth = credentials::for_registry(location.registry())?;
    let attempt = attempt(location, Operation::Push, &auth);
    block_on(upload(&client(location)?, location, &auth, &artifact))?
        .map_err(|e| failure::explain(&e, &attempt))?;
    Ok(location.immutable(&artifact.digest))
}

/// Pulls the policy module at `location`, refusing anything not in Kubewarden's layout.
pub fn pull(location: &Location) -> Result<Pulled> {
    let auth = credentials::for_registry(location.registry())?;
    let attempt = attempt(location, Operation::Pull, &auth);
    let explain = |e: OciDistributionError| failure::explain(&e, &attempt);
    let client = client(location)?;
    let reference = &location.reference;
    block_on(async {
        let (manifest, digest) = client
            .pull_image_manifest(reference, &auth)
            .await
            .map_err(explain)?;
        let layer = layout::policy_layer(&manifest)
            .map_err(|why| anyhow!("{} is not a Kubewarden policy: {why}", location.uri()))?;
        let mut module = Vec::new();
        client
            .pull_blob(reference, layer, &mut module)
            .await
            .map_err(explain)?;
        Ok(Pulled {
            module,
            immutable_ref: location.immutable(&digest),
        })
    })?
}

async fn upload(
    client: &Client,
    location: &Location,
    auth: &RegistryAuth,
    artifact: &Artifact,
) -> Result<(), OciDistributionError> {
    let reference = &location.reference;
    client
        .auth(reference, auth, RegistryOperation::Push)
        .await?;
    for (data, descriptor) in artifact.blobs() {
        client
            .push_blob(reference, data.clone(), &descriptor.digest)
            .await?;
    }
    let content_type = HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE);
    client
        .push_manifest_raw(reference, artifact.manifest_json.clone(), content_type)
        .await?;
    Ok(())
}

fn attempt<'a>(location: &'a Location, operation: Operation, auth: &RegistryAuth) -> Attempt<'a> {
    Attempt {
        location,
        operation,
        authenticated: *auth != RegistryAuth::Anonymous,
    }
}

/// A client that reaches `location` over TLS, or plain HTTP for that registry alone.
fn client(location: &Location) -> Result<Client> {
    // TLS through ring; only the first installation takes, later ones are refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let protocol = if location.plain_http {
        ClientProtocol::HttpsExcept(vec![location.registry().to_owned()])
    } else {
        ClientProtocol::Https
    };
    Client::try_from(ClientConfig {
        protocol,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        // A policy is a single wasm manifest: an image index is not followed.
        platform_resolver: None,
        ..ClientConfig::default()
    })
    .map_err(|e| anyhow!("cannot set up the registry client: {e}"))
}

fn block_on<F: Future>(future: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the network runtime: {e}"))?;
    Ok(runtime.block_on(future))
}
