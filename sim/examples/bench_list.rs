//! Measures how long a sim with many pods takes to start, and how long a client takes
//! to list them all in pages.
//!
//! Run with:
//!
//! ```text
//! cargo run --release -p periscope-sim --example bench_list -- [PODS] [PAGE]
//! ```
//!
//! Defaults: 50 000 pods, pages of 500 (kube-rs's and kubectl's page size).

use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use periscope_sim::{Scenario, Sim, SimOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let pods: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50_000);
    let page: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(500);

    let began = Instant::now();
    let sim = Sim::start(SimOptions {
        scenario: Scenario::Empty,
        pods,
        ..SimOptions::default()
    })
    .await?;
    let started = began.elapsed();

    let client = kube::Client::try_from(kube::Config::new(sim.url().parse()?))?;
    let api: Api<Pod> = Api::all(client);
    for round in 0..3 {
        let began = Instant::now();
        let mut params = ListParams::default().limit(page);
        let (mut items, mut pages) = (0, 0);
        loop {
            let list = api.list(&params).await?;
            items += list.items.len();
            pages += 1;
            match list.metadata.continue_ {
                Some(token) if !token.is_empty() => params = params.continue_token(&token),
                _ => break,
            }
        }
        let listed = began.elapsed();
        println!(
            "round {round}: listed {items} pods in {pages} pages of {page} in {:.0} ms ({:.1} ms/page)",
            listed.as_secs_f64() * 1e3,
            listed.as_secs_f64() * 1e3 / f64::from(pages)
        );
    }
    println!("start with {pods} pods: {:.0} ms", started.as_secs_f64() * 1e3);
    sim.shutdown().await;
    Ok(())
}
