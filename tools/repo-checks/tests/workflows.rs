//! The GitHub workflows run the README's test command and release this module.

mod common;

use common::{annotation, metadata, yaml};
use serde_json::Value;

fn run_steps(workflow: &Value) -> Vec<String> {
    workflow["jobs"]
        .as_object()
        .expect("jobs")
        .values()
        .flat_map(|job| job["steps"].as_array().cloned().unwrap_or_default())
        .filter_map(|step| step["run"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn tests_run_every_check_with_kwctl_and_again_with_the_runner() {
    let workflow = yaml(".github/workflows/test.yml");
    let steps = run_steps(&workflow);
    assert!(
        steps.iter().any(|run| run.trim() == "make test"),
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|run| run.contains("make e2e-tests KWCTL=target/tool/policy-runner"))
    );
    assert!(
        workflow["on"].get("workflow_call").is_some(),
        "release reuses it"
    );
}

#[test]
fn release_pushes_to_the_metadata_oci_repository() {
    let workflow = yaml(".github/workflows/release.yml");
    let release = &workflow["jobs"]["release"];
    assert!(
        release["uses"]
            .as_str()
            .expect("uses")
            .contains("reusable-release-policy-rust.yml")
    );
    assert_eq!(release["needs"], "test");
    let target = release["with"]["oci-target"].as_str().expect("oci-target");
    let oci_url = annotation(&metadata(), "io.kubewarden.policy.ociUrl");
    let repository = |reference: &str| reference.split_once('/').map(|(_, path)| path.to_owned());
    let path_after_owner = |path: String| path.split_once('/').map(|(_, rest)| rest.to_owned());
    assert_eq!(
        repository(target).and_then(path_after_owner),
        repository(&oci_url).and_then(path_after_owner),
        "{target} vs {oci_url}"
    );
    assert_eq!(
        release["permissions"]["id-token"], "write",
        "cosign keyless signing"
    );
}
