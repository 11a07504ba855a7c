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
