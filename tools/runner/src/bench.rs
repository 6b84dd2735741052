//! `bench`: per-evaluation timings with a fresh instance per request (policy-server's way)
//! and on one warm instance, plus the cost of instantiation alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::Value;

use crate::evaluate::{Policy, evaluate};
use crate::host::Host;

#[derive(Debug, Serialize)]
pub struct Timing {
    pub mode: &'static str,
    pub samples: usize,
    pub median_us: f64,
    pub p10_us: f64,
    pub p90_us: f64,
}

impl Timing {
    fn from_samples(mode: &'static str, mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |fraction: f64| {
            let index = ((samples.len() - 1) as f64 * fraction).round() as usize;
            samples[index].as_secs_f64() * 1e6
        };
        Self {
            mode,
            samples: samples.len(),
            median_us: at(0.5),
            p10_us: at(0.1),
            p90_us: at(0.9),
        }
    }
}

pub struct BenchInput<'a> {
    pub policy: &'a Policy,
    pub host: Arc<Host>,
    pub request: &'a Value,
    pub settings: &'a Value,
    pub samples: usize,
    pub warm_up: usize,
}

/// Times `validate`; the first answer must be a real verdict, not a policy failure.
pub fn run(input: &BenchInput<'_>) -> Result<Vec<Timing>> {
    if input.samples == 0 {
        bail!("--num-samples must be at least 1");
    }
    let allow_mutation = input.policy.allows_mutation();
    let probe = input.policy.instantiate(input.host.clone())?;
    let first = evaluate(&probe, input.request, input.settings, allow_mutation);
    if first.status.as_ref().and_then(|s| s.code) == Some(500) {
        bail!("the policy fails on this request: {:?}", first.status);
    }

    let fresh = time(input, || {
        let instance = input.policy.instantiate(input.host.clone())?;
        std::hint::black_box(evaluate(
            &instance,
            input.request,
            input.settings,
            allow_mutation,
        ));
        Ok(())
    })?;
    let instantiate = time(input, || {
        drop(std::hint::black_box(
            input.policy.instantiate(input.host.clone())?,
        ));
        Ok(())
    })?;
    let warm = time(input, || {
        std::hint::black_box(evaluate(
            &probe,
            input.request,
            input.settings,
            allow_mutation,
        ));
        Ok(())
    })?;
    Ok(vec![
        Timing::from_samples("fresh-instance", fresh),
        Timing::from_samples("instantiate-only", instantiate),
        Timing::from_samples("warm-instance", warm),
    ])
}

/// Times `samples` runs of `step` after `warm_up` untimed ones.
fn time(input: &BenchInput<'_>, mut step: impl FnMut() -> Result<()>) -> Result<Vec<Duration>> {
    let mut timings = Vec::with_capacity(input.samples);
    for iteration in 0..input.warm_up + input.samples {
        let start = Instant::now();
        step()?;
        if iteration >= input.warm_up {
            timings.push(start.elapsed());
        }
    }
    Ok(timings)
}
