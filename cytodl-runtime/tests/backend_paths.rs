//! The code paths GPU backends take, run on the CPU: where the CPU backend has a kernel of its
//! own, the generic path (burn's op) must give the same values and gradients.

use burn::tensor::backend::Backend;
use burn::tensor::module::conv_transpose3d;
use burn::tensor::ops::ConvTransposeOptions;
use burn::tensor::Tensor;
use cytodl_runtime::backend::CpuTrain;
use cytodl_runtime::nn::dynunet::transposed_conv_kernel_eq_stride;
use cytodl_runtime::nn::Init;

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().expect("f32")
}

fn max_rel(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12) as f64;
    a.iter().zip(b).map(|(x, y)| ((x - y).abs() as f64) / scale).fold(0.0, f64::max)
}

/// DynUNet's upsampling (kernel = stride) through burn's `conv_transpose3d` (what GPU backends
/// run) and through the GEMM + depth-to-space the CPU runs: output and the gradients of input,
/// weight and bias.
#[test]
fn transposed_conv_paths_agree() {
    let device = Default::default();
    for (cin, cout, stride, spatial) in [(32usize, 16usize, [1usize, 2, 2], [4usize, 4, 4]), (16, 8, [2, 2, 2], [3, 4, 5]), (8, 4, [2, 2, 2], [2, 2, 2])] {
        let init = Init::new(7);
        let x = init.at("x").normal::<CpuTrain, 5>([2, cin, spatial[0], spatial[1], spatial[2]], 0.0, 1.0, &device);
        let w = init.at("w").normal::<CpuTrain, 5>([cin, cout, stride[0], stride[1], stride[2]], 0.0, 0.2, &device);
        let b = init.at("b").normal::<CpuTrain, 1>([cout], 0.0, 0.1, &device);
        let out_shape = [2, cout, spatial[0] * stride[0], spatial[1] * stride[1], spatial[2] * stride[2]];
        let upstream = init.at("g").normal::<CpuTrain, 5>(out_shape, 0.0, 1.0, &device);
        let run = |generic: bool| {
            let (x, w, b) = (x.clone().require_grad(), w.clone().require_grad(), b.clone().require_grad());
            let y = if generic {
                conv_transpose3d(x.clone(), w.clone(), Some(b.clone()), ConvTransposeOptions::new(stride, [0; 3], [0; 3], [1; 3], 1))
            } else {
                transposed_conv_kernel_eq_stride(x.clone(), w.clone(), Some(b.clone()))
            };
            assert_eq!(y.dims(), out_shape);
            let grads = (y.clone() * upstream.clone()).sum().backward();
            (values(y), values(x.grad(&grads).expect("x grad")), values(w.grad(&grads).expect("w grad")), values(b.grad(&grads).expect("bias grad")))
        };
        let (generic, ours) = (run(true), run(false));
        let what = format!("cin {cin} cout {cout} stride {stride:?}");
        assert!(max_rel(&generic.0, &ours.0) < 1e-5, "{what}: output {}", max_rel(&generic.0, &ours.0));
        assert!(max_rel(&generic.1, &ours.1) < 1e-5, "{what}: input gradient {}", max_rel(&generic.1, &ours.1));
        assert!(max_rel(&generic.2, &ours.2) < 1e-5, "{what}: weight gradient {}", max_rel(&generic.2, &ours.2));
        assert!(max_rel(&generic.3, &ours.3) < 1e-5, "{what}: bias gradient {}", max_rel(&generic.3, &ours.3));
    }
}

/// Output and gradients (input, weight, bias) of a transposed convolution (stride `stride`, no
/// padding) of `x: [2, cin, ..spatial]` with a `[cin, cout, ..kernel]` weight: burn's op
/// (`ours = false`) or the layers' GPU route (`nn::conv_transpose_gpu`, `ours = true`).
#[cfg(feature = "wgpu")]
fn transposed_conv_grads<B: burn::tensor::backend::AutodiffBackend>(
    device: &B::Device,
    (cin, cout, kernel, stride, spatial): (usize, usize, [usize; 3], [usize; 3], [usize; 3]),
    ours: bool,
) -> [Vec<f32>; 4] {
    let init = Init::new(8);
    let x = init.at("x").normal::<B, 5>([2, cin, spatial[0], spatial[1], spatial[2]], 0.0, 1.0, device).require_grad();
    let w = init.at("w").normal::<B, 5>([cin, cout, kernel[0], kernel[1], kernel[2]], 0.0, 0.2, device).require_grad();
    let b = init.at("b").normal::<B, 1>([cout], 0.0, 0.1, device).require_grad();
    let burns = || conv_transpose3d(x.clone(), w.clone(), Some(b.clone()), ConvTransposeOptions::new(stride, [0; 3], [0; 3], [1; 3], 1));
    let y = match ours {
        // With and without burn's fusion (`gpu-fusion`: recorded in its stream).
        true => cytodl_runtime::nn::conv_transpose_gpu::conv_transpose3d(&x, &w, Some(&b), stride).expect("a GPU backend is routed"),
        false => burns(),
    };
    let upstream = init.at("g").normal::<B, 5>(y.dims(), 0.0, 1.0, device);
    let grads = (y.clone() * upstream).sum().backward();
    [values(y), values(x.grad(&grads).expect("x grad")), values(w.grad(&grads).expect("w grad")), values(b.grad(&grads).expect("bias grad"))]
}

