//! Kubewarden's OCI artifact layout: one wasm layer (the annotated module), the config `{}`,
//! and manifest annotations taken from the module's embedded metadata, as `kwctl push` writes it.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use oci_client::annotations::ORG_OPENCONTAINERS_IMAGE_SOURCE;
use oci_client::manifest::{
    OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest, WASM_CONFIG_MEDIA_TYPE,
    WASM_LAYER_MEDIA_TYPE,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::metadata;

const POLICY_SOURCE_ANNOTATION: &str = "io.kubewarden.policy.source";
const CONFIG: &[u8] = b"{}";

/// Everything a push uploads. `manifest_json` is sent as is, so `digest` names it exactly.
pub struct Artifact {
    pub layer: Vec<u8>,
    pub config: Vec<u8>,
    pub manifest: OciImageManifest,
    pub manifest_json: Vec<u8>,
    pub digest: String,
}

impl Artifact {
    /// Packs an annotated module; a module without embedded metadata is refused, as kwctl does.
    pub fn package(module: Vec<u8>) -> Result<Self> {
        let metadata = metadata::read_embedded(&module)
            .context("cannot read the module's embedded metadata")?
            .ok_or_else(|| {
                anyhow!(
                    "the module has no embedded metadata ({}): annotate it first \
                     (`policy-runner annotate` or `make annotated-policy.wasm`)",
                    metadata::METADATA_SECTION
                )
            })?;
        metadata::validate(&metadata).context("the module's embedded metadata is invalid")?;
        let annotations = manifest_annotations(&metadata);
        let manifest = OciImageManifest {
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_owned()),
            config: descriptor(WASM_CONFIG_MEDIA_TYPE, CONFIG),
            layers: vec![descriptor(WASM_LAYER_MEDIA_TYPE, &module)],
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..OciImageManifest::default()
        };
        let manifest_json = serde_json::to_vec(&manifest)?;
        Ok(Self {
            digest: sha256_digest(&manifest_json),
            layer: module,
            config: CONFIG.to_vec(),
            manifest,
            manifest_json,
        })
    }

    /// What a push uploads before the manifest: the layer, then the config, with their descriptors.
    pub fn blobs(&self) -> impl Iterator<Item = (&Vec<u8>, &OciDescriptor)> {
        std::iter::zip([&self.layer], &self.manifest.layers)
            .chain([(&self.config, &self.manifest.config)])
    }
}

/// The metadata's annotations that fit in OCI annotations (single-line values), plus
/// `org.opencontainers.image.source` from `io.kubewarden.policy.source` unless already set.
pub fn manifest_annotations(metadata: &Value) -> BTreeMap<String, String> {
    let mut annotations: BTreeMap<String, String> = metadata
        .get("annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| {
            let value = value.as_str()?;
            (!value.contains(['\n', '\r'])).then(|| (key.clone(), value.to_owned()))
        })
        .collect();
    if let Some(source) = annotations.get(POLICY_SOURCE_ANNOTATION).cloned() {
        annotations
            .entry(ORG_OPENCONTAINERS_IMAGE_SOURCE.to_owned())
            .or_insert(source);
    }
    annotations
}

/// The module's layer of a pulled manifest, or why the manifest is not a Kubewarden policy.
pub fn policy_layer(manifest: &OciImageManifest) -> Result<&OciDescriptor, String> {
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == WASM_LAYER_MEDIA_TYPE => Ok(layer),
        [layer] => Err(format!(
            "its layer has media type {}, not {WASM_LAYER_MEDIA_TYPE}",
            layer.media_type
        )),
        layers => Err(format!(
            "it has {} layers, not one of media type {WASM_LAYER_MEDIA_TYPE}",
            layers.len()
        )),
    }
}

