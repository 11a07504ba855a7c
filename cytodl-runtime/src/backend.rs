//! The backends an experiment runs on: Flex on the CPU (the default, used by tests and CI) and
//! CUDA behind the `cuda` feature, wgpu (the same CubeCL kernels on Vulkan, lavapipe included)
//! behind `wgpu`. Model and training code is generic over `B: Backend`; the
//! binary picks one from `--device cpu|cuda[:N]`.
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

    /// Runs `job` on this device's backend, or says which feature the binary lacks.
    pub fn run<J: OnBackend>(self, text: &str, job: J) -> Result<J::Output, DeviceError> {
        let not_built = |feature| DeviceError::NotBuilt { device: text.trim().to_string(), feature };
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
            other => Err(not_built(other.feature().unwrap_or("cpu"))),
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

    struct Probe;
    impl super::OnBackend for Probe {
        type Output = (&'static str, bool);
        fn run<B: burn::tensor::backend::AutodiffBackend>(self, _: B::Device, gpu: bool) -> Self::Output {
            (super::backend_name::<B>(), gpu)
        }
    }
}