/// The GPU route of transposed convolutions on wgpu gives burn's CPU values and gradients:
/// DynUNet's upsamplings (kernel = stride, isotropic and anisotropic) and overlapping taps
/// (kernel 3, stride 2).
#[cfg(feature = "wgpu")]
#[test]
fn transposed_conv_on_wgpu() {
    use cytodl_runtime::backend::WgpuTrain;
    for case in [(32, 16, [2, 2, 2], [2, 2, 2], [4, 4, 4]), (16, 8, [1, 2, 2], [1, 2, 2], [3, 4, 5]), (3, 5, [3, 3, 3], [2, 2, 2], [3, 4, 5])] {
        let cpu = transposed_conv_grads::<CpuTrain>(&Default::default(), case, false);
        let gpu = transposed_conv_grads::<WgpuTrain>(&Default::default(), case, true);
        let e: Vec<f64> = gpu.iter().zip(&cpu).map(|(g, c)| max_rel(g, c)).collect();
        assert!(e.iter().all(|v| *v < 1e-5), "{case:?}: output, input, weight, bias gradient errors {e:?}");
    }
}

/// DynUNet's skip connection: a tensor used twice, once concatenated after another along the
/// channels, once further down; its gradient is the sum of both paths.
fn skip_connection_grad<B: burn::tensor::backend::AutodiffBackend>(device: &B::Device, shape: [usize; 5]) -> Vec<f32> {
    let init = Init::new(11);
    let x = init.at("x").normal::<B, 5>(shape, 0.0, 1.0, device).require_grad();
    let up = init.at("up").normal::<B, 5>(shape, 0.0, 1.0, device).require_grad();
    let mut r_shape = shape;
    r_shape[1] *= 2;
    let r1 = init.at("r1").normal::<B, 5>(r_shape, 0.0, 1.0, device);
    let r2 = init.at("r2").normal::<B, 5>(shape, 0.0, 1.0, device);
    let down = x.clone().mul_scalar(2.0);
    let joined = Tensor::cat(vec![up.clone(), x.clone()], 1);
    let loss = (joined * r1).sum() + (down * r2).sum();
    let grads = loss.backward();
    values(x.grad(&grads).expect("x grad"))
}

#[test]
fn skip_connection_gradient_on_the_cpu() {
    // d loss / d x = r1[:, C..] + 2 r2, by hand.
    let shape = [1, 16, 4, 8, 8];
    let got = skip_connection_grad::<CpuTrain>(&Default::default(), shape);
    let init = Init::new(11);
    let device = Default::default();
    let r1 = init.at("r1").normal::<CpuTrain, 5>([1, 32, 4, 8, 8], 0.0, 1.0, &device);
    let r2 = init.at("r2").normal::<CpuTrain, 5>(shape, 0.0, 1.0, &device);
    let want = values(r1.narrow(1, 16, 16) + r2.mul_scalar(2.0));
    assert!(max_rel(&got, &want) < 1e-6, "{}", max_rel(&got, &want));
}

#[cfg(feature = "wgpu")]
#[test]
fn skip_connection_gradient_on_wgpu() {
    for shape in [[1, 16, 4, 8, 8], [1, 16, 16, 32, 32], [2, 8, 8, 16, 16]] {
        let cpu = skip_connection_grad::<CpuTrain>(&Default::default(), shape);
        let gpu = skip_connection_grad::<cytodl_runtime::backend::WgpuTrain>(&Default::default(), shape);
        assert!(max_rel(&gpu, &cpu) < 1e-6, "{shape:?}: {}", max_rel(&gpu, &cpu));
    }
}

/// Output and gradients (input, weight) of a convolution: burn's op (`ours = false`) or our
/// gap-free rewrite of it (`ours = true`, what the network layers run on GPU backends).
fn conv_grads<B: burn::tensor::backend::AutodiffBackend>(device: &B::Device, case: ConvCase, ours: bool) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    conv_grads_by::<B>(device, case, |x, w, options| match ours {
        true => cytodl_runtime::nn::conv::conv3d_without_gaps(x, w, None, options),
        false => burn::tensor::module::conv3d(x, w, None, options),
    })
}