fn descriptor(media_type: &str, data: &[u8]) -> OciDescriptor {
    OciDescriptor {
        media_type: media_type.to_owned(),
        digest: sha256_digest(data),
        size: i64::try_from(data.len()).unwrap_or(i64::MAX),
        ..OciDescriptor::default()
    }
}

fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metadata(annotations: Value) -> Value {
        json!({
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
                       "operations": ["CREATE"]}],
            "mutating": true,
            "annotations": annotations,
        })
    }

    fn annotated_module(metadata: &Value) -> Vec<u8> {
        let module = wat::parse_str("(module)").unwrap();
        metadata::embed(&module, metadata).unwrap()
    }

    #[test]
    fn annotations_drop_multi_line_values_and_add_the_image_source() {
        let annotations = manifest_annotations(&metadata(json!({
            "io.kubewarden.policy.title": "p",
            "io.kubewarden.policy.source": "https://example.com/p",
            "io.kubewarden.policy.usage": "# Usage\n\nmore",
            "windows": "a\r\nb",
        })));
        let expected: BTreeMap<String, String> = [
            ("io.kubewarden.policy.title", "p"),
            ("io.kubewarden.policy.source", "https://example.com/p"),
            (ORG_OPENCONTAINERS_IMAGE_SOURCE, "https://example.com/p"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(annotations, expected);
    }

    #[test]
    fn an_explicit_image_source_is_kept() {
        let annotations = manifest_annotations(&metadata(json!({
            "io.kubewarden.policy.source": "https://example.com/p",
            ORG_OPENCONTAINERS_IMAGE_SOURCE: "https://mirror.example.com/p",
        })));
        assert_eq!(
            annotations[ORG_OPENCONTAINERS_IMAGE_SOURCE],
            "https://mirror.example.com/p"
        );
        assert!(manifest_annotations(&metadata(json!({}))).is_empty());
    }

    #[test]
    fn packaging_follows_the_kubewarden_layout() {
        let module = annotated_module(&metadata(json!({"io.kubewarden.policy.source": "s"})));
        let artifact = Artifact::package(module.clone()).unwrap();
        assert_eq!(artifact.layer, module);
        assert_eq!(artifact.config, b"{}");

        let manifest: Value = serde_json::from_slice(&artifact.manifest_json).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.wasm.config.v1+json"
        );
        assert_eq!(manifest["config"]["size"], 2);
        assert_eq!(
            manifest["config"]["digest"],
            // sha256 of the two bytes `{}`.
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(
            layers[0]["mediaType"],
            "application/vnd.wasm.content.layer.v1+wasm"
        );
        assert_eq!(layers[0]["size"], module.len());
        assert_eq!(
            layers[0]["digest"],
            format!("sha256:{}", hex::encode(Sha256::digest(&module)))
        );
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.source"],
            "s"
        );
        assert_eq!(
            artifact.digest,
            format!(
                "sha256:{}",
                hex::encode(Sha256::digest(&artifact.manifest_json))
            )
        );
        assert_eq!(
            policy_layer(&artifact.manifest).unwrap().digest,
            layers[0]["digest"]
        );
    }

    #[test]
    fn a_module_without_metadata_is_refused() {
        let error = Artifact::package(wat::parse_str("(module)").unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("no embedded metadata"), "{error}");
        let error = Artifact::package(b"not wasm".to_vec())
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("cannot read the module's embedded metadata"),
            "{error}"
        );
    }

    #[test]
    fn other_layouts_are_not_kubewarden_policies() {
        let module = annotated_module(&metadata(json!({})));
        let mut manifest = Artifact::package(module).unwrap().manifest;
        manifest.layers[0].media_type = "application/vnd.oci.image.layer.v1.tar".into();
        let error = policy_layer(&manifest).unwrap_err();
        assert!(
            error.contains("application/vnd.oci.image.layer.v1.tar"),
            "{error}"
        );
        manifest.layers.clear();
        assert!(policy_layer(&manifest).unwrap_err().contains("0 layers"));
    }
}
