//! The 3-D convolution every network layer calls. On the CPU it is [`conv_cpu`]'s kernel; on
//! the GPU backends burn's op, except where burn's op is wrong.
//!
//! burn 0.21's CubeCL convolution returns a wrong input gradient when a kernel is shorter than
//! its stride along an axis (so that some input voxels are read by no output): DynUNet's
//! residual projection `conv3` (1x1, stride 2) of every downsampling block, and an anisotropic
//! level with kernel `[1, 3, 3]` and stride 2. Every GPU runtime (CUDA, wgpu) shares the kernel,
//! so CUDA's gradients disagreed with PyTorch's from the first such block down;
//! `tests/backend_paths.rs` keeps the minimal reproducer. Our exact f32 kernel
//! ([`super::conv_gather`]) is right there by construction and runs such a convolution as it is;
//! where burn's kernels run (mixed precision, tensor cores, shapes ours does not take), along
//! such an axis the convolution is rewritten as the same function without gaps:
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
    #[cfg(feature = "libtorch")]
    if let Some(y) = super::torch_autograd::conv3d(&x, &weight, bias.as_ref(), &options) {
        return y;
    }
    conv3d_without_gaps(x, weight, bias, options)
}

/// The convolution on kernels that are right where a kernel is shorter than its stride: the
/// exact GPU kernels where they take it, else the same convolution with no kernel shorter than
/// its stride (see the module docs); any backend, no dilation.
pub fn conv3d_without_gaps<B: Backend>(x: Tensor<B, 5>, weight: Tensor<B, 5>, bias: Option<Tensor<B, 1>>, options: ConvOptions<3>) -> Tensor<B, 5> {
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    if super::conv_gpu::takes_gaps(&x, &weight, &options) {
        if let Some(y) = super::conv_gpu::conv3d(&x, &weight, bias.as_ref(), &options) {
            return y;
        }
    }
    let (x, weight, options) = without_gaps(x, weight, options);
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    if let Some(y) = super::conv_gpu::conv3d(&x, &weight, bias.as_ref(), &options) {
        return y;
    }
    conv_cpu::conv3d(x, weight, bias, options)
}

/// The input, weight and options of the same convolution with no kernel shorter than its stride
/// (see the module docs).
pub fn without_gaps<B: Backend>(x: Tensor<B, 5>, weight: Tensor<B, 5>, options: ConvOptions<3>) -> (Tensor<B, 5>, Tensor<B, 5>, ConvOptions<3>) {
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
    (x, weight, options)
}

/// `t` with `n` zeros appended along `dim` (in `t`'s dtype).
fn extend_with_zeros<B: Backend>(t: Tensor<B, 5>, dim: usize, n: usize) -> Tensor<B, 5> {
    let mut shape = t.dims();
    shape[dim] = n;
    let zeros = Tensor::zeros(shape, (&t.device(), t.dtype()));
    Tensor::cat(vec![t, zeros], dim)
}

/// The weight gradient of a dilation-1, single-group `conv3d` as batched GEMMs over chunks of
/// the output volume (split-K), or `None` when the shapes do not allow it.
///
/// CubeCL's implicit-GEMM weight gradient is one GEMM of `O x C·k³` outputs over a reduction
/// of `N·Z·Y·X` (262144 in the medium DynUNet's first level): a handful of tiles, each looping
/// over the whole volume, 14-33 ms per convolution on an H200 where cuDNN takes well under one.
/// Here the columns (the `k³` shifted, strided views of the zero-padded input) are built once and the
/// reduction is split into chunks of ~2048 voxels that run as one batched GEMM, whose partial
/// sums are then added: every chunk is a tile of work on its own.
pub fn weight_grad_split_k<B: Backend>(x: Tensor<B, 5>, dy: Tensor<B, 5>, kernel: [usize; 3], options: &ConvOptions<3>) -> Option<Tensor<B, 5>> {
    let [n, c, ..] = x.dims();
    let [_, o, oz, oy, ox] = dy.dims();
    let volume = oz * oy * ox;
    let taps: usize = kernel.iter().product();
    let chunks = (1..=volume / 2048).rev().find(|d| volume.is_multiple_of(*d))?;
    let len = volume / chunks;
    if options.dilation != [1; 3] || options.groups != 1 {
        return None;
    }
    let (stride, out) = (options.stride, [oz, oy, ox]);
    let mut x = x;
    for (axis, &p) in options.padding.iter().enumerate() {
        if p > 0 {
            x = pad_with_zeros(x, axis + 2, p);
        }
    }
    let padded = x.dims();
    if (0..3).any(|a| stride[a] == 0 || out[a] == 0 || padded[a + 2] < (out[a] - 1) * stride[a] + kernel[a]) {
        return None;
    }
    // Tap `t` along an axis reads input `t + stride·i` for output `i`.
    let along = |a: usize, t: usize| Slice::new(t as isize, Some((t + (out[a] - 1) * stride[a] + 1) as isize), stride[a] as isize);
    let mut columns = Vec::with_capacity(taps);
    for dz in 0..kernel[0] {
        for dyy in 0..kernel[1] {
            for dx in 0..kernel[2] {
                let tap = x.clone().slice([Slice::new(0, None, 1), Slice::new(0, None, 1), along(0, dz), along(1, dyy), along(2, dx)]);
                columns.push(tap.reshape([n, c, 1, volume]));
            }
        }
    }
    // [N, C, k³, V] -> rows (c, tap) as the weight is laid out, chunked along V.
    let columns = Tensor::cat(columns, 2).reshape([n, c * taps, chunks, len]).permute([0, 2, 3, 1]).reshape([n * chunks, len, c * taps]);
    let dy = dy.reshape([n, o, chunks, len]).permute([0, 2, 1, 3]).reshape([n * chunks, o, len]);
    let dtype = dy.dtype();
    // Partial sums add in f32 (under mixed precision the GEMMs run in 16 bits).
    let partial = dy.matmul(columns).cast(burn::tensor::FloatDType::F32);
    Some(partial.sum_dim(0).reshape([o, c, kernel[0], kernel[1], kernel[2]]).cast(dtype))
}

