//! Learning-rate schedules with torch 2.5's values, stepped once per epoch (Lightning's default
//! `interval: epoch`; cyto_dl returns `([opt], [sched])`). The lr used during epoch `e`
//! (0-based) is [`Scheduler::lr_at`]`(e)`: the value after `e` calls of torch's `scheduler.step()`.
//!
//! torch's chainable schedulers (Exponential, Step, MultiStep, CosineAnnealing) compute each lr
//! from the previous one (`get_lr`), not from the closed form, and the two differ in the last
//! bits (for CosineAnnealing also in how eta_min is reached). `lr_at` replays that recurrence in
//! f64 (Python floats) from epoch 0, so the values match torch's exactly and depend only on
//! `(base_lr, epoch)`: the whole scheduler state needed for resume is the epoch counter.

use std::f64::consts::PI;

/// A schedule parameter that cannot be used, or an epoch torch would refuse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// `param` is named as in torch (`gamma`, `step_size`, `T_max`, `max_lr`, `pct_start`, ...).
    #[error("invalid scheduler parameter `{param}`: {reason}")]
    InvalidParameter { param: &'static str, reason: String },
    /// OneCycleLR past its end: torch raises "Tried to step {step} times. The specified number of
    /// total steps is {total_steps}".
    #[error("OneCycleLR: tried to step {step} times; the specified number of total steps is {total_steps}")]
    PastEnd { step: u64, total_steps: u64 },
    /// A OneCycleLR phase of zero length reached (torch: ZeroDivisionError), e.g.
    /// `pct_start * total_steps == 1`.
    #[error("OneCycleLR: phase {phase} has zero length (pct_start * total_steps = {value}); torch divides by zero here")]
    ZeroLengthPhase { phase: usize, value: f64 },
}

fn invalid(param: &'static str, reason: impl Into<String>) -> ScheduleError {
    ScheduleError::InvalidParameter { param, reason: reason.into() }
}

fn finite(param: &'static str, v: f64) -> Result<(), ScheduleError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(invalid(param, format!("must be finite, got {v}")))
    }
}

/// OneCycleLR's `anneal_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anneal {
    #[default]
    Cos,
    Linear,
}

impl Anneal {
    fn apply(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            // torch `_annealing_cos`
            Self::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            // torch `_annealing_linear`
            Self::Linear => (end - start) * pct + start,
        }
    }
}

/// `torch.optim.lr_scheduler.OneCycleLR`. The optimizer's own lr is ignored: the schedule starts
/// at `max_lr / div_factor`. With `cycle_momentum` (torch's default) the optimizer's momentum /
/// Adam beta1 also cycles between `max_momentum` and `base_momentum`: see
/// [`Scheduler::momentum_at`].
#[derive(Debug, Clone, PartialEq)]
pub struct OneCycleConfig {
    pub max_lr: f64,
    pub total_steps: u64,
    pub pct_start: f64,
    pub anneal_strategy: Anneal,
    pub cycle_momentum: bool,
    pub base_momentum: f64,
    pub max_momentum: f64,
    pub div_factor: f64,
    pub final_div_factor: f64,
    pub three_phase: bool,
}

