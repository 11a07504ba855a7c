//! `model.metrics`: cyto_dl's `{"<split>/<type>/<part>": <torchmetrics metric>}`. A `loss`
//! type averages a loss (`MeanMetric`: the loss of head `<part>`, or the total); any other type
//! compares head `<part>`'s prediction with its target. The split is matched by prefix against
//! the stage, as cyto_dl matches it; predict computes no metrics.

use cytodl_schema::{Component, Kind, Map, MeanMetric, MetricConfig, MetricKey};

use super::{lit, Checker};
use crate::config::node::Value;
use crate::diag::did_you_mean;

impl Checker<'_> {
    /// The typed `model.metrics` (`None` when absent or when an entry is wrong; each wrong entry
    /// is an error at its node) and the names it logs besides the losses. `loss_parts` are what a
    /// loss metric may name (heads, or a GAN's `generator_loss` / `discriminator_loss`).
    pub(super) fn metrics(&mut self, heads: &[String], loss_parts: &[String]) -> (Option<Map<MetricConfig>>, Vec<String>) {
        let path = "model.metrics";
        let Some(node) = self.cfg(path).filter(|n| !matches!(n.value, Value::Null)) else { return (None, Vec::new()) };
        let Some(map) = node.as_map() else {
            self.err(format!("`{path}` must map `<split>/<type>/<head>` names to metrics, found {}", super::show(node)), node, path, None);
            return (None, Vec::new());
        };
        let mut ok = true;
        let mut names = Vec::new();
        let mean = <MeanMetric as Component>::SPEC;
        for (name, entry) in map {
            let at = format!("{path}.{name}");
            let Some(spec) = self.component(entry, &at, Kind::Metric) else {
                ok = false;
                continue;
            };
            let Some(key) = MetricKey::parse(name) else {
                self.err(format!("metric name `{name}` is not `<split>/<type>/<head>`"), entry, &at, Some(format!("e.g. `val/{name}/<head>`")));
                ok = false;
                continue;
            };
            if key.stage().is_none() {
                self.err(
                    format!("metric `{name}`: split `{}` is none of train, val, test (metrics are logged in those stages only)", key.split),
                    entry,
                    &at,
                    did_you_mean(key.split, ["train", "val", "test"]),
                );
                ok = false;
                continue;
            }
            let is_mean = spec.native == mean.native;
            // a metric kind is wrong where its `_target_` was set (perhaps over an inherited entry)
            let target_at = entry.child("_target_").unwrap_or(entry);
            if key.kind == "loss" {
                if !is_mean {
                    self.err(
                        format!("metric `{name}` averages a loss, which takes torchmetrics.MeanMetric, not `{}`", spec.names[0]),
                        target_at,
                        &at,
                        Some(format!("compare predictions under another type: `{}/<type>/{}`", key.split, key.part.unwrap_or("<head>"))),
                    );
                    ok = false;
                } else if let Some(part) = key.part.filter(|p| !loss_parts.iter().any(|h| h == p)) {
                    self.err(
                        format!("metric `{name}`: `{part}` is not a loss this model logs ({})", loss_parts.join(", ")),
                        entry,
                        &at,
                        did_you_mean(part, loss_parts.iter().map(String::as_str)),
                    );
                    ok = false;
                }
            } else if is_mean {
                self.err(
                    format!("metric `{name}`: torchmetrics.MeanMetric averages losses; a `{}` metric compares a prediction with its target", key.kind),
                    target_at,
                    &at,
                    Some(format!(
                        "average the loss as `{}/loss/<head>`, or name a comparison (BinaryF1Score, StructuralSimilarityIndexMeasure, ...)",
                        key.split
                    )),
                );
                ok = false;
            } else {
                match key.part {
                    None => {
                        self.err(
                            format!("metric `{name}` names no head: it compares one head's prediction with its target"),
                            entry,
                            &at,
                            heads.first().map(|h| format!("`{name}/{h}`")),
                        );
                        ok = false;
                    }
                    Some(part) if !heads.iter().any(|h| h == part) => {
                        self.err(
                            format!("metric `{name}`: `{part}` is not a head of this model ({})", heads.join(", ")),
                            entry,
                            &at,
                            did_you_mean(part, heads.iter().map(String::as_str)),
                        );
                        ok = false;
                    }
                    Some(_) => {}
                }
            }
            names.push(name.clone());
        }
        if !ok {
            return (None, names);
        }
        let value = cytodl_schema::Lit::Map(map.iter().map(|(k, v)| (k.clone(), lit(v))).collect());
        let typed = self.typed_lit::<Map<MetricConfig>>(&value, node, path);
        (typed, names)
    }
}