/// [`conv_grads`] of the convolution `conv` computes.
fn conv_grads_by<B: burn::tensor::backend::AutodiffBackend>(
    device: &B::Device,
    case: ConvCase,
    conv: impl Fn(Tensor<B, 5>, Tensor<B, 5>, burn::tensor::ops::ConvOptions<3>) -> Tensor<B, 5>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    use burn::tensor::ops::ConvOptions;
    let (xs, ws, stride, padding) = case;
    let init = Init::new(5);
    let x = init.at("x").normal::<B, 5>(xs, 0.0, 1.0, device).require_grad();
    let w = init.at("w").normal::<B, 5>(ws, 0.0, 0.1, device).require_grad();
    let options = ConvOptions::new(stride, padding, [1, 1, 1], 1);
    let y = conv(x.clone(), w.clone(), options);
    let r = init.at("r").normal::<B, 5>(y.dims(), 0.0, 1.0, device);
    let grads = (y.clone() * r).sum().backward();
    (values(y), values(x.grad(&grads).expect("x grad")), values(w.grad(&grads).expect("w grad")))
}

/// Input shape, weight shape, stride, padding.
type ConvCase = ([usize; 5], [usize; 5], [usize; 3], [usize; 3]);

/// DynUNet's convolutions in the dynunet3d_seg parity fixture (and an anisotropic and an odd-sized
/// strided 1x1 one), a batch of two whose output voxels span a ragged number of the weight
/// gradient kernel's chunks (4096 voxels each), output channel counts that give each of its
/// tiles (8, 4, 2 and 1 channels), and a 5x5x5 kernel (more taps than the kernels take: burn's
/// direct kernels run).
const CONV_CASES: [ConvCase; 14] = [
    ([1, 1, 16, 32, 32], [16, 1, 3, 3, 3], [1, 1, 1], [1, 1, 1]),
    ([1, 16, 16, 32, 32], [16, 16, 3, 3, 3], [1, 1, 1], [1, 1, 1]),
    ([1, 16, 16, 32, 32], [32, 16, 3, 3, 3], [2, 2, 2], [1, 1, 1]),
    ([1, 16, 16, 32, 32], [32, 16, 1, 1, 1], [2, 2, 2], [0, 0, 0]),
    ([1, 32, 8, 16, 16], [64, 32, 3, 3, 3], [2, 2, 2], [1, 1, 1]),
    ([1, 32, 8, 16, 16], [64, 32, 1, 1, 1], [2, 2, 2], [0, 0, 0]),
    ([2, 8, 5, 9, 12], [16, 8, 1, 1, 1], [1, 2, 2], [0, 0, 0]),
    ([1, 4, 7, 7, 7], [8, 4, 1, 1, 1], [3, 2, 1], [0, 0, 0]),
    // dynunet3d_basic_4lvl's anisotropic level: kernel 1 along Z with stride 2.
    ([2, 4, 8, 16, 16], [8, 4, 1, 3, 3], [2, 2, 2], [0, 1, 1]),
    // Kernels longer than 1 and shorter than the stride, odd sizes.
    ([1, 3, 9, 10, 11], [4, 3, 2, 3, 1], [3, 2, 2], [0, 1, 0]),
    ([1, 2, 6, 6, 6], [2, 2, 3, 1, 3], [3, 3, 4], [1, 0, 1]),
    ([2, 3, 9, 20, 20], [4, 3, 3, 3, 3], [1, 1, 1], [1, 1, 1]),
    // An odd number of output channels: one per tile.
    ([1, 5, 6, 7, 8], [3, 5, 3, 3, 3], [1, 1, 1], [1, 1, 1]),
    ([1, 2, 6, 7, 8], [3, 2, 5, 5, 5], [1, 1, 1], [2, 2, 2]),
];

/// `(output, input gradient, weight gradient)` relative errors of `gpu` against `cpu`.
fn errors(gpu: &(Vec<f32>, Vec<f32>, Vec<f32>), cpu: &(Vec<f32>, Vec<f32>, Vec<f32>)) -> [f64; 3] {
    [max_rel(&gpu.0, &cpu.0), max_rel(&gpu.1, &cpu.1), max_rel(&gpu.2, &cpu.2)]
}

/// The convolution the network layers call gives the CPU's values and gradients on wgpu (the
/// CubeCL kernels CUDA runs too: our gather kernel for the forward pass and the input gradient,
/// our weight-gradient kernel; burn's direct kernels for the 5x5x5 case), for every case.
#[cfg(feature = "wgpu")]
#[test]
fn conv_gradients_on_wgpu() {
    use cytodl_runtime::backend::WgpuTrain;
    for case in CONV_CASES {
        let cpu = conv_grads::<CpuTrain>(&Default::default(), case, false);
        let gpu = conv_grads::<WgpuTrain>(&Default::default(), case, true);
        let e = errors(&gpu, &cpu);
        assert!(e.iter().all(|v| *v < 1e-5), "x {:?} w {:?} stride {:?}: output, input gradient, weight gradient errors {e:?}", case.0, case.1, case.2);
    }
}

