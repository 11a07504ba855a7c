//! The backends an experiment runs on: Flex on the CPU (always built in; tests and CI) and
//! CUDA behind the `cuda` feature, wgpu (the same CubeCL kernels on Vulkan, lavapipe included)
//! behind `wgpu`. Model and training code is generic over `B: Backend`; the
//! binary picks one from `--device cpu|cuda[:N]|wgpu|libtorch...`, or, without `--device`, from
//! the config's `trainer.accelerator` ([`DeviceSpec::choose`]).
//!
//! 2D experiments run through the same 5-D code as 3D ones with a Z axis of length 1 (2D
//! kernels become `[1, k, k]`), so every module works on `[N, C, Z, Y, X]` tensors.

pub use burn::backend::Autodiff;
pub use burn::backend::Flex;

/// The CPU backend.
pub type Cpu = Flex;
/// The CPU backend with automatic differentiation, for training.
pub type CpuTrain = Autodiff<Flex>;

#[cfg(feature = "cuda")]
pub use burn::backend::Cuda;
/// The CUDA backend with automatic differentiation.
#[cfg(feature = "cuda")]
pub type CudaTrain = Autodiff<Cuda>;

#[cfg(feature = "wgpu")]
pub use burn::backend::Wgpu;
/// The wgpu backend with automatic differentiation.
#[cfg(feature = "wgpu")]
pub type WgpuTrain = Autodiff<Wgpu>;

#[cfg(feature = "libtorch")]
pub use burn::backend::LibTorch;
/// LibTorch (PyTorch's C++ library: cuDNN convolutions on CUDA) with automatic differentiation.
#[cfg(feature = "libtorch")]
pub type LibTorchTrain = Autodiff<LibTorch>;

use burn::tensor::backend::AutodiffBackend;

/// burn's CubeCL backend (CUDA, wgpu) with the element types its `Cuda` and `Wgpu` aliases use,
/// without fusion: what the hand-written GPU kernels (`nn::conv_gpu`, `optim::adam_gpu`) route to.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub(crate) type Cube<R, BT> = burn_cubecl::CubeBackend<R, f32, i32, BT>;

/// The first `Some` that `$body` gives with `$runtime` and `$bool` naming each compiled-in
/// CubeCL runtime and its bool element (CUDA, then wgpu), else `None`: how generic code reaches
/// the hand-written GPU kernels, e.g. `on_cube_runtimes!(|R, BT| on_runtime::<B, R, BT>(x))`.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
macro_rules! on_cube_runtimes {
    (|$runtime:ident, $bool:ident| $body:expr) => {{
        #[allow(unused_mut)]
        let mut found = None;
        #[cfg(feature = "cuda")]
        if found.is_none() {
            #[allow(dead_code)]
            type $runtime = burn_cubecl::cubecl::cuda::CudaRuntime;
            #[allow(dead_code)]
            type $bool = u8;
            found = $body;
        }
        #[cfg(feature = "wgpu")]
        if found.is_none() {
            #[allow(dead_code)]
            type $runtime = burn_cubecl::cubecl::wgpu::WgpuRuntime;
            #[allow(dead_code)]
            type $bool = u32;
            found = $body;
        }
        found
    }};
}
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub(crate) use on_cube_runtimes;

/// The launch shape of an element-wise kernel: one unit per element of `out`.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub(crate) fn elementwise_launch<R: burn_cubecl::CubeRuntime>(
    out: &burn_cubecl::tensor::CubeTensor<R>,
) -> (burn_cubecl::cubecl::CubeCount, burn_cubecl::cubecl::CubeDim) {
    let n = out.meta.num_elements();
    let cube_dim = burn_cubecl::cubecl::CubeDim::new(&out.client, n);
    (burn_cubecl::cubecl::calculate_cube_count_elemwise(&out.client, n, cube_dim), cube_dim)
}

/// Whether `B` is the backend `C`: hand-written kernels are routed to by type identity at run
/// time, so that model and optimizer code stays generic over `B: Backend`.
pub(crate) fn is<B: 'static, C: 'static>() -> bool {
    std::any::TypeId::of::<B>() == std::any::TypeId::of::<C>()
}

