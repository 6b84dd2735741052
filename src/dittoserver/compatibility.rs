//! Which DittoFS versions read the AWS_* variables: operator v0.13.0 removed `spec.s3`, and
//! DittoFS from 0.13.0 on takes S3 credentials per store and ignores the process environment.

use crate::value::At;
use serde_json::Value;

/// The first DittoFS release that ignores `AWS_*` variables.
const IGNORES_AWS_ENV_FROM: semver::Version = semver::Version::new(0, 13, 0);

/// The version in an image reference's tag (`repo:0.13.1`, `repo:v0.13.1`); a digest, a missing
/// tag or a tag that is not a semantic version says nothing.
fn tagged_version(image: &str) -> Option<semver::Version> {
    if image.contains('@') {
        return None;
    }
    let (repository, tag) = image.rsplit_once(':')?;
    if tag.contains('/') || repository.is_empty() {
        // The colon belonged to a registry port (`host:5000/dittofs`).
        return None;
    }
    semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

/// A warning when a DittoServer with `spec.s3` runs a DittoFS image that ignores what the
/// policy injects.
pub fn ignored_env_warning(object: &Value) -> Option<String> {
    object.at(["spec", "s3"])?;
    let image = object.at(["spec", "image"])?.as_str()?;
    let version = tagged_version(image)?;
    (version >= IGNORES_AWS_ENV_FROM).then(|| {
        format!(
            "spec.s3 has no effect with DittoFS {version}: from 0.13.0 on DittoFS ignores AWS_* \
             variables; give each S3 store its own credentials in DittoFS's store configuration"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_image(image: &str) -> Value {
        json!({"spec": {"image": image, "s3": {"region": "eu-west-1"}}})
    }

    #[test]
    fn versions_from_0_13_warn_and_older_ones_do_not() {
        for image in [
            "marmos91c/dittofs:0.13.0",
            "marmos91c/dittofs:v0.14.2",
            "registry.example.com:5000/dittofs/dittofs:1.0.0",
        ] {
            let warning = ignored_env_warning(&with_image(image)).expect(image);
            assert!(
                warning.starts_with("spec.s3 has no effect with DittoFS "),
                "{warning}"
            );
            assert!(warning.len() <= crate::decision::WARNING_LIMIT);
        }
        for image in [
            "marmos91c/dittofs:0.12.0",
            "marmos91c/dittofs:v0.4.1",
            "marmos91c/dittofs:0.13.0-rc.1",
        ] {
            assert_eq!(ignored_env_warning(&with_image(image)), None, "{image}");
        }
    }

    #[test]
    fn digests_unparseable_tags_and_objects_without_s3_say_nothing() {
        for image in [
            "marmos91c/dittofs:latest",
            "marmos91c/dittofs",
            "marmos91c/dittofs:0.13",
            "registry.example.com:5000/dittofs",
            "marmos91c/dittofs:0.14.0@sha256:0123456789abcdef",
            "",
        ] {
            assert_eq!(ignored_env_warning(&with_image(image)), None, "{image}");
        }
        let no_s3 = json!({"spec": {"image": "marmos91c/dittofs:0.14.0"}});
        assert_eq!(ignored_env_warning(&no_s3), None);
    }
}
