//! The 3-D convolution every network layer calls. On the CPU it is [`conv_cpu`]'s kernel; on
//! the GPU backends burn's op, except where burn's op is wrong.
//!
//! burn 0.21's CubeCL convolution returns a wrong input gradient when a kernel is shorter than
//! its stride along an axis (so that some input voxels are read by no output): DynUNet's
//! residual projection `conv3` (1x1, stride 2) of every downsampling block, and an anisotropic
//! level with kernel `[1, 3, 3]` and stride 2. Every GPU runtime (CUDA, wgpu) shares the kernel,
//! so CUDA's gradients disagreed with PyTorch's from the first such block down;
//! `tests/backend_paths.rs` keeps the minimal reproducer. Along such an axis the convolution is
//! rewritten as the same function without gaps:
//! - kernel 1 (no padding): take every `stride`-th voxel, then convolve with stride 1 there;
//! - kernel `k` with `1 < k < stride`: zero taps extend the kernel to the stride, and zero voxels
//!   the input's end, so every output reads the same values with the same weights.

use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Slice, Tensor};

use super::conv_cpu;

/// `conv3d` of `x: [N, C, Z, Y, X]` with `weight: [O, C/groups, kz, ky, kx]` and `bias: [O]`.
pub fn conv3d<B: Backend>(x: Tensor<B, 5>, weight: Tensor<B, 5>, bias: Option<Tensor<B, 1>>, options: ConvOptions<3>) -> Tensor<B, 5> {
    if conv_cpu::has_own_kernel::<B>() || options.dilation != [1, 1, 1] {
        return conv_cpu::conv3d(x, weight, bias, options);
    }
    conv3d_without_gaps(x, weight, bias, options)
}

/// The same convolution with no kernel shorter than its stride (see the module docs); any
/// backend, no dilation.
pub fn conv3d_without_gaps<B: Backend>(x: Tensor<B, 5>, weight: Tensor<B, 5>, bias: Option<Tensor<B, 1>>, options: ConvOptions<3>) -> Tensor<B, 5> {
    let (mut x, mut weight, mut options) = (x, weight, options);
    for axis in 0..3 {
        let (k, s, p) = (weight.dims()[axis + 2], options.stride[axis], options.padding[axis]);
        if k >= s {
            continue;
        }
        if k == 1 && p == 0 {
            let mut every = [Slice::new(0, None, 1); 5];
            every[axis + 2] = Slice::new(0, None, s as isize);
            x = x.slice(every);
            options.stride[axis] = 1;
        } else {
            weight = extend_with_zeros(weight, axis + 2, s - k);
            x = extend_with_zeros(x, axis + 2, s - k);
        }
    }
    conv_cpu::conv3d(x, weight, bias, options)
}

/// `t` with `n` zeros appended along `dim`.
fn extend_with_zeros<B: Backend>(t: Tensor<B, 5>, dim: usize, n: usize) -> Tensor<B, 5> {
    let mut shape = t.dims();
    shape[dim] = n;
    let zeros = Tensor::zeros(shape, &t.device());
    Tensor::cat(vec![t, zeros], dim)
}
