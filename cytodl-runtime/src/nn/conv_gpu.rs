//! Convolutions on the GPU backends (CUDA, wgpu) with a chosen CubeCL algorithm.
//!
//! burn 0.21 without its `autotune` feature runs every CubeCL convolution — forward, input
//! gradient and weight gradient — as its direct kernel: exact f32, but no tensor cores, which is
//! what made a medium DynUNet train step 32x slower than PyTorch's on an H200. With `autotune`,
//! burn benchmarks ~8 kernels per new shape at run time (more than 100 s before the first
//! step on the medium model). burn-cubecl also exposes its implicit-GEMM convolution (tensor
//! cores through CMMA) directly; this module calls it for all three passes, the same algorithm
//! cuDNN uses for PyTorch, with the same numerics as PyTorch's default on CUDA
//! (`torch.backends.cudnn.allow_tf32 = True`: f32 operands rounded to TF32, f32 accumulation;
//! bf16/fp16 operands under mixed precision as they are).
//!
//! The algorithm is picked per process with `CYTODL_GPU_CONV`:
//! - `direct` (default): exact f32 — [`super::conv_gather`]'s kernel for the forward pass and the
//!   input gradient (burn's direct kernels copy both operands channels-last first; they still run
//!   a shape the gather does not take, and every shape under `CYTODL_GPU_GATHER=off`),
//!   [`super::conv_weight_grad`]'s kernel for the weight gradient in training (burn's leaves the
//!   GPU nearly idle and copies both operands first); what the parity fixtures check against
//!   PyTorch's f32 CPU results within the CPU's tolerances, on CUDA too;
//! - `implicit-gemm`: tensor cores. Forward passes and stride-1 input gradients run CubeCL's
//!   implicit GEMM (a shape it refuses runs the direct kernel, with a note); weight gradients
//!   over large volumes run as split-K batched GEMMs ([`super::conv::weight_grad_split_k`]),
//!   the rest with the implicit GEMM at stride 1 and the exact kernel when strided.
//!
//! Routing is by type identity at run time, as for the CPU kernels (`flex_kernel`), so that
//! model code stays generic over `B: Backend`.

use std::sync::OnceLock;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Shape, Tensor, TensorPrimitive};
use burn_cubecl::kernel::conv::{conv_data_backward, conv_forward, conv_weight_backward, ConvStrategy};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeRuntime};

use super::flex_kernel::layer_on;
use crate::backend::on_cube_runtimes;
pub(super) use crate::backend::Cube;

/// The convolution algorithm GPU backends run (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuConv {
    /// Exact f32 kernels: the gather and weight-gradient kernels, burn's direct ones elsewhere.
    Direct,
    /// CubeCL's implicit GEMM on tensor cores (TF32 for f32 operands).
    ImplicitGemm,
}

impl GpuConv {
    /// The algorithm `CYTODL_GPU_CONV` names; an unknown value is an error naming the choices.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "" | "direct" => Ok(GpuConv::Direct),
            "implicit-gemm" | "tensor-cores" => Ok(GpuConv::ImplicitGemm),
            other => Err(format!("CYTODL_GPU_CONV={other}: expected `direct` or `implicit-gemm`")),
        }
    }

    /// The algorithm this process uses (read once from `CYTODL_GPU_CONV`; an unknown value
    /// warns and keeps `direct`).
    pub fn current() -> Self {
        static CURRENT: OnceLock<GpuConv> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let value = std::env::var("CYTODL_GPU_CONV").unwrap_or_default();
            GpuConv::parse(&value).unwrap_or_else(|e| {
                eprintln!("warning: {e}; using `direct`");
                GpuConv::Direct
            })
        })
    }
}

