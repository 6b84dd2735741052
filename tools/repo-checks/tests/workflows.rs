//! The GitHub workflows run the README's test command and release this module on Kubewarden's
//! current release tooling, with every action pinned to a commit that was checked.

mod common;

use common::{annotation, metadata, read, yaml};
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
    // kwctl and policy-server at the pinned commit of Kubewarden v1.35.0, so that make test
    // runs e2e-policy-server in CI too.
    let pinned = steps
        .iter()
        .find(|run| run.contains("-p kwctl -p policy-server"))
        .expect("a step that builds kwctl and policy-server");
    assert!(
        pinned.contains("--locked") && pinned.contains("git rev-parse FETCH_HEAD"),
        "{pinned}"
    );
    let text = read(".github/workflows/test.yml");
    assert!(
        text.contains("KUBEWARDEN_COMMIT: 9462fe11de6ba81404ef0cb88fc0346f877d04a1"),
        "the commit of Kubewarden's tag v1.35.0 (../shared/tools/kwctl/README.md)"
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

/// Every action pin of the workflows: (action, commit, tag), and where the commit was seen to be
/// that tag. Add a row, with its source, for any new or bumped action.
const VERIFIED_PINS: &[(&str, &str, &str)] = &[
    // kubewarden/adm-controller .github/workflows/ci.yml (two revisions) pins
    // kubewarden/github-actions/opa-installer at this commit as v7.0.1.
    (
        "kubewarden/github-actions",
        "143b9e4b11ddc47370482267383586e6f1bc7efe",
        "v7.0.1",
    ),
    // kubewarden/adm-controller .github/workflows/ci.yml and open-release-pr.yml.
    (
        "actions/checkout",
        "3d3c42e5aac5ba805825da76410c181273ba90b1",
        "v7.0.1",
    ),
];

/// (action repository, ref, comment) of every `uses:` of a remote action in the workflows.
fn pins() -> Vec<(String, String, String)> {
    let mut pins = Vec::new();
    for file in [
        ".github/workflows/test.yml",
        ".github/workflows/release.yml",
    ] {
        for line in read(file).lines() {
            let Some(rest) = line
                .trim_start()
                .trim_start_matches("- ")
                .strip_prefix("uses: ")
            else {
                continue;
            };
            if rest.starts_with("./") {
                continue; // a workflow of this repository
            }
            let (reference, comment) = rest.split_once(" # ").unwrap_or((rest, ""));
            let (path, git_ref) = reference.split_once('@').expect("action@ref");
            let repository: Vec<&str> = path.splitn(3, '/').take(2).collect();
            pins.push((
                repository.join("/"),
                git_ref.to_owned(),
                comment.trim().to_owned(),
            ));
        }
    }
    pins
}

#[test]
fn every_action_is_pinned_to_a_verified_commit() {
    let pins = pins();
    assert!(pins.len() >= 2, "{pins:?}");
    for (repository, git_ref, comment) in pins {
        assert!(
            VERIFIED_PINS.contains(&(repository.as_str(), git_ref.as_str(), comment.as_str())),
            "{repository}@{git_ref} # {comment}: pin a commit, name its tag in a comment, and \
             record where it was checked in VERIFIED_PINS"
        );
    }
}

#[test]
fn release_uses_the_current_major_of_kubewarden_github_actions() {
    let release = read(".github/workflows/release.yml");
    let line = release
        .lines()
        .find(|line| line.contains("reusable-release-policy-rust.yml@"))
        .expect("the reusable release workflow");
    assert!(line.trim_end().ends_with("# v7.0.1"), "{line}");
    // Kubewarden's push-artifacthub copies it from the released tag.
    let repo = yaml("artifacthub-repo.yml");
    let author = annotation(&metadata(), "io.kubewarden.policy.author");
    let owner = &repo["owners"][0];
    assert_eq!(
        format!(
            "{} <{}>",
            owner["name"].as_str().expect("name"),
            owner["email"].as_str().expect("email")
        ),
        author
    );
}
