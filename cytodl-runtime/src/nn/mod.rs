//! Networks: MONAI's DynUNet, cyto_dl's heads and GAN discriminators, and loading of MONAI / Lightning weights.

pub mod autocast;
pub mod conv;
pub mod conv_cpu;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod conv_gather;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub mod conv_gpu;
#[cfg(all(feature = "gpu-fusion", any(feature = "cuda", feature = "wgpu")))]
mod conv_gpu_fusion;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub mod conv_transpose_gpu;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod conv_weight_grad;
pub mod discriminator;
pub mod dynunet;
mod flex_kernel;
pub mod norm_cpu;
#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod norm_cubecl;
// With no GPU backend compiled in, only its unit tests (on the CPU backend) reach it.
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
mod norm_gpu;
#[cfg(feature = "libtorch")]
pub mod torch_autograd;
pub mod weights;

pub use dynunet::{DynUNet, DynUNetConfig, DynUNetConfigError, PerLevel};
pub use weights::{load_file, load_state_dict, LoadOptions, LoadReport, StateDict, WeightsError};
pub mod heads;
pub mod init;
pub mod leaky_relu;
pub mod noise;

pub use init::Init;