/// Whether [`conv3d`] runs this convolution on kernels that are right where a kernel is shorter
/// than its stride ([`super::conv_gather`]'s, both passes: the process's algorithm is `direct`,
/// the operands f32, the shape one it takes), so that [`super::conv`] needs no rewrite.
pub fn takes_gaps<B: Backend>(x: &Tensor<B, 5>, weight: &Tensor<B, 5>, options: &ConvOptions<3>) -> bool {
    GpuConv::current() == GpuConv::Direct && x.dtype() == weight.dtype() && super::conv_gather::takes(&x.shape(), &weight.shape(), x.dtype(), options)
}

/// `conv3d` on a GPU backend with the process's algorithm, or `None` when `B` is not one of
/// the compiled-in GPU backends (the caller then runs burn's op).
pub fn conv3d<B: Backend>(x: &Tensor<B, 5>, weight: &Tensor<B, 5>, bias: Option<&Tensor<B, 1>>, options: &ConvOptions<3>) -> Option<Tensor<B, 5>> {
    conv3d_with(GpuConv::current(), x, weight, bias, options)
}

/// [`conv3d`] with the algorithm given rather than the process's (tests compare the two).
pub fn conv3d_with<B: Backend>(
    algorithm: GpuConv,
    x: &Tensor<B, 5>,
    weight: &Tensor<B, 5>,
    bias: Option<&Tensor<B, 1>>,
    options: &ConvOptions<3>,
) -> Option<Tensor<B, 5>> {
    if options.groups != 1 {
        return None;
    }
    on_cube_runtimes!(|R, BT| on_runtime::<B, R, BT>(algorithm, x, weight, bias, options))
}

/// The unfused GPU backends' route; with burn's fusion (`gpu-fusion`) the GPU backends are
/// `Fusion<CubeBackend>`, whose route records the same kernels in the fusion stream.
fn on_runtime<B: Backend, R: CubeRuntime, BT: BoolElement>(
    algorithm: GpuConv,
    x: &Tensor<B, 5>,
    weight: &Tensor<B, 5>,
    bias: Option<&Tensor<B, 1>>,
    options: &ConvOptions<3>,
) -> Option<Tensor<B, 5>> {
    let y = layer_on::<B, Cube<R, BT>, _>(
        (x, weight, bias),
        |x, w, b| Some(forward::<R>(algorithm, x.clone(), w.clone(), b.cloned(), options)),
        ConvBackward,
        |x, w| (x.clone(), w.clone(), options.clone(), algorithm),
    );
    #[cfg(feature = "gpu-fusion")]
    let y = y.or_else(|| super::conv_gpu_fusion::on_runtime::<B, R, BT>(algorithm, x, weight, bias, options));
    y
}

/// The forward pass with the algorithm's kernel: the exact one ([`exact_forward`]), or the
/// implicit GEMM where it takes the shape.
pub(super) fn forward<R: CubeRuntime>(
    algorithm: GpuConv,
    x: CubeTensor<R>,
    w: CubeTensor<R>,
    b: Option<CubeTensor<R>>,
    options: &ConvOptions<3>,
) -> CubeTensor<R> {
    if algorithm == GpuConv::Direct {
        return exact_forward(x, w, b, options);
    }
    let shape = (x.meta.shape().clone(), w.meta.shape().clone());
    conv_forward::<R, 3>(x.clone(), w.clone(), b.clone(), options.clone(), ConvStrategy::ImplicitGemm).unwrap_or_else(|e| {
        note_refusal("forward", &shape, &e);
        exact_forward(x, w, b, options)
    })
}

/// The forward pass in exact f32: [`super::conv_gather`]'s kernel (no layout copies), or burn's
/// direct kernel for a shape it does not take.
pub(super) fn exact_forward<R: CubeRuntime>(x: CubeTensor<R>, w: CubeTensor<R>, b: Option<CubeTensor<R>>, options: &ConvOptions<3>) -> CubeTensor<R> {
    super::conv_gather::forward(&x, &w, b.as_ref(), options).unwrap_or_else(|| {
        conv_forward::<R, 3>(x, w, b, options.clone(), ConvStrategy::Direct).unwrap_or_else(|e| panic!("CubeCL refused a convolution: {e:?}"))
    })
}