/// `value` as type `U` when `T` is `U` (checked at run time), else `None`.
pub(crate) fn cast<T: 'static, U: 'static>(value: T) -> Option<U> {
    let boxed: Box<dyn std::any::Any> = Box::new(value);
    boxed.downcast::<U>().ok().map(|b| *b)
}
use cytodl_schema::{Accelerator, Devices};
use thiserror::Error;

/// A `--device` argument: which backend runs the experiment, and which of its devices.
///
/// `cpu`, `cuda[:N]` and `wgpu` are burn's own backends; `libtorch[:cuda[:N]]` and
/// `libtorch:cpu` run the same model through PyTorch's C++ library (a build with
/// `--features libtorch`), whose kernels and numerics are PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
    Wgpu,
    LibTorchCpu,
    LibTorchCuda(usize),
}

/// Why a `--device` argument cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DeviceError {
    #[error("--device {0}: expected cpu, cuda, cuda:N, wgpu, libtorch, libtorch:cuda:N or libtorch:cpu")]
    Unknown(String),
    #[error("--device {device}: this binary was built without {feature}; rebuild with `cytodl-build build --features {feature} ...`")]
    NotBuilt { device: String, feature: &'static str },
    #[error(
        "trainer.accelerator is {accelerator}, but this binary was built without {wanted}: rebuild it with `cytodl-build build --features {feature} ...`, or run on the CPU with `trainer.accelerator=cpu` (or `--device cpu`)"
    )]
    AcceleratorNotBuilt { accelerator: &'static str, wanted: &'static str, feature: &'static str },
    #[error("device {device} cannot be used: {cause}. Run on the CPU with {fix}")]
    Unavailable { device: String, cause: String, fix: &'static str },
    #[error("--device {device} and trainer.devices={devices:?} name different GPUs: give the index in one place (`--device cuda` with the list, or no list)")]
    Conflict { device: String, devices: Vec<usize> },
}

/// How to run on the CPU instead, said to whoever chose the device.
const CPU_BY_FLAG: &str = "`--device cpu`";
const CPU_BY_CONFIG: &str = "`trainer.accelerator=cpu` (or `--device cpu`)";

impl std::str::FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<Self, DeviceError> {
        let unknown = || DeviceError::Unknown(text.to_string());
        let cuda_index = |rest: Option<&str>| match rest {
            Some("") => Ok(0),
            Some(n) => n.strip_prefix(':').and_then(|n| n.parse::<usize>().ok()).ok_or_else(unknown),
            None => Err(unknown()),
        };
        let text = text.trim();
        match text {
            "cpu" => Ok(Self::Cpu),
            "wgpu" => Ok(Self::Wgpu),
            "libtorch" => Ok(Self::LibTorchCuda(0)),
            "libtorch:cpu" => Ok(Self::LibTorchCpu),
            _ => match text.strip_prefix("libtorch:") {
                Some(rest) => cuda_index(rest.strip_prefix("cuda")).map(Self::LibTorchCuda),
                None => cuda_index(text.strip_prefix("cuda")).map(Self::Cuda),
            },
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    /// The `--device` spelling (what `.hydra/run.yaml` records).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
            Self::Wgpu => f.write_str("wgpu"),
            Self::LibTorchCpu => f.write_str("libtorch:cpu"),
            Self::LibTorchCuda(i) => write!(f, "libtorch:cuda:{i}"),
        }
    }
}

/// The device a command runs on and why: `--device`, or the config's `trainer.accelerator`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceChoice {
    pub spec: DeviceSpec,
    /// `--device`, or `trainer.accelerator=<value>`.
    pub source: String,
}

/// The GPU backends compiled into this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Built {
    pub cuda: bool,
    pub libtorch: bool,
    pub wgpu: bool,
}

impl Built {
    pub const HERE: Built = Built { cuda: cfg!(feature = "cuda"), libtorch: cfg!(feature = "libtorch"), wgpu: cfg!(feature = "wgpu") };

    /// Whether `spec`'s backend is among these.
    pub fn has(self, spec: DeviceSpec) -> bool {
        match spec {
            DeviceSpec::Cpu => true,
            DeviceSpec::Cuda(_) => self.cuda,
            DeviceSpec::Wgpu => self.wgpu,
            DeviceSpec::LibTorchCpu | DeviceSpec::LibTorchCuda(_) => self.libtorch,
        }
    }
}

