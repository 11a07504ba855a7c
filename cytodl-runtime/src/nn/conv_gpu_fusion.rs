//! [`super::conv_gpu`]'s convolutions on burn's fusion backend (feature `gpu-fusion`).
//!
//! With `burn/fusion`, the GPU backends are `Fusion<CubeBackend>`: every operation is recorded
//! in a stream, and chains of element-wise operations, reductions and matmuls with their
//! element-wise neighbours run as one kernel each (a DynUNet step is ~2150 launches without it,
//! mostly not convolutions). burn records its own convolutions as unfused operations; ours are
//! recorded the same way, as custom operations whose `execute` runs the CubeTensor kernels of
//! `conv_gpu` on the stream's thread, in stream order — lazily, like every other operation, and
//! a boundary for the fusers. The autodiff step records the gradients the same way; the split-K
//! weight gradient and the bias gradient are plain tensor operations, so fusion sees them. Both
//! algorithms are recorded, in training and in inference (`direct` for its exact kernels that
//! read NCDHW without layout copies), and so are DynUNet's transposed convolutions
//! ([`super::conv_transpose_gpu`]: the gather kernel forward, the exact convolution kernels
//! backward; burn's would copy both operands channels-last for each of its four passes).

use std::marker::PhantomData;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::tensor::backend::Backend;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, ModuleOps};
use burn::tensor::{Shape, Tensor, TensorPrimitive};
use burn_cubecl::fusion::FusionCubeRuntime;
use burn_cubecl::{BoolElement, CubeRuntime};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{Fusion, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

use super::conv_gpu::{bias_grad, exact_weight_grad, forward, input_grad, split_k_weight_grad, unsplit_weight_grad, Cube, GpuConv};
use super::flex_kernel::layer_on;

type Fused<R, BT> = Fusion<Cube<R, BT>>;
type FusedTensor<R> = FusionTensor<FusionCubeRuntime<R>>;

/// `conv3d` with `algorithm` when `B` is `Fusion<CubeBackend<R>>` or its autodiff; `None` for
/// any other backend.
pub(super) fn on_runtime<B: Backend, R: CubeRuntime, BT: BoolElement>(
    algorithm: GpuConv,
    x: &Tensor<B, 5>,
    weight: &Tensor<B, 5>,
    bias: Option<&Tensor<B, 1>>,
    options: &ConvOptions<3>,
) -> Option<Tensor<B, 5>> {
    layer_on::<B, Fused<R, BT>, _>(
        (x, weight, bias),
        |x, w, b| Some(record_forward::<R, BT>(algorithm, x, w, b, options)),
        FusedConvBackward,
        |x, w| (x.clone(), w.clone(), options.clone(), algorithm),
    )
}

/// `conv_transpose3d` (padding 0, see [`super::conv_transpose_gpu`]) when `B` is
/// `Fusion<CubeBackend<R>>` or its autodiff and the gather kernel takes the shape; `None`
/// otherwise (the caller runs burn's op).
pub(super) fn transposed_on_runtime<B: Backend, R: CubeRuntime, BT: BoolElement>(
    x: &Tensor<B, 5>,
    weight: &Tensor<B, 5>,
    bias: Option<&Tensor<B, 1>>,
    options: &ConvOptions<3>,
) -> Option<Tensor<B, 5>> {
    layer_on::<B, Fused<R, BT>, _>(
        (x, weight, bias),
        |x, w, b| record_transposed::<R, BT>(x, w, b, options),
        FusedTransposedBackward,
        |x, w| (x.clone(), w.clone(), options.clone()),
    )
}

/// Which kernel a recorded convolution runs; its inputs, in order.
#[derive(Debug, Clone, Copy)]
enum Pass {
    /// `[x, weight]` or `[x, weight, bias]`.
    Forward,
    /// `[dy, weight]`; the output has the input's shape.
    InputGradient,
    /// `[x, dy]`; the output has the weight's shape.
    WeightGradient,
    /// A transposed convolution: `[x, weight]` or `[x, weight, bias]`, the weight `[Cin, Cout, k]`.
    Transposed,
}

impl Pass {
    fn name(self) -> &'static str {
        match self {
            Pass::Forward => "cytodl_conv3d",
            Pass::InputGradient => "cytodl_conv3d_input_grad",
            Pass::WeightGradient => "cytodl_conv3d_weight_grad",
            Pass::Transposed => "cytodl_conv_transpose3d",
        }
    }
}

