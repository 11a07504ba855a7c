//! The backends an experiment runs on: Flex on the CPU (the default, used by tests and CI) and
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
    #[error("device {device} cannot be used: {cause}. Run on the CPU with `--device cpu` (or `trainer.accelerator=cpu`)")]
    Unavailable { device: String, cause: String },
}

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
    /// among the backends `built` (Lightning's meaning: `gpu`/`cuda` is an error where there is
    /// none, `auto` takes CUDA when the binary has it and `cuda_works` says the machine does,
    /// else the CPU). A GPU's index is the first of a `trainer.devices` list (`[2]` trains on
    /// GPU 2), else 0.
    pub fn choose(
        device: Option<&str>,
        accelerator: Accelerator,
        devices: &Devices,
        built: Built,
        cuda_works: impl FnOnce(usize) -> Result<(), String>,
    ) -> Result<DeviceChoice, DeviceError> {
        if let Some(text) = device {
            return Ok(DeviceChoice { spec: text.parse()?, source: "--device".into() });
        }
        let index = match devices {
            Devices::Indices(v) => v.first().copied().unwrap_or(0),
            Devices::Count(_) | Devices::All => 0,
        };
        let not_built = |wanted, feature| DeviceError::AcceleratorNotBuilt { accelerator: accelerator.name(), wanted, feature };
        let spec = match accelerator {
            Accelerator::Cpu => Self::Cpu,
            Accelerator::Auto if built.cuda => match cuda_works(index) {
                Ok(()) => Self::Cuda(index),
                Err(cause) => {
                    eprintln!("note: trainer.accelerator=auto: this binary has CUDA, but it cannot be used here ({cause}); running on the CPU");
                    Self::Cpu
                }
            },
            Accelerator::Auto => Self::Cpu,
            Accelerator::Gpu | Accelerator::Cuda if built.cuda => Self::Cuda(index),
            Accelerator::Gpu | Accelerator::Cuda if built.libtorch => Self::LibTorchCuda(index),
            Accelerator::Gpu if built.wgpu => Self::Wgpu,
            Accelerator::Gpu => return Err(not_built("a GPU backend", "cuda")),
            Accelerator::Cuda => return Err(not_built("CUDA", "cuda")),
            Accelerator::Mps if built.wgpu => Self::Wgpu,
            Accelerator::Mps => return Err(not_built("wgpu (Metal)", "wgpu")),
        };
        Ok(DeviceChoice { spec, source: format!("trainer.accelerator={}", accelerator.name()) })
    }

    /// Whether CUDA device `index` works on this machine (always an error without `cuda`).
    pub fn cuda_works(index: usize) -> Result<(), String> {
        #[cfg(feature = "cuda")]
        return usable::<Cuda>(&burn::backend::cuda::CudaDevice::new(index));
        #[cfg(not(feature = "cuda"))]
        Err(format!("cuda:{index}: this binary was built without cuda"))
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
        #[allow(unused_variables)]
        let unavailable = |cause| DeviceError::Unavailable { device: text.trim().to_string(), cause };
        match self {
            Self::Cpu => Ok(job.run::<CpuTrain>(Default::default(), false)),
            #[cfg(feature = "cuda")]
            Self::Cuda(index) => {
                let device = burn::backend::cuda::CudaDevice::new(index);
                usable::<Cuda>(&device).map_err(unavailable)?;
                Ok(job.run::<CudaTrain>(device, true))
            }
            #[cfg(feature = "wgpu")]
            Self::Wgpu => {
                usable::<Wgpu>(&Default::default()).map_err(unavailable)?;
                Ok(job.run::<WgpuTrain>(Default::default(), true))
            }
            #[cfg(feature = "libtorch")]
            Self::LibTorchCpu => Ok(job.run::<LibTorchTrain>(burn::backend::libtorch::LibTorchDevice::Cpu, false)),
            #[cfg(feature = "libtorch")]
            Self::LibTorchCuda(index) => {
                let device = burn::backend::libtorch::LibTorchDevice::Cuda(index);
                usable::<LibTorch>(&device).map_err(unavailable)?;
                Ok(job.run::<LibTorchTrain>(device, true))
            }
            #[allow(unreachable_patterns)]
            other => Err(DeviceError::NotBuilt { device: text.trim().to_string(), feature: other.feature().unwrap_or("cpu") }),
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

    /// `choose` on a machine where CUDA works (`gpu` true) or has no driver.
    fn choose(device: Option<&str>, accelerator: Accelerator, devices: Devices, built: Built, gpu: bool) -> Result<DeviceChoice, DeviceError> {
        DeviceSpec::choose(device, accelerator, &devices, built, |i| if gpu { Ok(()) } else { Err(format!("no driver for cuda:{i}")) })
    }

    #[test]
    fn the_accelerator_chooses_the_device_when_the_command_line_does_not() {
        let one = || Devices::Count(1);
        let spec = |r: Result<DeviceChoice, DeviceError>| r.map(|c| c.spec);
        // --device wins, and says it did.
        let explicit = choose(Some("cpu"), Accelerator::Gpu, one(), CUDA, true).expect("--device cpu");
        assert_eq!((explicit.spec, explicit.source.as_str()), (DeviceSpec::Cpu, "--device"));
        assert!(matches!(choose(Some("gpu"), Accelerator::Cpu, one(), CUDA, true), Err(DeviceError::Unknown(_))));
        // cpu stays on the CPU; auto takes CUDA where the binary has it and it works.
        assert_eq!(spec(choose(None, Accelerator::Cpu, one(), CUDA, true)), Ok(DeviceSpec::Cpu));
        assert_eq!(spec(choose(None, Accelerator::Auto, one(), CPU_ONLY, true)), Ok(DeviceSpec::Cpu));
        assert_eq!(spec(choose(None, Accelerator::Auto, one(), CUDA, false)), Ok(DeviceSpec::Cpu));
        assert_eq!(spec(choose(None, Accelerator::Auto, one(), CUDA, true)), Ok(DeviceSpec::Cuda(0)));
        assert_eq!(
            spec(choose(None, Accelerator::Auto, one(), Built { wgpu: true, ..CPU_ONLY }, true)),
            Ok(DeviceSpec::Cpu),
            "auto never picks wgpu (lavapipe on a CPU machine)"
        );
        // gpu takes CUDA; a list names the GPU.
        assert_eq!(spec(choose(None, Accelerator::Gpu, Devices::Indices(vec![2, 3]), CUDA, true)), Ok(DeviceSpec::Cuda(2)));
        let chosen = choose(None, Accelerator::Gpu, one(), CUDA, true).expect("gpu");
        assert_eq!((chosen.spec.to_string(), chosen.source.as_str()), ("cuda:0".to_string(), "trainer.accelerator=gpu"));
        // Without CUDA, gpu takes LibTorch on CUDA, then wgpu; mps is wgpu.
        assert_eq!(spec(choose(None, Accelerator::Gpu, one(), Built { libtorch: true, wgpu: true, ..CPU_ONLY }, true)), Ok(DeviceSpec::LibTorchCuda(0)));
        assert_eq!(spec(choose(None, Accelerator::Gpu, one(), Built { wgpu: true, ..CPU_ONLY }, true)), Ok(DeviceSpec::Wgpu));
        assert_eq!(spec(choose(None, Accelerator::Mps, one(), Built { wgpu: true, ..CPU_ONLY }, true)), Ok(DeviceSpec::Wgpu));
    }

    #[test]
    fn a_gpu_accelerator_without_a_gpu_backend_is_an_error_that_says_what_to_do() {
        let one = || Devices::Count(1);
        let err = choose(None, Accelerator::Gpu, one(), CPU_ONLY, false).unwrap_err().to_string();
        assert!(err.contains("trainer.accelerator is gpu") && err.contains("--features cuda") && err.contains("trainer.accelerator=cpu"), "{err}");
        let err = choose(None, Accelerator::Cuda, one(), Built { wgpu: true, ..CPU_ONLY }, true).unwrap_err().to_string();
        assert!(err.contains("without CUDA"), "{err}");
        let err = choose(None, Accelerator::Mps, one(), CUDA, true).unwrap_err().to_string();
        assert!(err.contains("--features wgpu"), "{err}");
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
