//! Lightning's `ModelCheckpoint` decisions, apart from the bytes: which files to write and which
//! to delete after an epoch (top-k by a monitored metric, `last.ckpt`, `every_n_epochs`), and
//! the file names (`epoch_{epoch:03d}`, `{val/loss:.2f}`...).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cytodl_schema::ModelCheckpoint;

/// The callback's state around its config (`callbacks.model_checkpoint`, as declared in
/// `cytodl-schema`): the folder it resolved to and the checkpoints it keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointPolicy {
    pub config: ModelCheckpoint,
    pub dirpath: PathBuf,
    /// (score, file) of the kept checkpoints; saved in checkpoints so a resume continues the ranking.
    pub best: Vec<(f64, PathBuf)>,
}

/// What to do after an epoch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub write: Vec<PathBuf>,
    pub delete: Vec<PathBuf>,
}

impl CheckpointPolicy {
    /// The policy of `config` for a run whose folder is `run_dir`.
    pub fn new(config: ModelCheckpoint, run_dir: &Path) -> Self {
        let dirpath = match &config.dirpath {
            Some(p) => p.under(run_dir),
            None => run_dir.join(ModelCheckpoint::DEFAULT_DIR),
        };
        CheckpointPolicy { config, dirpath, best: Vec::new() }
    }

    /// The file name for an epoch: `{name}` / `{name:fmt}` placeholders filled with epoch, step
    /// or metrics (`epoch_{epoch:03d}` -> `epoch_007.ckpt`).
    pub fn format_name(&self, epoch: u64, step: u64, metrics: &BTreeMap<String, f64>) -> String {
        let template = self.config.filename.clone().unwrap_or_else(|| "{epoch}-{step}".into());
        let mut out = String::new();
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                out.push_str(&rest[open..]);
                rest = "";
                break;
            };
            let inner = &rest[open + 1..open + close];
            let (name, spec) = inner.split_once(':').unwrap_or((inner, ""));
            let value = match name {
                "epoch" => Some(epoch as f64),
                "step" => Some(step as f64),
                other => metrics.get(other).copied(),
            };
            if self.config.auto_insert_metric_name {
                out.push_str(&format!("{name}="));
            }
            match value {
                Some(v) => out.push_str(&format_spec(v, spec, matches!(name, "epoch" | "step"))),
                None => out.push_str(&format!("{{{inner}}}")),
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        format!("{out}.ckpt")
    }

    /// Decides the files for the end of `epoch` (0-based), given the epoch's metrics.
    pub fn on_epoch_end(&mut self, epoch: u64, step: u64, metrics: &BTreeMap<String, f64>) -> Plan {
        let mut plan = Plan::default();
        let c = &self.config;
        let due = c.period() > 0 && (epoch + 1).is_multiple_of(c.period() as u64);
        if due && c.save_top_k != 0 {
            let path = self.dirpath.join(self.format_name(epoch, step, metrics));
            match &c.monitor {
                None => {
                    // Without a monitor Lightning keeps the latest (or all with save_top_k = -1).
                    if c.save_top_k != -1 {
                        plan.delete.extend(self.best.drain(..).map(|(_, p)| p).filter(|p| *p != path));
                    }
                    self.best.push((epoch as f64, path.clone()));
                    plan.write.push(path);
                }
                Some(m) => {
                    if let Some(score) = metrics.get(m).copied().filter(|s| !s.is_nan()) {
                        let keep_all = c.save_top_k < 0;
                        let full = !keep_all && self.best.len() as i64 >= c.save_top_k;
                        let worst = self.worst_index();
                        let better_than_worst = worst.is_some_and(|w| c.mode.improves(score, self.best[w].0, 0.0));
                        if !full || better_than_worst {
                            if full {
                                if let Some(w) = worst {
                                    let (_, old) = self.best.remove(w);
                                    if old != path {
                                        plan.delete.push(old);
                                    }
                                }
                            }
                            self.best.push((score, path.clone()));
                            plan.write.push(path);
                        }
                    }
                }
            }
        }
        if c.writes_last() {
            plan.write.push(self.dirpath.join("last.ckpt"));
        }
        plan
    }

    /// The best kept checkpoint (for `test` after `fit`, as Lightning's `ckpt_path="best"`).
    pub fn best_path(&self) -> Option<&PathBuf> {
        let mut best: Option<&(f64, PathBuf)> = None;
        for entry in &self.best {
            if best.is_none_or(|b| self.config.mode.improves(entry.0, b.0, 0.0)) {
                best = Some(entry);
            }
        }
        best.map(|(_, p)| p)
    }

