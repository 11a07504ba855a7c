//! Lightning's `EarlyStopping`: stop when the monitored metric has not improved by `min_delta`
//! for `patience` checks; with `check_finite`, a NaN or infinite value stops at once.

pub use cytodl_schema::Mode;

/// The callback's state around its config (`callbacks.early_stopping`, as declared in
/// `cytodl-schema`).
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    pub config: cytodl_schema::EarlyStopping,
    /// State (saved in checkpoints so a resumed run keeps counting).
    pub best: f64,
    pub wait: u32,
}

/// Why training stopped early.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    NotFinite { monitor: String, value: f64 },
    NoImprovement { monitor: String, patience: u32, best: f64 },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::NotFinite { monitor, value } => write!(f, "Monitored metric {monitor} = {value} is not finite. Previous best value was kept; stopping."),
            Stop::NoImprovement { monitor, patience, best } => {
                write!(f, "Monitored metric {monitor} did not improve in the last {patience} records. Best score: {best:.3}. Signaling Trainer to stop.")
            }
        }
    }
}

impl EarlyStopping {
    pub fn new(config: cytodl_schema::EarlyStopping) -> Self {
        let best = config.mode.worst();
        EarlyStopping { config, best, wait: 0 }
    }

    /// The monitored metric.
    pub fn monitor(&self) -> &str {
        &self.config.monitor
    }

    /// Records one value of the monitored metric; `Some` when training should stop.
    pub fn update(&mut self, value: f64) -> Option<Stop> {
        let c = &self.config;
        if c.check_finite && !value.is_finite() {
            return Some(Stop::NotFinite { monitor: c.monitor.clone(), value });
        }
        // Lightning stores min_delta with the sign of the mode; it is kept positive here.
        if c.mode.improves(value, self.best, c.min_delta.abs()) {
            self.best = value;
            self.wait = 0;
            return None;
        }
        self.wait += 1;
        let patience = u32::try_from(c.patience).unwrap_or(0);
        (self.wait >= patience).then(|| Stop::NoImprovement { monitor: c.monitor.clone(), patience, best: self.best })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn early_stopping(monitor: &str, patience: i64, mode: Mode, min_delta: f64) -> EarlyStopping {
        EarlyStopping::new(cytodl_schema::EarlyStopping { monitor: monitor.into(), patience, mode, min_delta, check_finite: true })
    }

    #[test]
    fn patience_and_min_delta() {
        let mut es = early_stopping("val/loss", 2, Mode::Min, 0.1);
        assert_eq!(es.update(1.0), None);
        assert_eq!(es.update(0.95), None, "not better by min_delta: wait 1");
        assert!(matches!(es.update(0.92), Some(Stop::NoImprovement { .. })));
        let mut es = early_stopping("val/acc", 1, Mode::Max, 0.0);
        assert_eq!(es.update(0.5), None);
        assert_eq!(es.update(0.6), None);
        assert!(matches!(es.update(f64::NAN), Some(Stop::NotFinite { .. })));
    }
}