/// `t` with `p` zeros on both ends of `dim` (in `t`'s dtype: under mixed precision it is 16-bit).
fn pad_with_zeros<B: Backend>(t: Tensor<B, 5>, dim: usize, p: usize) -> Tensor<B, 5> {
    let mut shape = t.dims();
    shape[dim] = p;
    let zeros = Tensor::zeros(shape, (&t.device(), t.dtype()));
    Tensor::cat(vec![zeros.clone(), t, zeros], dim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Cpu, CpuTrain};
    use crate::nn::Init;

    /// The split-K weight gradient equals the autodiff gradient of the convolution (CPU
    /// kernels), for padded 3x3x3 and [1, 3, 3] kernels, with stride 1 and 2.
    #[test]
    fn split_k_weight_gradient_matches_autodiff() {
        let device = Default::default();
        let cases = [
            ([3, 3, 3], [1, 1, 1], [1, 1, 1], [2, 3, 8, 16, 16]),
            ([1, 3, 3], [0, 1, 1], [1, 1, 1], [1, 2, 4, 32, 32]),
            // DynUNet's downsampling convolution, and an odd size that leaves the last row unread.
            ([3, 3, 3], [1, 1, 1], [2, 2, 2], [2, 3, 16, 32, 32]),
            ([3, 3, 3], [1, 1, 1], [1, 2, 2], [1, 2, 8, 33, 64]),
        ];
        for (kernel, padding, stride, shape) in cases {
            let x = Init::new(1).normal::<CpuTrain, 5>(shape, 0.0, 1.0, &device);
            let w = Init::new(2).normal::<CpuTrain, 5>([4, shape[1], kernel[0], kernel[1], kernel[2]], 0.0, 0.3, &device).require_grad();
            let options = ConvOptions::new(stride, padding, [1; 3], 1);
            let y = conv3d(x.clone(), w.clone(), None, options.clone());
            let dy = Init::new(3).normal::<CpuTrain, 5>(y.dims(), 0.0, 1.0, &device);
            let grads = (y * dy.clone()).sum().backward();
            let reference = w.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
            let split: Tensor<Cpu, 5> = weight_grad_split_k(x.inner(), dy.inner(), kernel, &options).expect("volume of at least 2048");
            let split = split.into_data().to_vec::<f32>().unwrap();
            assert_eq!(split.len(), reference.len());
            let scale = cytodl_testkit::max_abs(&reference);
            let diff = cytodl_testkit::max_abs_diff(&split, &reference);
            assert!(diff / scale < 1e-5, "{kernel:?} stride {stride:?}: max diff {diff} (scale {scale})");
        }
    }

    #[test]
    fn split_k_needs_a_volume_of_2048() {
        let device = Default::default();
        let x = Tensor::<Cpu, 5>::zeros([1, 1, 4, 8, 8], &device);
        assert!(weight_grad_split_k(x.clone(), x, [1, 1, 1], &ConvOptions::new([1; 3], [0; 3], [1; 3], 1)).is_none());
    }
}