#[cfg(any(feature = "cuda", feature = "wgpu", feature = "libtorch"))]
/// Whether `device` works: its first use, with the panic of a GPU the machine lacks (no
/// driver, no adapter) turned into its message.
fn usable<B: burn::tensor::backend::Backend>(device: &B::Device) -> Result<(), String> {
    let device = std::panic::AssertUnwindSafe(device);
    crate::device_fault::first_use(move || {
        let _ = burn::tensor::Tensor::<B, 1>::zeros([1], *device).into_data();
    })
}

impl DeviceSpec {
    /// The device of a command: `--device` when given, else the one `trainer.accelerator` names
    /// among the backends `built`, with Lightning's meaning: `cpu`; `gpu` the first GPU backend
    /// that `works` here (CUDA, LibTorch on CUDA, wgpu) and `cuda` the first of the two CUDA
    /// ones — an error where none is built; `mps` wgpu (Metal); `auto` CUDA or LibTorch on CUDA
    /// when one works, else the CPU (never wgpu, which on a machine without a GPU is a software
    /// renderer). The GPU's index is the first of a `trainer.devices` list (`[2]`: GPU 2), else
    /// `--device`'s, else 0. Only device 0 is tried: a missing index fails when used.
    pub fn choose(
        device: Option<&str>,
        accelerator: Accelerator,
        devices: &Devices,
        built: Built,
        works: impl Fn(DeviceSpec) -> Result<(), String>,
    ) -> Result<DeviceChoice, DeviceError> {
        let list = match devices {
            Devices::Indices(v) => v.as_slice(),
            Devices::Count(_) | Devices::All => &[],
        };
        if let Some(text) = device {
            let spec: DeviceSpec = text.parse()?;
            // `cuda:N` names its index; plain `cuda` takes the list's.
            let names_index = text.trim().rsplit_once(':').is_some_and(|(_, n)| n.parse::<usize>().is_ok());
            let spec = match (spec.index(), list.first()) {
                (Some(own), Some(&first)) if own != first && names_index => {
                    return Err(DeviceError::Conflict { device: text.trim().to_string(), devices: list.to_vec() })
                }
                (Some(_), Some(&first)) => spec.with_index(first),
                _ => spec,
            };
            return Ok(DeviceChoice { spec, source: "--device".into() });
        }
        let index = list.first().copied().unwrap_or(0);
        let not_built = |wanted, feature| DeviceError::AcceleratorNotBuilt { accelerator: accelerator.name(), wanted, feature };
        let source = format!("trainer.accelerator={}", accelerator.name());
        let chosen = |spec: DeviceSpec| Ok(DeviceChoice { spec, source: source.clone() });
        // The GPU backends built in, in order of preference, for each accelerator.
        let candidates: Vec<DeviceSpec> = match accelerator {
            Accelerator::Cpu => return chosen(Self::Cpu),
            Accelerator::Mps if built.wgpu => return chosen(Self::Wgpu),
            Accelerator::Mps => return Err(not_built("wgpu (Metal)", "wgpu")),
            Accelerator::Auto | Accelerator::Gpu | Accelerator::Cuda => {
                let mut c = Vec::new();
                if built.cuda {
                    c.push(Self::Cuda(index));
                }
                if built.libtorch {
                    c.push(Self::LibTorchCuda(index));
                }
                if built.wgpu && accelerator == Accelerator::Gpu {
                    c.push(Self::Wgpu);
                }
                c
            }
        };
        let mut failures = Vec::new();
        for spec in &candidates {
            match works(spec.with_index(0)) {
                Ok(()) => return chosen(*spec),
                Err(cause) => failures.push(format!("{}: {cause}", spec.with_index(0))),
            }
        }
        match (accelerator, candidates.first()) {
            (Accelerator::Auto, _) => {
                if !failures.is_empty() {
                    eprintln!("note: trainer.accelerator=auto: no GPU backend of this binary works here ({}); running on the CPU", failures.join("; "));
                }
                chosen(Self::Cpu)
            }
            (Accelerator::Cuda, None) => Err(not_built("CUDA", "cuda")),
            (_, None) => Err(not_built("a GPU backend", "cuda")),
            (_, Some(first)) => Err(DeviceError::Unavailable { device: first.to_string(), cause: failures.join("; "), fix: CPU_BY_CONFIG }),
        }
    }

