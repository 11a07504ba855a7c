//! The code paths GPU backends take, run on the CPU: where the CPU backend has a kernel of its
//! own, the generic path (burn's op) must give the same values and gradients.

use burn::tensor::module::conv_transpose3d;
use burn::tensor::ops::ConvTransposeOptions;
use burn::tensor::backend::Backend;
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
