//! Adam's update as one GPU kernel per parameter.
//!
//! Written with burn's tensor ops, one Adam update is ~12 kernel launches, so on a GPU backend
//! without burn's fusion the optimizer used to concatenate parameters into groups and update
//! each group once — paying a copy in (values and gradients) and a copy out per parameter: 144
//! of the 159 launches of a small DynUNet's optimizer step on wgpu. This kernel reads a
//! parameter, its gradient and both moments once and writes the new three: one launch per
//! parameter and no copies (BENCHMARKS.md, "Kernel launches per train step").
//!
//! The arithmetic is the tensor-op formula's ([`super::optimizer`]'s `adam_update`), operation
//! for operation, with the same f32 constants; a GPU compiler may still contract a multiply and
//! an add into one rounding, so it agrees to float rounding, not bit for bit (test
//! `tests/backend_paths.rs`). AMSGrad keeps the tensor-op path (its extra buffer is rare in
//! cyto_dl configs), as do SGD and backends with burn's fusion (their element-wise chains are
//! fused already).

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeRuntime};

use crate::backend::{cast, elementwise_launch, is, on_cube_runtimes, Cube};

/// The per-step constants of one Adam update, computed in f64 like the tensor-op path and
/// rounded to f32 as burn rounds a scalar operand.
#[derive(Debug, Clone, Copy)]
pub(super) struct AdamCoefficients {
    /// What the parameter is multiplied by first (`1 - lr * weight_decay` for AdamW, else 1).
    pub decay: f32,
    /// Adam's L2 term added to the gradient (`weight_decay * p`), when not decoupled.
    pub l2: Option<f32>,
    pub one_minus_beta1: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    pub bias_correction2_sqrt: f32,
    pub eps: f32,
    pub step_size: f32,
}

/// The kernel (its own module: CubeCL's `Tensor` is not burn's).
mod kernel {
    use burn_cubecl::cubecl;
    use cubecl::prelude::*;

    #[cube(launch)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn adam_kernel<F: Float>(
        param: &Tensor<F>,
        grad: &Tensor<F>,
        exp_avg: &Tensor<F>,
        exp_avg_sq: &Tensor<F>,
        param_out: &mut Tensor<F>,
        exp_avg_out: &mut Tensor<F>,
        exp_avg_sq_out: &mut Tensor<F>,
        decay: f32,
        l2: f32,
        one_minus_beta1: f32,
        beta2: f32,
        one_minus_beta2: f32,
        bias_correction2_sqrt: f32,
        eps: f32,
        step_size: f32,
        #[comptime] with_l2: bool,
        #[define(F)] _dtype: StorageType,
    ) {
        let i = ABSOLUTE_POS;
        if i >= param.len() {
            terminate!();
        }
        let mut g = grad[i];
        if with_l2 {
            g += param[i] * F::cast_from(l2);
        }
        let p = param[i] * F::cast_from(decay);
        let m = exp_avg[i];
        let m = m + (g - m) * F::cast_from(one_minus_beta1);
        let v = exp_avg_sq[i] * F::cast_from(beta2) + g * g * F::cast_from(one_minus_beta2);
        let denom = v.sqrt() / F::cast_from(bias_correction2_sqrt) + F::cast_from(eps);
        param_out[i] = p - m / denom * F::cast_from(step_size);
        exp_avg_out[i] = m;
        exp_avg_sq_out[i] = v;
    }
}

/// One Adam update of a flat f32 parameter on a CubeCL runtime: the new value and moments.
fn launch<R: CubeRuntime>(
    param: CubeTensor<R>,
    grad: CubeTensor<R>,
    exp_avg: CubeTensor<R>,
    exp_avg_sq: CubeTensor<R>,
    c: &AdamCoefficients,
) -> [CubeTensor<R>; 3] {
    let [param, grad, exp_avg, exp_avg_sq] = [param, grad, exp_avg, exp_avg_sq].map(into_contiguous);
    let out = || empty_device_dtype(param.client.clone(), param.device.clone(), param.meta.shape().clone(), param.dtype);
    let outputs = [out(), out(), out()];
    let client = param.client.clone();
    let (cube_count, cube_dim) = elementwise_launch(&outputs[0]);
    let dtype = param.dtype;
    kernel::adam_kernel::launch::<R>(
        &client,
        cube_count,
        cube_dim,
        param.into_tensor_arg(),
        grad.into_tensor_arg(),
        exp_avg.into_tensor_arg(),
        exp_avg_sq.into_tensor_arg(),
        outputs[0].clone().into_tensor_arg(),
        outputs[1].clone().into_tensor_arg(),
        outputs[2].clone().into_tensor_arg(),
        c.decay,
        c.l2.unwrap_or(0.0),
        c.one_minus_beta1,
        c.beta2,
        c.one_minus_beta2,
        c.bias_correction2_sqrt,
        c.eps,
        c.step_size,
        c.l2.is_some(),
        dtype.into(),
    );
    outputs
}

/// Whether `B` is a GPU backend this kernel runs on (CUDA or wgpu without burn's fusion).
pub(super) fn available<B: Backend>() -> bool {
    on_cube_runtimes!(|R, BT| is::<B, Cube<R, BT>>().then_some(())).is_some()
}

/// The fused update when `B` is one of [`available`]'s backends and the tensors are f32;
/// `None` otherwise (the caller runs the tensor-op formula).
pub(super) fn update<B: Backend>(
    param: &Tensor<B, 1>,
    grad: &Tensor<B, 1>,
    exp_avg: &Tensor<B, 1>,
    exp_avg_sq: &Tensor<B, 1>,
    c: &AdamCoefficients,
) -> Option<[Tensor<B, 1>; 3]> {
    on_cube_runtimes!(|R, BT| on_runtime::<B, R, BT>(param, grad, exp_avg, exp_avg_sq, c))
}

fn on_runtime<B: Backend, R: CubeRuntime, BT: BoolElement>(
    param: &Tensor<B, 1>,
    grad: &Tensor<B, 1>,
    exp_avg: &Tensor<B, 1>,
    exp_avg_sq: &Tensor<B, 1>,
    c: &AdamCoefficients,
) -> Option<[Tensor<B, 1>; 3]> {
    let inner = |t: &Tensor<B, 1>| -> Option<CubeTensor<R>> {
        let t = cast::<_, Tensor<Cube<R, BT>, 1>>(t.clone())?.into_primitive().tensor();
        (t.dtype == DType::F32).then_some(t)
    };
    let outputs = launch::<R>(inner(param)?, inner(grad)?, inner(exp_avg)?, inner(exp_avg_sq)?, c);
    let outer = |t: CubeTensor<R>| cast::<_, Tensor<B, 1>>(Tensor::<Cube<R, BT>, 1>::from_primitive(TensorPrimitive::Float(t)));
    let [p, m, v] = outputs;
    Some([outer(p)?, outer(m)?, outer(v)?])
}