impl OneCycleConfig {
    /// torch's defaults with `total_steps`.
    pub fn new(max_lr: f64, total_steps: u64) -> Self {
        Self {
            max_lr,
            total_steps,
            pct_start: 0.3,
            anneal_strategy: Anneal::Cos,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }

    /// torch's defaults with `total_steps = epochs * steps_per_epoch` (cyto_dl passes
    /// `epochs=${trainer.max_epochs}`, `steps_per_epoch=1`).
    pub fn from_epochs(max_lr: f64, epochs: u64, steps_per_epoch: u64) -> Result<Self, ScheduleError> {
        if epochs == 0 {
            return Err(invalid("epochs", "expected a positive integer, got 0"));
        }
        if steps_per_epoch == 0 {
            return Err(invalid("steps_per_epoch", "expected a positive integer, got 0"));
        }
        let total = epochs.checked_mul(steps_per_epoch).ok_or_else(|| invalid("steps_per_epoch", "epochs * steps_per_epoch overflows"))?;
        Ok(Self::new(max_lr, total))
    }

    fn validate(&self) -> Result<(), ScheduleError> {
        if self.total_steps == 0 {
            return Err(invalid("total_steps", "expected a positive integer, got 0"));
        }
        if !(0.0..=1.0).contains(&self.pct_start) {
            return Err(invalid("pct_start", format!("expected a float between 0 and 1, got {}", self.pct_start)));
        }
        for (name, v) in [
            ("max_lr", self.max_lr),
            ("div_factor", self.div_factor),
            ("final_div_factor", self.final_div_factor),
            ("base_momentum", self.base_momentum),
            ("max_momentum", self.max_momentum),
        ] {
            finite(name, v)?;
        }
        if self.max_lr < 0.0 {
            return Err(invalid("max_lr", format!("must be >= 0, got {}", self.max_lr)));
        }
        if self.div_factor == 0.0 {
            return Err(invalid("div_factor", "must not be 0"));
        }
        if self.final_div_factor == 0.0 {
            return Err(invalid("final_div_factor", "must not be 0"));
        }
        Ok(())
    }

    /// `(end_step, start_lr, end_lr, start_momentum, end_momentum)` per phase, as torch builds them.
    fn phases(&self) -> Vec<(f64, f64, f64, f64, f64)> {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let (max, base_m, max_m) = (self.max_lr, self.base_momentum, self.max_momentum);
        let t = self.total_steps as f64;
        if self.three_phase {
            vec![
                (self.pct_start * t - 1.0, initial, max, max_m, base_m),
                (2.0 * self.pct_start * t - 2.0, max, initial, base_m, max_m),
                (t - 1.0, initial, min, max_m, max_m),
            ]
        } else {
            vec![(self.pct_start * t - 1.0, initial, max, max_m, base_m), (t - 1.0, max, min, base_m, max_m)]
        }
    }

    /// torch `OneCycleLR.get_lr` at `step_num`: `(lr, momentum)`.
    fn at(&self, step: u64) -> Result<(f64, f64), ScheduleError> {
        if step > self.total_steps {
            return Err(ScheduleError::PastEnd { step, total_steps: self.total_steps });
        }
        let phases = self.phases();
        let s = step as f64;
        let mut start_step = 0.0;
        for (i, &(end_step, start_lr, end_lr, start_m, end_m)) in phases.iter().enumerate() {
            if s <= end_step || i == phases.len() - 1 {
                let span = end_step - start_step;
                if span == 0.0 {
                    return Err(ScheduleError::ZeroLengthPhase { phase: i, value: self.pct_start * self.total_steps as f64 });
                }
                let pct = (s - start_step) / span;
                return Ok((self.anneal_strategy.apply(start_lr, end_lr, pct), self.anneal_strategy.apply(start_m, end_m, pct)));
            }
            start_step = end_step;
        }
        // Unreachable: the last phase always matches.
        Err(ScheduleError::PastEnd { step, total_steps: self.total_steps })
    }
}

/// The schedules cyto_dl configs use, with torch's parameter names and meanings.
#[derive(Debug, Clone, PartialEq)]
pub enum LrSchedule {
    /// No scheduler: the base lr throughout.
    Constant,
    /// `ExponentialLR(gamma)`: `lr_e = lr_{e-1} * gamma`.
    Exponential { gamma: f64 },
    /// `StepLR(step_size, gamma)`: `lr_e = lr_{e-1} * gamma` when `e % step_size == 0`.
    Step { step_size: u64, gamma: f64 },
    /// `MultiStepLR(milestones, gamma)`: `lr_e = lr_{e-1} * gamma^(count of e in milestones)`.
    MultiStep { milestones: Vec<u64>, gamma: f64 },
    /// `CosineAnnealingLR(T_max, eta_min)`, torch's recurrence (periodic past `T_max`).
    CosineAnnealing { t_max: u64, eta_min: f64 },
    /// `OneCycleLR`.
    OneCycle(OneCycleConfig),
}

impl LrSchedule {
    /// torch's constructor checks (plus finiteness), naming the parameter.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        match self {
            Self::Constant => Ok(()),
            Self::Exponential { gamma } | Self::MultiStep { gamma, .. } => finite("gamma", *gamma),
            Self::Step { step_size, gamma } => {
                if *step_size == 0 {
                    return Err(invalid("step_size", "must be >= 1"));
                }
                finite("gamma", *gamma)
            }
            Self::CosineAnnealing { t_max, eta_min } => {
                if *t_max == 0 {
                    return Err(invalid("T_max", "must be >= 1"));
                }
                finite("eta_min", *eta_min)
            }
            Self::OneCycle(c) => c.validate(),
        }
    }

    /// The lr during epoch `epoch` for an optimizer whose configured lr is `base_lr`.
    pub fn lr_at(&self, base_lr: f64, epoch: u64) -> Result<f64, ScheduleError> {
        self.validate()?;
        let mut lr = base_lr;
        match self {
            Self::Constant => {}
            Self::Exponential { gamma } => {
                for _ in 1..=epoch {
                    lr *= gamma;
                }
            }
            Self::Step { step_size, gamma } => {
                for e in 1..=epoch {
                    if e % step_size == 0 {
                        lr *= gamma;
                    }
                }
            }
            Self::MultiStep { milestones, gamma } => {
                let mut sorted = milestones.clone();
                sorted.sort_unstable();
                let mut i = 0;
                while i < sorted.len() {
                    let m = sorted[i];
                    let mut count = 0;
                    while i < sorted.len() && sorted[i] == m {
                        count += 1;
                        i += 1;
                    }
                    // torch's constructor already steps to epoch 0, where a milestone 0 applies.
                    if m <= epoch {
                        lr *= gamma.powf(count as f64);
                    }
                }
            }
            Self::CosineAnnealing { t_max, eta_min } => {
                let t = *t_max as f64;
                let eta = *eta_min;
                for e in 1..=epoch {
                    let ef = e as f64;
                    if (e as i128 - 1 - *t_max as i128).rem_euclid(2 * *t_max as i128) == 0 {
                        lr += (base_lr - eta) * (1.0 - (PI / t).cos()) / 2.0;
                    } else {
                        lr = (1.0 + (PI * ef / t).cos()) / (1.0 + (PI * (ef - 1.0) / t).cos()) * (lr - eta) + eta;
                    }
                }
            }
            Self::OneCycle(c) => lr = c.at(epoch)?.0,
        }
        Ok(lr)
    }

    /// The momentum / Adam beta1 OneCycleLR sets for `epoch` (`None` for other schedules or
    /// without `cycle_momentum`).
    pub fn momentum_at(&self, epoch: u64) -> Result<Option<f64>, ScheduleError> {
        match self {
            Self::OneCycle(c) if c.cycle_momentum => {
                c.validate()?;
                Ok(Some(c.at(epoch)?.1))
            }
            _ => Ok(None),
        }
    }
}

