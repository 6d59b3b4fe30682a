//! The module check at each connection (the table is `driver::modules`): one ticket of
//! `api module_exists <module>` for every module the configured features need, its answers
//! turned into the node's report (logged, and in [`crate::driver::NodeStatus`]), and
//! mod_oreka's answer kept for the capture (module `capture`): a node without it records
//! `oreka` policies with recorder legs.

use tracing::{info, warn};

use super::super::commands::EslRequest;
use super::super::modules::{self, Feature, FeatureGap};
use super::{Answer, DriverCore, Pending, Reply};

impl DriverCore {
    /// At each connection (the node may be another machine now): ask about every module.
    pub(super) fn check_modules(&mut self, node: usize) {
        self.nodes[node].oreka = None;
        if let Ok(mut g) = self.counters.nodes[node].unavailable.lock() {
            *g = None;
        }
        let features = modules::features_in_use(&self.cfg);
        let asked = modules::modules_to_ask(&features);
        let requests = asked
            .iter()
            .map(|m| EslRequest::Api(format!("module_exists {m}")))
            .collect();
        self.ask(node, requests, Pending::ModuleCheck { node, asked });
    }

    pub(super) fn on_module_check(
        &mut self,
        node: usize,
        asked: Vec<&'static str>,
        replies: Vec<Reply>,
    ) {
        let mut replies = replies.into_iter();
        let loaded: Vec<(&'static str, Option<bool>)> = asked
            .iter()
            .map(|m| match replies.next() {
                Some(Ok(Answer::Api(body))) => (*m, modules::read_answer(&body)),
                _ => (*m, None),
            })
            .collect();
        if loaded.iter().all(|(_, l)| l.is_none()) {
            // The connection went: the next one asks again.
            return;
        }
        let features = modules::features_in_use(&self.cfg);
        let gaps = modules::unavailable(&features, &loaded);
        let name = self.nodes[node].name.clone();
        if gaps.is_empty() {
            info!(node = %name, modules = loaded.len(), "every module switchyard's features need is loaded");
        }
        for gap in &gaps {
            let FeatureGap { feature, module } = *gap;
            let instead = match feature {
                Feature::OrekaRecording => "; its `oreka` recordings use recorder legs instead",
                _ => "",
            };
            warn!(
                node = %name,
                feature = feature.as_str(),
                module,
                "node {name}: {gap}{instead}"
            );
        }
        if let Ok(mut g) = self.counters.nodes[node].unavailable.lock() {
            *g = Some(gaps);
        }
        if self.cfg.recording.oreka && self.cfg.recording.endpoint.is_some() {
            // Only a yes runs oreka_record: running an application FreeSWITCH lacks hangs
            // the channel up.
            let oreka = loaded
                .iter()
                .find(|(m, _)| *m == "mod_oreka")
                .and_then(|(_, l)| *l);
            self.nodes[node].oreka = oreka;
        }
    }
}