/// A convolution pass in the fusion stream. The options live here, not in the IR (as burn's
/// own custom operations keep theirs).
struct ConvOperation<R, BT> {
    desc: CustomOpIr,
    pass: Pass,
    algorithm: GpuConv,
    options: ConvOptions<3>,
    _backend: PhantomData<fn() -> (R, BT)>,
}

impl<R, BT> std::fmt::Debug for ConvOperation<R, BT> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConvOperation")
            .field("pass", &self.pass)
            .field("algorithm", &self.algorithm)
            .field("desc", &self.desc)
            .field("options", &self.options)
            .finish()
    }
}

impl<R: CubeRuntime, BT: BoolElement> Operation<FusionCubeRuntime<R>> for ConvOperation<R, BT> {
    fn execute(&self, handles: &mut HandleContainer<<FusionCubeRuntime<R> as FusionRuntime>::FusionHandle>) {
        let mut inputs = self.desc.inputs.iter().map(|ir| handles.get_float_tensor::<Cube<R, BT>>(ir)).collect::<Vec<_>>().into_iter();
        let out = &self.desc.outputs[0];
        let (Some(first), Some(second)) = (inputs.next(), inputs.next()) else {
            panic!("{}: recorded with fewer than two inputs", self.pass.name());
        };
        let y = match self.pass {
            Pass::Forward => forward::<R>(self.algorithm, first, second, inputs.next(), &self.options),
            Pass::InputGradient => input_grad::<R>(self.algorithm, first, second, out.shape.clone(), &self.options),
            Pass::WeightGradient => match self.algorithm {
                GpuConv::Direct => exact_weight_grad::<R>(first, second, out.shape.clone(), &self.options),
                GpuConv::ImplicitGemm => unsplit_weight_grad::<R>(first, second, out.shape.clone(), &self.options),
            },
            // Recorded where the gather takes the shape; burn's kernel should the two ever disagree.
            Pass::Transposed => {
                let bias = inputs.next();
                super::conv_gather::transposed(&first, &second, bias.as_ref(), &self.options).unwrap_or_else(|| {
                    let options = ConvTransposeOptions::new(self.options.stride, [0; 3], [0; 3], [1; 3], 1);
                    Cube::<R, BT>::conv_transpose3d(first, second, bias, options)
                })
            }
        };
        // The dtype the stream was told (a fallback kernel could write another).
        let y = if y.dtype != out.dtype { burn_cubecl::kernel::cast(y, out.dtype) } else { y };
        handles.register_float_tensor::<Cube<R, BT>>(&out.id, y);
    }
}

/// Records `pass` with `algorithm` over `inputs` in their stream, with an output of `shape` in
/// the dtype the kernel writes (the input's, or for a weight gradient `dy`'s, as burn's IR has
/// it; under autocast the half-precision type), and returns that output.
fn record<R: CubeRuntime, BT: BoolElement>(
    pass: Pass,
    algorithm: GpuConv,
    inputs: &[&FusedTensor<R>],
    shape: Shape,
    options: &ConvOptions<3>,
) -> FusedTensor<R> {
    let client = inputs[0].client.clone();
    let streams = OperationStreams::with_inputs(inputs.iter().copied());
    let written_like = match pass {
        Pass::WeightGradient => inputs[1],
        Pass::Forward | Pass::InputGradient | Pass::Transposed => inputs[0],
    };
    let out = TensorIr::uninit(client.create_empty_handle(), shape, written_like.dtype);
    // Clones: the caller keeps its tensors (the autodiff state holds x and the weight).
    let irs: Vec<TensorIr> = inputs.iter().map(|t| (*t).clone().into_ir()).collect();
    let desc = CustomOpIr::new(pass.name(), &irs, &[out]);
    let operation = ConvOperation::<R, BT> { desc: desc.clone(), pass, algorithm, options: options.clone(), _backend: PhantomData };
    client.register(streams, OperationIr::Custom(desc), operation).output()
}

/// The forward pass recorded, its output shape worked out as burn does.
fn record_forward<R: CubeRuntime, BT: BoolElement>(
    algorithm: GpuConv,
    x: &FusedTensor<R>,
    w: &FusedTensor<R>,
    b: Option<&FusedTensor<R>>,
    options: &ConvOptions<3>,
) -> FusedTensor<R> {
    let (xs, ws) = (&x.shape, &w.shape);
    let mut out = vec![xs[0], ws[0]];
    for d in 0..3 {
        let span = options.dilation[d] * (ws[d + 2] - 1) + 1;
        out.push((xs[d + 2] + 2 * options.padding[d] - span) / options.stride[d] + 1);
    }
    let mut inputs = vec![x, w];
    inputs.extend(b);
    record::<R, BT>(Pass::Forward, algorithm, &inputs, Shape::from(out), options)
}