/// What a checkpoint stores for the scheduler: torch's `last_epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedulerState {
    pub epoch: u64,
}

/// A schedule bound to the optimizer's base lr, with the epoch counter.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduler {
    schedule: LrSchedule,
    base_lr: f64,
    epoch: u64,
}

impl Scheduler {
    /// Validates the schedule and `lr` (torch: "Invalid learning rate" when negative) and
    /// computes epoch 0 as torch's constructor does.
    pub fn new(schedule: LrSchedule, base_lr: f64) -> Result<Self, ScheduleError> {
        if !(base_lr >= 0.0 && base_lr.is_finite()) {
            return Err(invalid("lr", format!("must be finite and >= 0, got {base_lr}")));
        }
        // torch's constructor already computes epoch 0 (and raises where that fails).
        schedule.lr_at(base_lr, 0)?;
        Ok(Self { schedule, base_lr, epoch: 0 })
    }

    pub fn schedule(&self) -> &LrSchedule {
        &self.schedule
    }

    pub fn base_lr(&self) -> f64 {
        self.base_lr
    }

    /// The lr during epoch `epoch` (pure: does not touch the counter).
    pub fn lr_at(&self, epoch: u64) -> Result<f64, ScheduleError> {
        self.schedule.lr_at(self.base_lr, epoch)
    }