/// Says once per pass that CubeCL's GEMM refused a shape (it then runs the direct kernel), so
/// that a user who asked for tensor cores sees where they do not apply.
fn note_refusal(pass: &'static str, shapes: &(Shape, Shape), error: &dyn std::fmt::Debug) {
    static SEEN: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if !seen.contains(&pass) {
        seen.push(pass);
        eprintln!(
            "note: CubeCL's implicit GEMM refused a convolution {pass} pass (input {:?}, weight {:?}): {error:?}; running its direct kernel there",
            shapes.0, shapes.1
        );
    }
}

/// The weight gradient as split-K batched GEMMs ([`super::conv::weight_grad_split_k`]) where the
/// implicit GEMM would leave the GPU idle: a reduction over at least 32768 voxels (the medium
/// DynUNet's two finest levels; at the small one's 16384 it measured slower) and columns that
/// fit in 2 GiB. Generic, so that it runs on the GPU backends with and without burn's fusion.
pub(super) fn split_k_weight_grad<B: Backend>(x: Tensor<B, 5>, dy: Tensor<B, 5>, w_shape: &Shape, options: &ConvOptions<3>) -> Option<Tensor<B, 5>> {
    let (xs, ys) = (x.dims(), dy.dims());
    let reduction = ys[0] * ys[2] * ys[3] * ys[4];
    let taps = w_shape[2] * w_shape[3] * w_shape[4];
    let column_bytes = xs[0] * xs[1] * taps * ys[2] * ys[3] * ys[4] * 4;
    if reduction < 32768 || column_bytes > 1 << 31 {
        return None;
    }
    super::conv::weight_grad_split_k(x, dy, [w_shape[2], w_shape[3], w_shape[4]], options)
}

/// The input gradient with the algorithm's kernel: the exact one ([`exact_input_grad`]), or the
/// implicit GEMM where it takes the shape (CubeCL itself runs strided input gradients with its
/// fallback kernel).
pub(super) fn input_grad<R: CubeRuntime>(algorithm: GpuConv, dy: CubeTensor<R>, w: CubeTensor<R>, in_shape: Shape, options: &ConvOptions<3>) -> CubeTensor<R> {
    if algorithm == GpuConv::Direct {
        return exact_input_grad(dy, w, in_shape, options);
    }
    let shapes = (in_shape.clone(), w.meta.shape().clone());
    conv_data_backward::<R, 3>(dy.clone(), w.clone(), in_shape.clone(), options.clone(), ConvStrategy::ImplicitGemm).unwrap_or_else(|e| {
        note_refusal("input-gradient", &shapes, &e);
        exact_input_grad(dy, w, in_shape, options)
    })
}

/// The input gradient in exact f32: [`super::conv_gather`]'s kernel (no layout copies, right
/// where a kernel is shorter than its stride), or burn's direct kernel for a shape it does not
/// take.
fn exact_input_grad<R: CubeRuntime>(dy: CubeTensor<R>, w: CubeTensor<R>, in_shape: Shape, options: &ConvOptions<3>) -> CubeTensor<R> {
    super::conv_gather::input_grad(&dy, &w, &in_shape, options).unwrap_or_else(|| {
        conv_data_backward::<R, 3>(dy, w, in_shape, options.clone(), ConvStrategy::Direct)
            .unwrap_or_else(|e| panic!("CubeCL refused a convolution's input gradient: {e:?}"))
    })
}

/// The weight gradient that is not split ([`split_k_weight_grad`] declined): the implicit GEMM
/// at stride 1, else [`exact_weight_grad`] (see [`unsplit_weight_grad_strategy`]), with the
/// exact kernel for a shape the GEMM refuses.
pub(super) fn unsplit_weight_grad<R: CubeRuntime>(x: CubeTensor<R>, dy: CubeTensor<R>, w_shape: Shape, options: &ConvOptions<3>) -> CubeTensor<R> {
    let strategy = unsplit_weight_grad_strategy(options);
    if matches!(strategy, ConvStrategy::Direct) {
        return exact_weight_grad(x, dy, w_shape, options);
    }
    match conv_weight_backward::<R, 3>(x.clone(), dy.clone(), w_shape.clone(), options.clone(), strategy) {
        Ok(dw) => dw,
        Err(e) => {
            note_refusal("weight-gradient", &(x.meta.shape().clone(), w_shape.clone()), &e);
            exact_weight_grad(x, dy, w_shape, options)
        }
    }
}

