//! policy-runner-registry: policy-runner's commands, plus push, pull and `run registry://…`
//! (built with the `registry` feature).

fn main() -> std::process::ExitCode {
    policy_runner::main()
}
