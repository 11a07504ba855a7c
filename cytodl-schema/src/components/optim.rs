//! Optimizers and learning-rate schedulers, with torch's names and defaults.

use crate::{choice, component, kind};

component! {
    /// Adam with PyTorch's semantics.
    #[kind(Optimizer)]
    #[names("torch.optim.Adam")]
    pub struct Adam {
        /// learning rate
        pub lr: f64 = 0.001,
        /// moment decay
        pub betas: Vec<f64> = vec![0.9, 0.999],
        /// denominator term
        pub eps: f64 = 1e-8,
        /// L2 penalty
        pub weight_decay: f64 = 0.0,
        /// AMSGrad
        pub amsgrad: bool = false,
    }
}

component! {
    /// AdamW with PyTorch's semantics.
    #[kind(Optimizer)]
    #[names("torch.optim.AdamW")]
    pub struct AdamW {
        /// learning rate
        pub lr: f64 = 0.001,
        /// moment decay
        pub betas: Vec<f64> = vec![0.9, 0.999],
        /// denominator term
        pub eps: f64 = 1e-8,
        /// decoupled weight decay
        pub weight_decay: f64 = 0.01,
        /// AMSGrad
        pub amsgrad: bool = false,
    }
}

component! {
    /// SGD with PyTorch's semantics.
    #[kind(Optimizer)]
    #[names("torch.optim.SGD")]
    pub struct SGD {
        /// learning rate
        pub lr: f64,
        /// momentum
        pub momentum: f64 = 0.0,
        /// dampening
        pub dampening: f64 = 0.0,
        /// L2 penalty
        pub weight_decay: f64 = 0.0,
        /// Nesterov momentum
        pub nesterov: bool = false,
    }
}

kind! {
    /// An optimizer (`model.optimizer.<name>`).
    pub enum OptimizerConfig: Optimizer {
        Adam,
        AdamW,
        SGD,
    }
}

impl OptimizerConfig {
    /// The configured learning rate (the run's base lr).
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Adam(o) => o.lr,
            OptimizerConfig::AdamW(o) => o.lr,
            OptimizerConfig::SGD(o) => o.lr,
        }
    }
}

component! {
    /// lr * gamma each epoch.
    #[kind(Scheduler)]
    #[names("torch.optim.lr_scheduler.ExponentialLR")]
    pub struct ExponentialLR {
        /// decay per epoch
        pub gamma: f64,
    }
}

component! {
    /// Step decay.
    #[kind(Scheduler)]
    #[names("torch.optim.lr_scheduler.StepLR")]
    pub struct StepLR {
        /// epochs between decays
        pub step_size: i64,
        /// decay
        pub gamma: f64 = 0.1,
    }
}

component! {
    /// Decay at milestones.
    #[kind(Scheduler)]
    #[names("torch.optim.lr_scheduler.MultiStepLR")]
    pub struct MultiStepLR {
        /// epochs at which to decay
        pub milestones: Vec<i64>,
        /// decay
        pub gamma: f64 = 0.1,
    }
}

component! {
    /// Cosine annealing.
    #[kind(Scheduler)]
    #[names("torch.optim.lr_scheduler.CosineAnnealingLR")]
    pub struct CosineAnnealingLR {
        /// half period in epochs
        #[yaml = "T_max"]
        pub t_max: i64,
        /// minimum lr
        pub eta_min: f64 = 0.0,
    }
}

choice! {
    /// OneCycleLR's annealing.
    pub enum Anneal {
        Cos = "cos",
        Linear = "linear",
    }
}

component! {
    /// One cycle: warm up to max_lr, then anneal (stepped once per epoch, as cyto_dl's configs
    /// give `steps_per_epoch: 1`).
    #[kind(Scheduler)]
    #[names("torch.optim.lr_scheduler.OneCycleLR")]
    pub struct OneCycleLR {
        /// the peak learning rate
        pub max_lr: f64,
        /// steps in the cycle (or epochs x steps_per_epoch)
        pub total_steps: Option<i64> = None,
        /// epochs in the cycle
        pub epochs: Option<i64> = None,
        /// steps per epoch (1: the schedule steps once per epoch)
        pub steps_per_epoch: Option<i64> = None,
        /// fraction of the cycle spent warming up
        pub pct_start: f64 = 0.3,
        /// cos or linear
        pub anneal_strategy: Anneal = Anneal::Cos,
        /// cycle momentum (Adam's beta1) inversely to the lr
        pub cycle_momentum: bool = true,
        /// momentum at the peak lr
        pub base_momentum: f64 = 0.85,
        /// momentum at the start and end
        pub max_momentum: f64 = 0.95,
        /// initial lr = max_lr / div_factor
        pub div_factor: f64 = 25.0,
        /// final lr = initial lr / final_div_factor
        pub final_div_factor: f64 = 10000.0,
        /// a third phase annihilating the lr
        pub three_phase: bool = false,
    }
}

kind! {
    /// A learning-rate scheduler (`model.lr_scheduler.<name>`).
    pub enum SchedulerConfig: Scheduler {
        ExponentialLR,
        StepLR,
        MultiStepLR,
        CosineAnnealingLR,
        OneCycleLR,
    }
}