/// The weight gradient in exact f32: [`super::conv_weight_grad`]'s kernel, or burn's direct
/// kernel for a shape it does not take.
pub(super) fn exact_weight_grad<R: CubeRuntime>(x: CubeTensor<R>, dy: CubeTensor<R>, w_shape: Shape, options: &ConvOptions<3>) -> CubeTensor<R> {
    super::conv_weight_grad::weight_grad(&x, &dy, &w_shape, options).unwrap_or_else(|| {
        conv_weight_backward::<R, 3>(x, dy, w_shape, options.clone(), ConvStrategy::Direct)
            .unwrap_or_else(|e| panic!("CubeCL refused a convolution's weight gradient: {e:?}"))
    })
}

/// The bias gradient: `dy` summed over everything but its channels.
pub(super) fn bias_grad<B: Backend>(dy: Tensor<B, 5>) -> Tensor<B, 1> {
    let channels = dy.dims()[1];
    dy.sum_dims(&[0, 2, 3, 4]).reshape([channels])
}

/// The algorithm for a weight gradient that is not split: the implicit GEMM at stride 1; the
/// direct kernel for a strided convolution, whose implicit-GEMM weight gradient disagreed with
/// PyTorch's on an H200 (max relative error 0.79 on DynUNet's first downsampling convolution,
/// far beyond TF32 rounding; BENCHMARKS.md).
fn unsplit_weight_grad_strategy(options: &ConvOptions<3>) -> ConvStrategy {
    if options.stride == [1; 3] {
        ConvStrategy::ImplicitGemm
    } else {
        ConvStrategy::Direct
    }
}

/// The backward step of the convolution: parents `[x, weight]` or `[x, weight, bias]`; each
/// gradient with the algorithm's kernels (for the implicit GEMM, where CubeCL accepts the
/// shape; CubeCL itself runs strided input gradients with its fallback kernel).
#[derive(Debug)]
struct ConvBackward;

impl<R: CubeRuntime, BT: BoolElement, const N: usize> Backward<Cube<R, BT>, N> for ConvBackward {
    type State = (CubeTensor<R>, CubeTensor<R>, ConvOptions<3>, GpuConv);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, w, options, algorithm) = ops.state;
        let dy = grads.consume::<Cube<R, BT>>(&ops.node);
        let wrap = |t: CubeTensor<R>| Tensor::<Cube<R, BT>, 5>::from_primitive(TensorPrimitive::Float(t));
        let mut parents = ops.parents.into_iter();
        if let Some(Some(node)) = parents.next() {
            let in_shape = x.meta.shape().clone();
            grads.register::<Cube<R, BT>>(node.id, input_grad::<R>(algorithm, dy.clone(), w.clone(), in_shape, &options));
        }
        if let Some(Some(node)) = parents.next() {
            let w_shape = w.meta.shape().clone();
            let dw = match algorithm {
                GpuConv::Direct => exact_weight_grad::<R>(x, dy.clone(), w_shape, &options),
                GpuConv::ImplicitGemm => match split_k_weight_grad(wrap(x.clone()), wrap(dy.clone()), &w_shape, &options) {
                    Some(dw) => dw.into_primitive().tensor(),
                    None => unsplit_weight_grad::<R>(x, dy.clone(), w_shape, &options),
                },
            };
            grads.register::<Cube<R, BT>>(node.id, dw);
        }
        if let Some(Some(node)) = parents.next() {
            grads.register::<Cube<R, BT>>(node.id, bias_grad(wrap(dy)).into_primitive().tensor());
        }
    }
}