    /// The same backend on the device burn identifies by `id` (its index, for GPUs): how a
    /// device a data-parallel plan picked is recorded.
    pub fn with_id(self, id: burn::tensor::backend::DeviceId) -> Self {
        self.with_index(id.index_id as usize)
    }

    /// The GPU index, for the devices that have one.
    fn index(self) -> Option<usize> {
        match self {
            Self::Cuda(i) | Self::LibTorchCuda(i) => Some(i),
            Self::Cpu | Self::Wgpu | Self::LibTorchCpu => None,
        }
    }

    /// The same backend on GPU `index` (devices without an index stay as they are).
    fn with_index(self, index: usize) -> Self {
        match self {
            Self::Cuda(_) => Self::Cuda(index),
            Self::LibTorchCuda(_) => Self::LibTorchCuda(index),
            other => other,
        }
    }

    /// Whether this device works on this machine: its first use, with the panic of a GPU the
    /// machine lacks (no driver, no adapter) turned into its message; an error for a backend
    /// the binary was built without.
    pub fn works(self) -> Result<(), String> {
        match self {
            Self::Cpu => Ok(()),
            #[cfg(feature = "cuda")]
            Self::Cuda(index) => usable::<Cuda>(&burn::backend::cuda::CudaDevice::new(index)),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => usable::<Wgpu>(&Default::default()),
            #[cfg(feature = "libtorch")]
            Self::LibTorchCpu => Ok(()),
            #[cfg(feature = "libtorch")]
            Self::LibTorchCuda(index) => usable::<LibTorch>(&burn::backend::libtorch::LibTorchDevice::Cuda(index)),
            #[allow(unreachable_patterns)]
            other => Err(format!("this binary was built without {}", other.feature().unwrap_or("cpu"))),
        }
    }
}

impl DeviceError {
    /// The error as said to a user whose config (`trainer.accelerator`) chose the device.
    pub fn for_config(self) -> Self {
        match self {
            DeviceError::Unavailable { device, cause, .. } => DeviceError::Unavailable { device, cause, fix: CPU_BY_CONFIG },
            other => other,
        }
    }
}

/// Something to run on whichever backend a [`DeviceSpec`] names: the generic function a
/// binary or example instantiates once per backend compiled in.
pub trait OnBackend {
    type Output;
    /// `gpu` says whether the device is a GPU (mixed precision applies; CPUs fall back to 32-bit).
    fn run<B: AutodiffBackend>(self, device: B::Device, gpu: bool) -> Self::Output;
}

impl DeviceSpec {
    /// The cargo feature a binary needs for this device (`None`: always built in).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Self::Cpu => None,
            Self::Cuda(_) => Some("cuda"),
            Self::Wgpu => Some("wgpu"),
            Self::LibTorchCpu | Self::LibTorchCuda(_) => Some("libtorch"),
        }
    }

    /// Runs `job` on this device's backend once its first use worked, or says which feature
    /// the binary lacks or why the device cannot be used (no driver, no GPU).
    pub fn run<J: OnBackend>(self, text: &str, job: J) -> Result<J::Output, DeviceError> {
        let not_built = || DeviceError::NotBuilt { device: text.trim().to_string(), feature: self.feature().unwrap_or("cpu") };
        if !Built::HERE.has(self) {
            return Err(not_built());
        }
        self.works().map_err(|cause| DeviceError::Unavailable { device: text.trim().to_string(), cause, fix: CPU_BY_FLAG })?;
        match self {
            Self::Cpu => Ok(job.run::<CpuTrain>(Default::default(), false)),
            #[cfg(feature = "cuda")]
            Self::Cuda(index) => Ok(job.run::<CudaTrain>(burn::backend::cuda::CudaDevice::new(index), true)),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Ok(job.run::<WgpuTrain>(Default::default(), true)),
            #[cfg(feature = "libtorch")]
            Self::LibTorchCpu => Ok(job.run::<LibTorchTrain>(burn::backend::libtorch::LibTorchDevice::Cpu, false)),
            #[cfg(feature = "libtorch")]
            Self::LibTorchCuda(index) => Ok(job.run::<LibTorchTrain>(burn::backend::libtorch::LibTorchDevice::Cuda(index), true)),
            #[allow(unreachable_patterns)]
            _ => Err(not_built()),
        }
    }
}