/// The transposed convolution recorded, or `None` where the gather kernel does not take it
/// (operands not all f32, padding, a shape beyond its limits).
fn record_transposed<R: CubeRuntime, BT: BoolElement>(
    x: &FusedTensor<R>,
    w: &FusedTensor<R>,
    b: Option<&FusedTensor<R>>,
    options: &ConvOptions<3>,
) -> Option<FusedTensor<R>> {
    let same_dtype = w.dtype == x.dtype && b.is_none_or(|b| b.dtype == x.dtype);
    if !same_dtype || !super::conv_gather::takes_transposed(&x.shape, &w.shape, x.dtype, options) {
        return None;
    }
    let out = super::conv_gather::transposed_shape(&x.shape, &w.shape, options)?;
    let mut inputs = vec![x, w];
    inputs.extend(b);
    Some(record::<R, BT>(Pass::Transposed, GpuConv::Direct, &inputs, out, options))
}

/// [`super::conv_transpose_gpu`]'s backward step, recorded: the input gradient is the
/// convolution of `dy` with the weight, the weight gradient the convolution's weight gradient
/// with `dy` as the input and `x` as the output gradient (both exact f32); parents `[x, weight]`
/// or `[x, weight, bias]`.
#[derive(Debug)]
struct FusedTransposedBackward;

impl<R: CubeRuntime, BT: BoolElement, const N: usize> Backward<Fused<R, BT>, N> for FusedTransposedBackward {
    type State = (FusedTensor<R>, FusedTensor<R>, ConvOptions<3>);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, w, options) = ops.state;
        let dy = grads.consume::<Fused<R, BT>>(&ops.node);
        let mut parents = ops.parents.into_iter();
        if let Some(Some(node)) = parents.next() {
            grads.register::<Fused<R, BT>>(node.id, record::<R, BT>(Pass::Forward, GpuConv::Direct, &[&dy, &w], x.shape.clone(), &options));
        }
        if let Some(Some(node)) = parents.next() {
            grads.register::<Fused<R, BT>>(node.id, record::<R, BT>(Pass::WeightGradient, GpuConv::Direct, &[&dy, &x], w.shape.clone(), &options));
        }
        if let Some(Some(node)) = parents.next() {
            let dy = Tensor::<Fused<R, BT>, 5>::from_primitive(TensorPrimitive::Float(dy));
            grads.register::<Fused<R, BT>>(node.id, bias_grad(dy).into_primitive().tensor());
        }
    }
}

/// [`super::conv_gpu`]'s backward step, recorded: parents `[x, weight]` or `[x, weight, bias]`.
#[derive(Debug)]
struct FusedConvBackward;

impl<R: CubeRuntime, BT: BoolElement, const N: usize> Backward<Fused<R, BT>, N> for FusedConvBackward {
    type State = (FusedTensor<R>, FusedTensor<R>, ConvOptions<3>, GpuConv);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, w, options, algorithm) = ops.state;
        let dy = grads.consume::<Fused<R, BT>>(&ops.node);
        let wrap = |t: &FusedTensor<R>| Tensor::<Fused<R, BT>, 5>::from_primitive(TensorPrimitive::Float(t.clone()));
        let mut parents = ops.parents.into_iter();
        if let Some(Some(node)) = parents.next() {
            grads.register::<Fused<R, BT>>(node.id, record::<R, BT>(Pass::InputGradient, algorithm, &[&dy, &w], x.shape.clone(), &options));
        }
        if let Some(Some(node)) = parents.next() {
            let split_k = match algorithm {
                GpuConv::ImplicitGemm => split_k_weight_grad(wrap(&x), wrap(&dy), &w.shape, &options),
                GpuConv::Direct => None,
            };
            let dw = match split_k {
                Some(dw) => dw.into_primitive().tensor(),
                None => record::<R, BT>(Pass::WeightGradient, algorithm, &[&x, &dy], w.shape.clone(), &options),
            };
            grads.register::<Fused<R, BT>>(node.id, dw);
        }
        if let Some(Some(node)) = parents.next() {
            grads.register::<Fused<R, BT>>(node.id, bias_grad(wrap(&dy)).into_primitive().tensor());
        }
    }
}
