//! The module check at connect, on the wire: two fake FreeSWITCH nodes, one a build with
//! everything switchyard's features need, one without mod_avmd and mod_local_stream (as a
//! default build leaves out mod_avmd, and a node without the music package may leave out
//! mod_local_stream). The driver asks each `module_exists` and each node's status says
//! exactly which features will not work there, and why.

#[path = "wire_support/mod.rs"]
mod wire_support;

use switchyard_engine::Engine;
use switchyard_engine::config::EngineConfig;
use switchyard_engine::driver::{Driver, DriverConfig, Feature, FeatureGap, NullSink};
use switchyard_esl::sim::{DEFAULT_MODULES, SimConfig};
use tokio::net::TcpListener;
use wire_support::eventually;

async fn node(modules: &[&str], seed: u64) -> switchyard_esl::sim::SimHandle {
    let esl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    switchyard_esl::sim::spawn(
        esl,
        SimConfig {
            modules: modules.iter().map(|m| (*m).to_owned()).collect(),
            ..SimConfig::default()
        },
        seed,
    )
}

#[tokio::test]
async fn a_node_lacking_modules_is_reported_for_exactly_the_features_that_need_them_and_a_full_node_for_none()
 {
    let full = node(DEFAULT_MODULES, 1).await;
    let partial: Vec<&str> = DEFAULT_MODULES
        .iter()
        .copied()
        .filter(|m| !matches!(*m, "mod_avmd" | "mod_local_stream"))
        .collect();
    let lacking = node(&partial, 2).await;
    let outbound = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cfg = DriverConfig::new(full.local_addr().to_string(), "ClueCon").add_node(
        "west",
        lacking.local_addr().to_string(),
        "ClueCon",
    );
    let engine = Engine::new(
        EngineConfig::default(),
        7,
        tokio::time::Instant::now().into_std(),
    );
    let driver = Driver::start(cfg, engine, outbound, NullSink)
        .await
        .expect("the driver starts against both nodes");
    let api = driver.handle().clone();
    let reports = eventually("both nodes answered the module check", || {
        let nodes = api.nodes();
        nodes
            .iter()
            .map(|n| n.features_unavailable.clone())
            .collect::<Option<Vec<_>>>()
    })
    .await;
    assert_eq!(reports[0], [], "everything is loaded on fs1");
    assert_eq!(
        reports[1],
        [
            FeatureGap {
                feature: Feature::MusicOnHold,
                module: "mod_local_stream"
            },
            FeatureGap {
                feature: Feature::BeepDetection,
                module: "mod_avmd"
            },
        ]
    );
    assert_eq!(
        reports[1][1].to_string(),
        "beep-detection will not work: mod_avmd is not loaded"
    );
    let _ = driver.shutdown().await;
    full.shutdown().await;
    lacking.shutdown().await;
}