/// Output and gradients of the layers' convolution when its input and weight are channels-last
/// in memory, viewed as NCDHW (strides, no copy: how burn's channels-last kernels leave their
/// outputs), gradients in the leaves' channels-last order.
#[cfg(feature = "wgpu")]
fn channels_last_conv_grads<B: burn::tensor::backend::AutodiffBackend>(device: &B::Device, case: ConvCase) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    use burn::tensor::ops::ConvOptions;
    let ([n, c, z, y, x], [o, _, kz, ky, kx], stride, padding) = case;
    let init = Init::new(6);
    let xl = init.at("x").normal::<B, 5>([n, z, y, x, c], 0.0, 1.0, device).require_grad();
    let wl = init.at("w").normal::<B, 5>([o, kz, ky, kx, c], 0.0, 0.1, device).require_grad();
    let options = ConvOptions::new(stride, padding, [1, 1, 1], 1);
    let out = cytodl_runtime::nn::conv::conv3d_without_gaps(xl.clone().permute([0, 4, 1, 2, 3]), wl.clone().permute([0, 4, 1, 2, 3]), None, options);
    let r = init.at("r").normal::<B, 5>(out.dims(), 0.0, 1.0, device);
    let grads = (out.clone() * r).sum().backward();
    (values(out), values(xl.grad(&grads).expect("x grad")), values(wl.grad(&grads).expect("w grad")))
}