    /// OneCycleLR's momentum / beta1 for `epoch`, to pass to
    /// [`super::Optimizer::set_momentum`]; `None` when the schedule does not cycle momentum.
    pub fn momentum_at(&self, epoch: u64) -> Result<Option<f64>, ScheduleError> {
        self.schedule.momentum_at(epoch)
    }

    /// The current epoch (torch `last_epoch`).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The lr for the current epoch.
    pub fn lr(&self) -> Result<f64, ScheduleError> {
        self.lr_at(self.epoch)
    }

    /// torch `scheduler.step()`: advance to the next epoch and return its lr.
    pub fn step(&mut self) -> Result<f64, ScheduleError> {
        let lr = self.lr_at(self.epoch + 1)?;
        self.epoch += 1;
        Ok(lr)
    }

    pub fn state(&self) -> SchedulerState {
        SchedulerState { epoch: self.epoch }
    }

    pub fn load_state(&mut self, state: SchedulerState) {
        self.epoch = state.epoch;
    }
}

impl LrSchedule {
    /// The schedule a config names (`cytodl-schema`), or a constant lr without one. OneCycleLR
    /// without `total_steps` cycles over `epochs * steps_per_epoch` (stepped per epoch).
    pub fn from_config(c: Option<&cytodl_schema::SchedulerConfig>) -> Result<Self, ScheduleError> {
        use cytodl_schema::SchedulerConfig as C;
        let count = |param: &'static str, v: i64| u64::try_from(v).map_err(|_| invalid(param, format!("must be at least 0, got {v}")));
        let schedule = match c {
            None => LrSchedule::Constant,
            Some(C::ExponentialLR(s)) => LrSchedule::Exponential { gamma: s.gamma },
            Some(C::StepLR(s)) => LrSchedule::Step { step_size: count("step_size", s.step_size)?, gamma: s.gamma },
            Some(C::MultiStepLR(s)) => {
                LrSchedule::MultiStep { milestones: s.milestones.iter().map(|m| count("milestones", *m)).collect::<Result<_, _>>()?, gamma: s.gamma }
            }
            Some(C::CosineAnnealingLR(s)) => LrSchedule::CosineAnnealing { t_max: count("T_max", s.t_max)?, eta_min: s.eta_min },
            Some(C::OneCycleLR(s)) => {
                let base = match (s.total_steps, s.epochs, s.steps_per_epoch) {
                    (Some(t), _, _) => OneCycleConfig::new(s.max_lr, count("total_steps", t)?),
                    (None, Some(e), Some(n)) => OneCycleConfig::from_epochs(s.max_lr, count("epochs", e)?, count("steps_per_epoch", n)?)?,
                    _ => return Err(invalid("total_steps", "give total_steps, or epochs and steps_per_epoch")),
                };
                LrSchedule::OneCycle(OneCycleConfig {
                    pct_start: s.pct_start,
                    anneal_strategy: match s.anneal_strategy {
                        cytodl_schema::Anneal::Cos => Anneal::Cos,
                        cytodl_schema::Anneal::Linear => Anneal::Linear,
                    },
                    cycle_momentum: s.cycle_momentum,
                    base_momentum: s.base_momentum,
                    max_momentum: s.max_momentum,
                    div_factor: s.div_factor,
                    final_div_factor: s.final_div_factor,
                    three_phase: s.three_phase,
                    ..base
                })
            }
        };
        schedule.validate()?;
        Ok(schedule)
    }
}