/// The backend's short name, for bench lines and logs.
pub fn backend_name<B: burn::tensor::backend::Backend>() -> &'static str {
    let name = std::any::type_name::<B>();
    if name.contains("LibTorch") {
        "libtorch"
    } else if name.contains("Cuda") {
        "cuda"
    } else if name.contains("Wgpu") {
        "wgpu"
    } else {
        "cpu"
    }
}

#[cfg(test)]
mod tests {
    use super::{DeviceError, DeviceSpec};

    #[test]
    fn device_arguments_parse() {
        let parse = |s: &str| s.parse::<DeviceSpec>();
        assert_eq!(parse("cpu"), Ok(DeviceSpec::Cpu));
        assert_eq!(parse("cuda"), Ok(DeviceSpec::Cuda(0)));
        assert_eq!(parse("cuda:3"), Ok(DeviceSpec::Cuda(3)));
        assert_eq!(parse("wgpu"), Ok(DeviceSpec::Wgpu));
        assert_eq!(parse("libtorch"), Ok(DeviceSpec::LibTorchCuda(0)));
        assert_eq!(parse("libtorch:cuda:1"), Ok(DeviceSpec::LibTorchCuda(1)));
        assert_eq!(parse("libtorch:cuda"), Ok(DeviceSpec::LibTorchCuda(0)));
        assert_eq!(parse("libtorch:cpu"), Ok(DeviceSpec::LibTorchCpu));
        for bad in ["gpu", "cuda:", "cuda:x", "cuda1", "libtorch:gpu", "libtorch:cuda:-1", ""] {
            assert_eq!(parse(bad), Err(DeviceError::Unknown(bad.to_string())), "{bad}");
        }
    }

    #[test]
    fn a_backend_left_out_of_the_build_is_named() {
        #[cfg(not(feature = "libtorch"))]
        {
            let err = DeviceSpec::LibTorchCpu.run("libtorch:cpu", Probe).unwrap_err();
            assert_eq!(
                err.to_string(),
                "--device libtorch:cpu: this binary was built without libtorch; rebuild with `cytodl-build build --features libtorch ...`"
            );
        }
        assert_eq!(DeviceSpec::Cpu.run("cpu", Probe), Ok(("cpu", false)));
    }

    use super::{Built, DeviceChoice};
    use cytodl_schema::{Accelerator, Devices};

    const CPU_ONLY: Built = Built { cuda: false, libtorch: false, wgpu: false };
    const CUDA: Built = Built { cuda: true, libtorch: false, wgpu: false };
    const EVERY: Built = Built { cuda: true, libtorch: true, wgpu: true };

    /// `choose` on a machine where the devices in `working` work and no other GPU does.
    fn choose(device: Option<&str>, accelerator: Accelerator, devices: Devices, built: Built, working: &[DeviceSpec]) -> Result<DeviceChoice, DeviceError> {
        DeviceSpec::choose(device, accelerator, &devices, built, |d| if working.contains(&d) { Ok(()) } else { Err(format!("no {d} here")) })
    }