/// With the gather kernel off (`CYTODL_GPU_GATHER=off`, read once per process, so in a child
/// process running [`conv_gradients_on_wgpu`]), burn's direct kernels run every convolution
/// after the gap-free rewrite and still give the CPU's values and gradients: the route the
/// gather kernel replaced stays right for the kernels that still use it (16-bit, implicit GEMM
/// refusals) and for `scripts/gpu_check.sh`'s comparison.
#[cfg(feature = "wgpu")]
#[test]
fn conv_gradients_on_wgpu_with_burns_direct_kernels() {
    let exe = std::env::current_exe().expect("the test binary's path");
    let run = std::process::Command::new(exe)
        .args(["--exact", "conv_gradients_on_wgpu", "--test-threads", "1", "--nocapture"])
        .env("CYTODL_GPU_GATHER", "off")
        .output()
        .expect("the test binary runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "conv_gradients_on_wgpu failed with burn's direct kernels:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child ran no test:\n{stdout}");
    assert!(stderr.contains("CYTODL_GPU_GATHER=off"), "the gather kernel was not turned off:\n{stderr}");
}

/// The GPU kernels read channels-last operands through their strides and give the CPU's
/// values and gradients (a 3x3x3, a strided one and an anisotropic one).
#[cfg(feature = "wgpu")]
#[test]
fn conv_of_channels_last_views_on_wgpu() {
    use cytodl_runtime::backend::WgpuTrain;
    for case in [CONV_CASES[1], CONV_CASES[2], CONV_CASES[8]] {
        let cpu = channels_last_conv_grads::<CpuTrain>(&Default::default(), case);
        let gpu = channels_last_conv_grads::<WgpuTrain>(&Default::default(), case);
        let e = errors(&gpu, &cpu);
        assert!(e.iter().all(|v| *v < 1e-5), "x {:?} w {:?} stride {:?}: output, input gradient, weight gradient errors {e:?}", case.0, case.1, case.2);
    }
}

/// The implicit-GEMM route of the GPU backends (`CYTODL_GPU_CONV=implicit-gemm`: forward, input
/// and weight gradients, split-K weight gradients over large volumes, and with `gpu-fusion` the
/// same kernels recorded in burn's fusion stream), after the layers' gap-free rewrite, gives the
/// CPU's values and gradients, for every case and one large enough for split-K. On lavapipe CubeCL's GEMM has no tensor cores
/// and declines (the direct kernel runs, with a note), so the tolerance is f32's; on a GPU,
/// `scripts/gpu_check.sh` checks it with TF32.
#[cfg(feature = "wgpu")]
#[test]
fn implicit_gemm_route_on_wgpu() {
    use cytodl_runtime::backend::WgpuTrain;
    use cytodl_runtime::nn::conv_gpu::{conv3d_with, GpuConv};
    let split_k: ConvCase = ([1, 4, 32, 32, 32], [8, 4, 3, 3, 3], [1, 1, 1], [1, 1, 1]);
    for case in CONV_CASES.into_iter().chain([split_k]) {
        let cpu = conv_grads::<CpuTrain>(&Default::default(), case, false);
        let gpu = conv_grads_by::<WgpuTrain>(&Default::default(), case, |x, w, options| {
            let (x, w, options) = cytodl_runtime::nn::conv::without_gaps(x, w, options);
            conv3d_with(GpuConv::ImplicitGemm, &x, &w, None, &options).expect("a wgpu backend is routed")
        });
        let e = errors(&gpu, &cpu);
        assert!(e.iter().all(|v| *v < 1e-5), "x {:?} w {:?} stride {:?}: output, input gradient, weight gradient errors {e:?}", case.0, case.1, case.2);
    }
}

/// The reproducer of burn 0.21's fault: CubeCL's input gradient of a convolution whose kernel is
/// shorter than its stride (here a strided 1x1) is wrong (relative error ~1), while its output and
/// weight gradient are right. When this test fails, burn has fixed it:
/// `cytodl_runtime::nn::conv` can go back to burn's op.
#[cfg(feature = "wgpu")]
#[test]
fn burn_strided_pointwise_conv_input_gradient_is_wrong_on_cubecl() {
    use cytodl_runtime::backend::WgpuTrain;
    let case: ConvCase = ([1, 16, 16, 32, 32], [32, 16, 1, 1, 1], [2, 2, 2], [0, 0, 0]);
    let cpu = conv_grads::<CpuTrain>(&Default::default(), case, false);
    let gpu = conv_grads::<WgpuTrain>(&Default::default(), case, false);
    let [out, dx, dw] = errors(&gpu, &cpu);
    assert!(out < 1e-5 && dw < 1e-5, "output {out}, weight gradient {dw}");
    assert!(dx > 0.5, "burn's strided 1x1 conv input gradient is right now ({dx}): remove the route around it in cytodl_runtime::nn::conv");
}

/// On the CPU, the route around (subsampling, zero taps) is the same function as burn's op,
/// gradients included. The two sum in different orders (and burn's op splits its sums across
/// threads by load), so they agree to f32 rounding: 1e-5 of the largest value, where the fault
/// this routes around showed as 0.93.
#[test]
fn gap_free_conv_is_the_strided_conv() {
    for case in CONV_CASES {
        let direct = conv_grads::<CpuTrain>(&Default::default(), case, false);
        let ours = conv_grads::<CpuTrain>(&Default::default(), case, true);
        let e = errors(&ours, &direct);
        assert!(e.iter().all(|v| *v < 1e-5), "x {:?} stride {:?}: {e:?}", case.0, case.2);
    }
}

/// `nn::torch_autograd` (LibTorch layers differentiated by torch's autograd) against burn's own
/// formulas on the same LibTorch kernels (the CPU here).
#[cfg(feature = "libtorch")]
mod torch_autograd_layers {
    use burn::backend::{Autodiff, LibTorch};
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::Tensor;
    use cytodl_runtime::nn::torch_autograd;
    use cytodl_runtime::nn::Init;

    type Train = Autodiff<LibTorch>;

    fn grads_of(through_torch: bool) -> Vec<Vec<f32>> {
        let device = Default::default();
        let init = Init::new(3);
        let x = init.at("x").normal::<Train, 5>([2, 3, 5, 6, 7], 0.0, 1.0, &device).require_grad();
        let w = init.at("w").normal::<Train, 5>([4, 3, 3, 3, 3], 0.0, 1.0, &device).require_grad();
        let b = init.at("b").normal::<Train, 1>([4], 0.0, 1.0, &device).require_grad();
        let g = init.at("g").normal::<Train, 1>([4], 1.0, 0.1, &device).require_grad();
        let beta = init.at("beta").normal::<Train, 1>([4], 0.0, 0.1, &device).require_grad();
        let options = ConvOptions::new([2, 1, 1], [1, 1, 1], [1, 1, 1], 1);
        let y = if through_torch {
            torch_autograd::conv3d(&x, &w, Some(&b), &options).expect("Autodiff<LibTorch> routes through torch")
        } else {
            burn::tensor::module::conv3d(x.clone(), w.clone(), Some(b.clone()), options)
        };
        let y = if through_torch {
            torch_autograd::instance_norm(&y, &g, &beta, 1e-5).expect("routes")
        } else {
            let mean = y.clone().mean_dims(&[2, 3, 4]);
            let centered = y - mean;
            let var = centered.clone().powi_scalar(2).mean_dims(&[2, 3, 4]);
            centered / (var + 1e-5).sqrt() * g.clone().reshape([1, 4, 1, 1, 1]) + beta.clone().reshape([1, 4, 1, 1, 1])
        };
        let wt = init.at("wt").normal::<Train, 5>([4, 2, 2, 2, 2], 0.0, 1.0, &device).require_grad();
        let bt = init.at("bt").normal::<Train, 1>([2], 0.0, 1.0, &device).require_grad();
        let z = if through_torch {
            torch_autograd::conv_transpose3d(&y, &wt, Some(&bt), [2, 2, 2]).expect("routes")
        } else {
            burn::tensor::module::conv_transpose3d(
                y,
                wt.clone(),
                Some(bt.clone()),
                burn::tensor::ops::ConvTransposeOptions::new([2; 3], [0; 3], [0; 3], [1; 3], 1),
            )
        };
        let target = init.at("target").normal::<Train, 5>(z.dims(), 0.0, 1.0, &device);
        let grads = (z * target).sum().backward();
        let values = |t: Option<Tensor<LibTorch, 5>>| t.expect("gradient").into_data().to_vec::<f32>().expect("f32");
        let values1 = |t: Option<Tensor<LibTorch, 1>>| t.expect("gradient").into_data().to_vec::<f32>().expect("f32");
        vec![
            values(x.grad(&grads)),
            values(w.grad(&grads)),
            values1(b.grad(&grads)),
            values1(g.grad(&grads)),
            values1(beta.grad(&grads)),
            values(wt.grad(&grads)),
            values1(bt.grad(&grads)),
        ]
    }

    /// Torch's autograd gives burn's gradients (burn's formulas on the same LibTorch kernels),
    /// for every parent of a strided conv, an instance norm and a transposed conv in a chain.
    /// (The first conv's bias has a zero gradient through the instance norm: compared absolutely.)
    #[test]
    fn torch_autograd_gradients_equal_burns() {
        let (ours, burns) = (grads_of(true), grads_of(false));
        for (i, (a, b)) in ours.iter().zip(&burns).enumerate() {
            assert_eq!(a.len(), b.len());
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(0.1);
            let diff = a.iter().zip(b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
            assert!(diff / scale < 1e-4, "parent {i}: max|diff| {diff} at scale {scale}");
        }
    }

    #[test]
    fn other_backends_are_not_routed() {
        let x = Tensor::<cytodl_runtime::backend::CpuTrain, 5>::zeros([1, 1, 2, 2, 2], &Default::default());
        let w = Tensor::<cytodl_runtime::backend::CpuTrain, 5>::zeros([1, 1, 1, 1, 1], &Default::default());
        assert!(torch_autograd::conv3d(&x, &w, None, &ConvOptions::new([1; 3], [0; 3], [1; 3], 1)).is_none());
    }
}

/// The hand-written CubeCL kernels (Adam, instance norm, leaky ReLU) on wgpu against the CPU.
#[cfg(feature = "wgpu")]
mod cubecl_kernels {
    use super::*;

    /// Parameters shaped like a convolution's weight and bias, for the optimizer tests.
    #[derive(burn::module::Module, Debug)]
    struct ConvLikeParams<B: Backend> {
        weight: burn::module::Param<Tensor<B, 5>>,
        bias: burn::module::Param<Tensor<B, 1>>,
    }

    /// The parameters after three optimizer steps on a quadratic loss whose weight gradient is a
    /// permuted (non-contiguous) tensor, as a convolution's weight gradient is on the GPU backends.
    fn after_three_steps<B: burn::tensor::backend::AutodiffBackend>(
        device: &B::Device,
        config: &cytodl_runtime::optim::OptimizerConfig,
    ) -> (Vec<f32>, Vec<f32>) {
        use burn::module::Param;
        use cytodl_runtime::optim::Optimizer;
        let init = Init::new(5);
        let mut params = ConvLikeParams::<B> {
            weight: Param::from_tensor(init.at("w").normal::<B, 5>([16, 8, 3, 3, 3], 0.0, 0.3, device)),
            bias: Param::from_tensor(init.at("b").normal::<B, 1>([16], 0.0, 0.1, device)),
        };
        let target = init.at("t").normal::<B, 5>([8, 16, 3, 3, 3], 0.0, 0.3, device);
        let mut optimizer = Optimizer::<B>::new(config.clone()).expect("valid optimizer");
        for _ in 0..3 {
            let w = params.weight.val().swap_dims(0, 1);
            let b = params.bias.val();
            let loss = (w - target.clone()).powi_scalar(2).sum() + b.clone().powi_scalar(4).sum();
            let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &params);
            params = optimizer.step(1e-2, params, grads);
        }
        (values(params.weight.val()), values(params.bias.val()))
    }

    /// Adam and AdamW as one hand-written kernel per parameter on wgpu (`optim::adam_gpu`): the
    /// kernel is what runs there, and three steps give the CPU's tensor-op update to f32 rounding.
    #[test]
    fn adam_kernel_on_wgpu_gives_the_cpu_update() {
        use cytodl_runtime::backend::{Wgpu, WgpuTrain};
        use cytodl_runtime::optim::{AdamConfig, AdamWConfig, OptimizerConfig, SgdConfig};
        let configs = [
            OptimizerConfig::Adam(AdamConfig::default()),
            OptimizerConfig::Adam(AdamConfig { weight_decay: 1e-2, ..Default::default() }),
            OptimizerConfig::AdamW(AdamWConfig::default()),
        ];
        for config in &configs {
            // With burn's fusion the element-wise update is fused already and keeps burn's ops.
            let kernel = !cfg!(feature = "gpu-fusion");
            assert_eq!(config.has_gpu_kernel::<Wgpu>(), kernel, "{config:?}: the GPU kernel runs on wgpu exactly without fusion");
            let cpu = after_three_steps::<CpuTrain>(&Default::default(), config);
            let gpu = after_three_steps::<WgpuTrain>(&Default::default(), config);
            assert!(max_rel(&gpu.0, &cpu.0) < 1e-5, "{config:?}: weight {}", max_rel(&gpu.0, &cpu.0));
            assert!(max_rel(&gpu.1, &cpu.1) < 1e-5, "{config:?}: bias {}", max_rel(&gpu.1, &cpu.1));
        }
        let amsgrad = OptimizerConfig::Adam(AdamConfig { amsgrad: true, ..Default::default() });
        assert!(!amsgrad.has_gpu_kernel::<Wgpu>() && !OptimizerConfig::Sgd(SgdConfig::default()).has_gpu_kernel::<Wgpu>());
        assert!(!configs[0].has_gpu_kernel::<cytodl_runtime::backend::Cpu>());
    }

    /// Output and gradients (input, weight, bias) of an instance normalisation whose input and
    /// upstream gradient are channels-last views (the layout burn's GPU convolutions leave) or
    /// contiguous.
    fn instance_norm_grads<B: burn::tensor::backend::AutodiffBackend>(
        device: &B::Device,
        shape: [usize; 5],
        affine: bool,
        channels_last: bool,
    ) -> Vec<Vec<f32>> {
        let init = Init::new(13);
        let [n, c, z, y, x] = shape;
        let tensor = |name: &str, mean: f64, std: f64| match channels_last {
            true => init.at(name).normal::<B, 5>([n, z, y, x, c], mean, std, device).permute([0, 4, 1, 2, 3]),
            false => init.at(name).normal::<B, 5>(shape, mean, std, device),
        };
        let input = tensor("x", 0.5, 2.0).require_grad();
        let upstream = tensor("r", 0.0, 1.0);
        let w = init.at("w").normal::<B, 1>([c], 1.0, 0.3, device).require_grad();
        let b = init.at("b").normal::<B, 1>([c], 0.0, 0.3, device).require_grad();
        let params = affine.then(|| (w.clone(), b.clone()));
        let out = cytodl_runtime::nn::norm_cpu::instance_norm(input.clone(), params, 1e-5);
        let grads = (out.clone() * upstream).sum().backward();
        let mut all = vec![values(out), values(input.grad(&grads).expect("x grad"))];
        if affine {
            all.push(values(w.grad(&grads).expect("weight grad")));
            all.push(values(b.grad(&grads).expect("bias grad")));
        }
        all
    }

    /// Instance norm's CubeCL kernels (`nn::norm_cubecl`) on wgpu give the CPU kernel's output and
    /// gradients: batches of one and two, volumes smaller and larger than a cube's units and than
    /// one cube's share (32768 voxels: then chunks of 8192 and a merge, the last chunk shorter or
    /// not), with and without affine parameters, contiguous and channels-last inputs.
    #[test]
    fn instance_norm_kernels_on_wgpu_match_the_cpu() {
        use cytodl_runtime::backend::WgpuTrain;
        let shapes = [
            ([2, 16, 4, 8, 8], true),
            ([1, 8, 16, 32, 32], true),
            ([2, 3, 1, 5, 7], false),
            ([1, 4, 3, 3, 3], true),
            ([2, 3, 5, 100, 70], true),
            ([1, 2, 3, 128, 128], false),
        ];
        for (shape, affine) in shapes {
            for channels_last in [false, true] {
                let cpu = instance_norm_grads::<CpuTrain>(&Default::default(), shape, affine, channels_last);
                let gpu = instance_norm_grads::<WgpuTrain>(&Default::default(), shape, affine, channels_last);
                for (what, (g, c)) in ["output", "dx", "dweight", "dbias"].iter().zip(gpu.iter().zip(&cpu)) {
                    let e = max_rel(g, c);
                    assert!(e < 1e-5, "{shape:?} affine {affine} channels-last {channels_last}: {what} {e}");
                }
            }
        }
    }

    /// Output and input gradient of `nn::leaky_relu` on a non-contiguous input with zeros in it.
    fn leaky_relu_grads<B: burn::tensor::backend::AutodiffBackend>(device: &B::Device) -> (Vec<f32>, Vec<f32>) {
        let init = Init::new(17);
        let x = init.at("x").normal::<B, 5>([2, 6, 5, 7, 3], 0.0, 1.0, device).permute([0, 4, 1, 2, 3]);
        // Exact zeros take the positive branch, as in burn's op.
        let x = x.clone().mask_fill(x.clone().abs().lower_elem(0.05), 0.0).require_grad();
        let upstream = init.at("r").normal::<B, 5>([2, 3, 6, 5, 7], 0.0, 1.0, device);
        let y = cytodl_runtime::nn::leaky_relu::leaky_relu(x.clone(), 0.01);
        let grads = (y.clone() * upstream).sum().backward();
        (values(y), values(x.grad(&grads).expect("x grad")))
    }

    /// The leaky ReLU kernels on wgpu (one launch each way) give burn's op on the CPU bit for bit.
    #[test]
    fn leaky_relu_kernels_on_wgpu_match_the_cpu() {
        let cpu = leaky_relu_grads::<CpuTrain>(&Default::default());
        let gpu = leaky_relu_grads::<cytodl_runtime::backend::WgpuTrain>(&Default::default());
        assert!(cpu.0.contains(&0.0) && cpu.0.iter().any(|v| *v < 0.0), "the input has zeros and negatives");
        assert_eq!(gpu.0, cpu.0, "output");
        assert_eq!(gpu.1, cpu.1, "input gradient");
    }
}

/// A tensor too large for the GPU fails on CubeCL's device thread, which catches the panic and
/// goes on (the sum then reads back 0, a silently wrong result): `device_fault` records it, so
/// that training and prediction stop with it (`tests/device_fault.rs`). When this fails, CubeCL
/// has changed how it reports a failed task or names its threads.
#[cfg(feature = "wgpu")]
#[test]
fn an_allocation_the_gpu_cannot_make_is_a_device_fault() {
    use cytodl_runtime::device_fault;
    device_fault::watch();
    let sixteen_gib = Tensor::<cytodl_runtime::backend::Wgpu, 1>::ones([1usize << 32], &Default::default());
    let sum = sixteen_gib.sum().into_scalar();
    let fault = device_fault::check().expect_err(&format!("the failed allocation is recorded (the sum read back {sum})"));
    assert!(device_fault::is_device_thread(&fault.thread), "{fault}");
    assert!(fault.to_string().contains("ran out of memory"), "{fault}");
}

/// A GPU the machine lacks is an error naming the cause, not a panic: burn's runtimes panic
/// when there is no driver or adapter (on the device thread, then on the caller's), which
/// `DeviceSpec::run` catches at the device's first use. The test runs itself again in a child
/// process whose Vulkan loader finds no driver (lavapipe hidden).
#[cfg(feature = "wgpu")]
#[test]
fn a_gpu_the_machine_lacks_is_an_error_not_a_panic() {
    use cytodl_runtime::backend::{DeviceError, DeviceSpec, OnBackend};
    const CHILD: &str = "CYTODL_TEST_WITHOUT_A_GPU";
    struct Touch;
    impl OnBackend for Touch {
        type Output = f32;
        fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device, _: bool) -> f32 {
            {
                use burn::tensor::ElementConversion;
                Tensor::<B, 1>::ones([4], &device).sum().into_scalar().elem::<f32>()
            }
        }
    }
    if std::env::var_os(CHILD).is_some() {
        match DeviceSpec::Wgpu.run("wgpu", Touch) {
            Err(e @ DeviceError::Unavailable { .. }) => println!("child: {e}"),
            other => panic!("expected the device to be unavailable, got {other:?}"),
        }
        // The CPU still works in the same process.
        assert_eq!(DeviceSpec::Cpu.run("cpu", Touch), Ok(4.0));
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let out = std::process::Command::new(exe)
        .args(["--exact", "a_gpu_the_machine_lacks_is_an_error_not_a_panic", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .output()
        .expect("run the test binary again");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    let line = stdout.lines().find_map(|l| l.split_once("child: ")).map(|(_, e)| e).unwrap_or_else(|| panic!("the child ran nothing:\n{stdout}\n{stderr}"));
    assert!(line.contains("device wgpu cannot be used: ") && line.contains("adapter") && line.contains("--device cpu"), "{line}");
    assert!(!stderr.contains("panicked"), "the device's panics are caught quietly:\n{stderr}");
}
