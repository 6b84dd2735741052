//! policy-runner: run, bench, annotate and scaffold, without the registry client (see
//! policy-runner-registry for push, pull and `run registry://…`).

fn main() -> std::process::ExitCode {
    policy_runner::main()
}