    fn worst_index(&self) -> Option<usize> {
        let mut worst: Option<usize> = None;
        for (i, (s, _)) in self.best.iter().enumerate() {
            if worst.is_none_or(|w| self.config.mode.improves(self.best[w].0, *s, 0.0)) {
                worst = Some(i);
            }
        }
        worst
    }
}

/// Python's format mini-language for the specs Lightning users write (`03d`, `.2f`, `.4f`).
fn format_spec(v: f64, spec: &str, integer: bool) -> String {
    if let Some(d) = spec.strip_suffix('d') {
        let width: usize = d.trim_start_matches('0').parse().unwrap_or(0);
        return if d.starts_with('0') { format!("{:0width$}", v as i64, width = width) } else { format!("{:width$}", v as i64, width = width) };
    }
    if let Some(p) = spec.strip_prefix('.').and_then(|p| p.strip_suffix('f')) {
        let prec: usize = p.parse().unwrap_or(6);
        return format!("{v:.prec$}");
    }
    if integer {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: f64) -> BTreeMap<String, f64> {
        [("val/loss".to_string(), v)].into_iter().collect()
    }

    /// cyto_dl's `callbacks/model_checkpoint.yaml`, in the run folder `ck/..`.
    fn cyto_dl_policy() -> CheckpointPolicy {
        let config = ModelCheckpoint {
            dirpath: Some(cytodl_schema::ConfigPath::in_run("ck")),
            filename: Some("epoch_{epoch:03d}".into()),
            monitor: Some("val/loss".into()),
            save_last: Some(true),
            auto_insert_metric_name: false,
            ..ModelCheckpoint::default()
        };
        CheckpointPolicy::new(config, Path::new(""))
    }

    fn lightning_default() -> CheckpointPolicy {
        CheckpointPolicy::new(ModelCheckpoint { dirpath: Some(cytodl_schema::ConfigPath::in_run("ck")), ..ModelCheckpoint::default() }, Path::new(""))
    }

    #[test]
    fn names_like_lightning() {
        let p = cyto_dl_policy();
        assert_eq!(p.format_name(7, 40, &m(1.0)), "epoch_007.ckpt");
        let mut q = lightning_default();
        q.config.filename = Some("{epoch}-{val/loss:.2f}".into());
        assert_eq!(q.format_name(3, 9, &m(0.12345)), "epoch=3-val/loss=0.12.ckpt");
    }

    #[test]
    fn keeps_the_best_and_last() {
        let mut p = cyto_dl_policy();
        let plan = p.on_epoch_end(0, 5, &m(1.0));
        assert_eq!(plan.write, vec![PathBuf::from("ck/epoch_000.ckpt"), PathBuf::from("ck/last.ckpt")]);
        let plan = p.on_epoch_end(1, 11, &m(1.2));
        assert_eq!(plan.write, vec![PathBuf::from("ck/last.ckpt")], "worse: only last.ckpt");
        let plan = p.on_epoch_end(2, 17, &m(0.8));
        assert_eq!(plan.write[0], PathBuf::from("ck/epoch_002.ckpt"));
        assert_eq!(plan.delete, vec![PathBuf::from("ck/epoch_000.ckpt")]);
        assert_eq!(p.best_path(), Some(&PathBuf::from("ck/epoch_002.ckpt")));
    }

    #[test]
    fn top_k_every_n_and_no_monitor() {
        let mut p = cyto_dl_policy();
        p.config.save_top_k = 2;
        p.config.save_last = Some(false);
        p.config.every_n_epochs = Some(2);
        assert!(p.on_epoch_end(0, 1, &m(1.0)).write.is_empty(), "not due on epoch 0");
        assert_eq!(p.on_epoch_end(1, 2, &m(1.0)).write.len(), 1);
        assert_eq!(p.on_epoch_end(3, 4, &m(2.0)).write.len(), 1);
        let plan = p.on_epoch_end(5, 6, &m(0.5));
        assert_eq!(plan.delete, vec![PathBuf::from("ck/epoch_003.ckpt")]);
        let mut q = lightning_default();
        q.on_epoch_end(0, 1, &BTreeMap::new());
        let plan = q.on_epoch_end(1, 2, &BTreeMap::new());
        assert_eq!(plan.delete.len(), 1, "without a monitor only the latest stays");
    }
}