    #[test]
    fn the_accelerator_chooses_the_device_when_the_command_line_does_not() {
        use DeviceSpec::*;
        let one = || Devices::Count(1);
        let spec = |r: Result<DeviceChoice, DeviceError>| r.map(|c| c.spec);
        let all = [Cuda(0), LibTorchCuda(0), Wgpu];
        // --device wins, and says it did.
        let explicit = choose(Some("cpu"), Accelerator::Gpu, one(), CUDA, &all).expect("--device cpu");
        assert_eq!((explicit.spec, explicit.source.as_str()), (Cpu, "--device"));
        assert!(matches!(choose(Some("gpu"), Accelerator::Cpu, one(), CUDA, &all), Err(DeviceError::Unknown(_))));
        // cpu stays on the CPU; auto takes a CUDA backend that works, never wgpu.
        assert_eq!(spec(choose(None, Accelerator::Cpu, one(), CUDA, &all)), Ok(Cpu));
        assert_eq!(spec(choose(None, Accelerator::Auto, one(), CPU_ONLY, &all)), Ok(Cpu));
        assert_eq!(spec(choose(None, Accelerator::Auto, one(), CUDA, &[])), Ok(Cpu));
        assert_eq!(spec(choose(None, Accelerator::Auto, one(), CUDA, &all)), Ok(Cuda(0)));
        assert_eq!(spec(choose(None, Accelerator::Auto, one(), EVERY, &[LibTorchCuda(0), Wgpu])), Ok(LibTorchCuda(0)));
        assert_eq!(spec(choose(None, Accelerator::Auto, one(), EVERY, &[Wgpu])), Ok(Cpu), "auto never picks wgpu (lavapipe on a CPU machine)");
        // gpu takes the first GPU backend that works; a list names the GPU (device 0 is tried).
        assert_eq!(spec(choose(None, Accelerator::Gpu, Devices::Indices(vec![2, 3]), CUDA, &all)), Ok(Cuda(2)));
        let chosen = choose(None, Accelerator::Gpu, one(), CUDA, &all).expect("gpu");
        assert_eq!((chosen.spec.to_string(), chosen.source.as_str()), ("cuda:0".to_string(), "trainer.accelerator=gpu"));
        assert_eq!(spec(choose(None, Accelerator::Gpu, one(), EVERY, &[LibTorchCuda(0), Wgpu])), Ok(LibTorchCuda(0)));
        assert_eq!(spec(choose(None, Accelerator::Gpu, one(), EVERY, &[Wgpu])), Ok(Wgpu), "a CPU-only torch does not stop wgpu");
        assert_eq!(spec(choose(None, Accelerator::Cuda, one(), EVERY, &[LibTorchCuda(0), Wgpu])), Ok(LibTorchCuda(0)));
        assert_eq!(spec(choose(None, Accelerator::Mps, one(), Built { wgpu: true, ..CPU_ONLY }, &[])), Ok(Wgpu));
        // A list and --device: the list's index unless --device names another.
        assert_eq!(spec(choose(Some("cuda"), Accelerator::Cpu, Devices::Indices(vec![2]), CUDA, &all)), Ok(Cuda(2)));
        assert_eq!(spec(choose(Some("cuda:2"), Accelerator::Cpu, Devices::Indices(vec![2]), CUDA, &all)), Ok(Cuda(2)));
        assert_eq!(spec(choose(Some("cuda:3"), Accelerator::Cpu, Devices::Count(2), CUDA, &all)), Ok(Cuda(3)));
        let err = choose(Some("cuda:0"), Accelerator::Cpu, Devices::Indices(vec![2]), CUDA, &all).unwrap_err();
        assert_eq!(err, DeviceError::Conflict { device: "cuda:0".into(), devices: vec![2] });
    }

    #[test]
    fn a_gpu_accelerator_without_a_gpu_is_an_error_that_says_what_to_do() {
        let one = || Devices::Count(1);
        let err = choose(None, Accelerator::Gpu, one(), CPU_ONLY, &[]).unwrap_err().to_string();
        assert!(err.contains("trainer.accelerator is gpu") && err.contains("--features cuda") && err.contains("trainer.accelerator=cpu"), "{err}");
        let err = choose(None, Accelerator::Cuda, one(), Built { wgpu: true, ..CPU_ONLY }, &[DeviceSpec::Wgpu]).unwrap_err().to_string();
        assert!(err.contains("without CUDA"), "{err}");
        let err = choose(None, Accelerator::Mps, one(), CUDA, &[]).unwrap_err().to_string();
        assert!(err.contains("--features wgpu"), "{err}");
        // Built in, but not working here: every backend tried is named, with the config's fix.
        let err = choose(None, Accelerator::Gpu, one(), EVERY, &[]).unwrap_err().to_string();
        assert_eq!(
            err,
            "device cuda:0 cannot be used: cuda:0: no cuda:0 here; libtorch:cuda:0: no libtorch:cuda:0 here; wgpu: no wgpu here. Run on the CPU with `trainer.accelerator=cpu` (or `--device cpu`)"
        );
    }

    #[test]
    fn device_specs_print_as_they_parse() {
        for text in ["cpu", "cuda:0", "cuda:3", "wgpu", "libtorch:cpu", "libtorch:cuda:1"] {
            let spec: DeviceSpec = text.parse().expect(text);
            assert_eq!(spec.to_string(), text);
        }
    }

    struct Probe;
    impl super::OnBackend for Probe {
        type Output = (&'static str, bool);
        fn run<B: burn::tensor::backend::AutodiffBackend>(self, _: B::Device, gpu: bool) -> Self::Output {
            (super::backend_name::<B>(), gpu)
        }
    }
}
