//! Lightning's `EarlyStopping`: stop when the monitored metric has not improved by `min_delta`
//! for `patience` checks; with `check_finite`, a NaN or infinite value stops at once.

/// Whether lower or higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Min,
    Max,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "min" => Some(Mode::Min),
            "max" => Some(Mode::Max),
            _ => None,
        }
    }

    /// Whether `value` improves on `best` by more than `min_delta` (Lightning's comparison).
    pub fn improves(self, value: f64, best: f64, min_delta: f64) -> bool {
        match self {
            Mode::Min => value < best - min_delta,
            Mode::Max => value > best + min_delta,
        }
    }

    pub fn worst(self) -> f64 {
        match self {
            Mode::Min => f64::INFINITY,
            Mode::Max => f64::NEG_INFINITY,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    pub monitor: String,
    pub patience: u32,
    pub mode: Mode,
    pub min_delta: f64,
    pub check_finite: bool,
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
    pub fn new(monitor: &str, patience: u32, mode: Mode, min_delta: f64, check_finite: bool) -> Self {
        // Lightning stores min_delta with the sign of the mode; we keep it positive and compare.
        EarlyStopping { monitor: monitor.to_string(), patience, mode, min_delta: min_delta.abs(), check_finite, best: mode.worst(), wait: 0 }
    }

    /// Records one value of the monitored metric; `Some` when training should stop.
    pub fn update(&mut self, value: f64) -> Option<Stop> {
        if self.check_finite && !value.is_finite() {
            return Some(Stop::NotFinite { monitor: self.monitor.clone(), value });
        }
        if self.mode.improves(value, self.best, self.min_delta) {
            self.best = value;
            self.wait = 0;
            return None;
        }
        self.wait += 1;
        (self.wait >= self.patience).then(|| Stop::NoImprovement { monitor: self.monitor.clone(), patience: self.patience, best: self.best })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patience_and_min_delta() {
        let mut es = EarlyStopping::new("val/loss", 2, Mode::Min, 0.1, true);
        assert_eq!(es.update(1.0), None);
        assert_eq!(es.update(0.95), None, "not better by min_delta: wait 1");
        assert!(matches!(es.update(0.92), Some(Stop::NoImprovement { .. })));
        let mut es = EarlyStopping::new("val/acc", 1, Mode::Max, 0.0, true);
        assert_eq!(es.update(0.5), None);
        assert_eq!(es.update(0.6), None);
        assert!(matches!(es.update(f64::NAN), Some(Stop::NotFinite { .. })));
    }
}
