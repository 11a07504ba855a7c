//! 3-D convolution on the CPU backend as tiled im2col + GEMM, forward *and* backward.
//!
//! burn 0.21's Flex backend computes a convolution's forward pass with im2col + GEMM, but its
//! backward pass goes through burn's generic formulas: the weight gradient is a convolution whose
//! "kernel" is the whole output gradient (an im2col over the full volume for each of the 27
//! kernel taps) and the input gradient a `conv_transpose3d` with a scalar col2im. On DynUNet's
//! medium model these made a train step ~7x slower than PyTorch. Here every pass is a GEMM over
//! tiles of output rows:
//!
//! - forward: `Y[n][:, tile] = W[O, C·K] @ cols(X[n], tile)[C·K, T]`;
//! - weight gradient: `dW += dY[n][:, tile] @ cols(X[n], tile)ᵀ` (partial sums per thread);
//! - input gradient: for stride 1, the forward pass of `dY` with the flipped, transposed kernel;
//!   otherwise `cols = Wᵀ @ dY[n][:, tile]` scattered back (col2im) one channel per thread;
//! - bias gradient: the sum of `dY` over batch and space.
//!
//! [`conv3d`] routes the CPU backends here (f32, groups 1, dilation 1) and everything else (CUDA,
//! other dtypes) to burn's `conv3d`. The routing is by type identity at run time so that model
//! code stays generic over `B: Backend`. Set `CYTODL_BURN_CONV=1` to use burn's kernels anyway
//! (to compare; `examples/dynunet-bench.rs`).

use std::sync::OnceLock;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Shape, Tensor};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::flex_kernel::{flex_tensor as tensor_from, inference_input, inference_output, is, tracked_input, tracked_output};
use crate::backend::{Cpu, CpuTrain};

/// Bytes of im2col columns built per tile: small enough to stay in L2 with the packed GEMM
/// operands, large enough that a GEMM call amortises its set-up.
const TILE_BYTES: usize = 1 << 20;

/// `conv3d` with the CPU fast path; `bias` is `[O]`, `weight` `[O, C, kz, ky, kx]`.
pub fn conv3d<B: Backend>(x: Tensor<B, 5>, weight: Tensor<B, 5>, bias: Option<Tensor<B, 1>>, options: ConvOptions<3>) -> Tensor<B, 5> {
    let supported = options.groups == 1 && options.dilation == [1, 1, 1] && !burn_conv_forced();
    if supported && is::<B, CpuTrain>() {
        if let Some(y) = autodiff_conv3d::<B>(&x, &weight, bias.as_ref(), &options) {
            return y;
        }
    } else if supported && is::<B, Cpu>() {
        if let Some(y) = inference_conv3d::<B>(&x, &weight, bias.as_ref(), &options) {
            return y;
        }
    }
    burn::tensor::module::conv3d(x, weight, bias, options)
}

/// Whether this backend runs [`conv3d`]'s own kernel (the CPU backend, unless
/// `CYTODL_BURN_CONV` asks for burn's).
pub fn has_own_kernel<B: Backend>() -> bool {
    (is::<B, CpuTrain>() || is::<B, Cpu>()) && !burn_conv_forced()
}

fn burn_conv_forced() -> bool {
    static FORCED: OnceLock<bool> = OnceLock::new();
    *FORCED.get_or_init(|| std::env::var_os("CYTODL_BURN_CONV").is_some_and(|v| v != "0"))
}

fn inference_conv3d<B: Backend>(x: &Tensor<B, 5>, weight: &Tensor<B, 5>, bias: Option<&Tensor<B, 1>>, options: &ConvOptions<3>) -> Option<Tensor<B, 5>> {
    let x = inference_input(x)?;
    let w = inference_input(weight)?;
    let b = match bias {
        Some(b) => Some(inference_input(b)?),
        None => None,
    };
    let geometry = Geometry::new(x.layout().shape(), w.layout().shape(), options)?;
    let y = forward(&geometry, x.as_slice()?, w.as_slice()?, b.as_ref().and_then(|b| b.as_slice()));
    inference_output(y)
}

/// The shapes of one convolution: input `[n, c, d...]`, weight `[o, c, k...]`, output `[n, o,
/// out...]`, with symmetric zero padding `p` and stride `s`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Geometry {
    n: usize,
    c: usize,
    o: usize,
    input: [usize; 3],
    kernel: [usize; 3],
    stride: [usize; 3],
    padding: [usize; 3],
    out: [usize; 3],
}

impl Geometry {
    fn new(x: &Shape, w: &Shape, options: &ConvOptions<3>) -> Option<Self> {
        if x.num_dims() != 5 || w.num_dims() != 5 || x[1] != w[1] {
            return None;
        }
        let input = [x[2], x[3], x[4]];
        let kernel = [w[2], w[3], w[4]];
        let mut out = [0; 3];
        for (a, out) in out.iter_mut().enumerate() {
            let padded = input[a] + 2 * options.padding[a];
            if padded < kernel[a] || options.stride[a] == 0 {
                return None;
            }
            *out = (padded - kernel[a]) / options.stride[a] + 1;
        }
        Some(Geometry { n: x[0], c: x[1], o: w[0], input, kernel, stride: options.stride, padding: options.padding, out })
    }

    fn kernel_volume(&self) -> usize {
        self.kernel.iter().product()
    }
    /// Rows of the im2col matrix: one per (input channel, kernel tap).
    fn ck(&self) -> usize {
        self.c * self.kernel_volume()
    }
    fn input_volume(&self) -> usize {
        self.input.iter().product()
    }
    fn out_volume(&self) -> usize {
        self.out.iter().product()
    }
    /// Output rows (z, y) per tile so that a tile's columns take about [`TILE_BYTES`].
    fn rows_per_tile(&self) -> usize {
        let row_bytes = self.ck() * self.out[2] * std::mem::size_of::<f32>();
        (TILE_BYTES / row_bytes.max(1)).max(1)
    }
    /// `(first row, rows)` of every tile of one sample's output rows.
    fn tiles(&self) -> Vec<(usize, usize)> {
        let rows = self.out[0] * self.out[1];
        let per = self.rows_per_tile();
        (0..rows.div_ceil(per)).map(|t| (t * per, per.min(rows - t * per))).collect()
    }
    /// The geometry of the input gradient of a stride-1 convolution computed as a forward
    /// convolution of the output gradient with the flipped kernel; `None` when the padding
    /// would be negative.
    fn flipped(&self) -> Option<Geometry> {
        if self.stride != [1, 1, 1] || (0..3).any(|a| self.padding[a] + 1 > self.kernel[a]) {
            return None;
        }
        let padding = std::array::from_fn(|a| self.kernel[a] - 1 - self.padding[a]);
        Some(Geometry { n: self.n, c: self.o, o: self.c, input: self.out, kernel: self.kernel, stride: [1, 1, 1], padding, out: self.input })
    }
}

/// One kernel tap `(kz, ky, kx)` seen along x: output positions `lo..hi` of a row read inside
/// the input, from input x `x0` on with step `stride[2]`; the others read the padding.
struct Tap {
    kz: usize,
    ky: usize,
    lo: usize,
    hi: usize,
    x0: usize,
}

impl Geometry {
    /// The kernel's taps in weight order (kz, ky, kx).
    fn taps(&self) -> Vec<Tap> {
        let [kd, kh, kw] = self.kernel;
        let (w, wo, sx, px) = (self.input[2], self.out[2], self.stride[2], self.padding[2]);
        let mut taps = Vec::with_capacity(kd * kh * kw);
        for kz in 0..kd {
            for ky in 0..kh {
                for kx in 0..kw {
                    // xi = xo*sx + kx - px must fall in 0..w.
                    let lo = px.saturating_sub(kx).div_ceil(sx).min(wo);
                    let hi = if w + px > kx { ((w + px - kx - 1) / sx + 1).min(wo) } else { 0 };
                    let hi = hi.max(lo);
                    taps.push(Tap { kz, ky, lo, hi, x0: (lo * sx + kx).saturating_sub(px) });
                }
            }
        }
        taps
    }

    /// For output row `row` (a (z, y) pair) and a tap: where the input row it reads starts in a
    /// channel plane, or `None` when it lies in the padding.
    fn input_row(&self, row: usize, tap: &Tap) -> Option<usize> {
        let (zo, yo) = (row / self.out[1], row % self.out[1]);
        let zi = (zo * self.stride[0] + tap.kz).checked_sub(self.padding[0]).filter(|&z| z < self.input[0])?;
        let yi = (yo * self.stride[1] + tap.ky).checked_sub(self.padding[1]).filter(|&y| y < self.input[1])?;
        Some((zi * self.input[1] + yi) * self.input[2])
    }
}

/// im2col for output rows `first..first + rows` of one sample: `cols[r][t]` with `r` = (channel,
/// kz, ky, kx) and `t` the output position within the tile; zero where the tap falls in the
/// padding.
fn im2col(g: &Geometry, x: &[f32], first: usize, rows: usize, cols: &mut [f32]) {
    let (wo, sx, plane) = (g.out[2], g.stride[2], g.input_volume());
    let taps = g.taps();
    let mut rows_out = cols.chunks_exact_mut(wo);
    for xc in x.chunks_exact(plane).take(g.c) {
        for tap in &taps {
            for (row, seg) in (first..first + rows).zip(&mut rows_out) {
                let Some(start) = g.input_row(row, tap) else {
                    seg.fill(0.0);
                    continue;
                };
                seg[..tap.lo].fill(0.0);
                seg[tap.hi..].fill(0.0);
                if tap.lo == tap.hi {
                    continue;
                }
                let src = &xc[start + tap.x0..];
                if sx == 1 {
                    seg[tap.lo..tap.hi].copy_from_slice(&src[..tap.hi - tap.lo]);
                } else {
                    for (j, v) in seg[tap.lo..tap.hi].iter_mut().enumerate() {
                        *v = src[j * sx];
                    }
                }
            }
        }
    }
}

/// Inverse of [`im2col`] for one sample: adds every column entry back onto the input position
/// it was read from. Channels are independent, so they run in parallel.
fn col2im_add(g: &Geometry, cols: &[f32], first: usize, rows: usize, dx: &mut [f32]) {
    let (wo, sx) = (g.out[2], g.stride[2]);
    let taps = g.taps();
    let per_channel = taps.len() * rows * wo;
    dx.par_chunks_mut(g.input_volume()).zip(cols.par_chunks(per_channel)).for_each(|(dxc, cols)| {
        let mut rows_in = cols.chunks_exact(wo);
        for tap in &taps {
            for (row, seg) in (first..first + rows).zip(&mut rows_in) {
                let Some(start) = g.input_row(row, tap).filter(|_| tap.lo < tap.hi) else { continue };
                let dst = &mut dxc[start + tap.x0..];
                for (j, v) in seg[tap.lo..tap.hi].iter().enumerate() {
                    dst[j * sx] += v;
                }
            }
        }
    });
}

/// A raw pointer that may cross threads: each tile writes a disjoint set of output columns.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: the pointer is only dereferenced (by GEMM) on output columns owned by one tile.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// `C = A @ B` (or `C += A @ B` with `accumulate`), all f32, strides in elements as
/// `(row stride, column stride)`.
///
/// # Safety
/// The pointers must address `m x k`, `k x n` and `m x n` matrices with the given strides, and
/// no other thread may touch the part of `dst` written here.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_strides: (usize, usize),
    lhs: *const f32,
    lhs_strides: (usize, usize),
    rhs: *const f32,
    rhs_strides: (usize, usize),
    accumulate: bool,
    parallel: bool,
) {
    let parallelism = if parallel { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_strides.1 as isize,
            dst_strides.0 as isize,
            accumulate,
            lhs,
            lhs_strides.1 as isize,
            lhs_strides.0 as isize,
            rhs,
            rhs_strides.1 as isize,
            rhs_strides.0 as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Forward pass: `[n, o, out...]`.
fn forward(g: &Geometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> FlexTensor {
    let (ck, p_in, p_out, wo) = (g.ck(), g.input_volume(), g.out_volume(), g.out[2]);
    let mut y = vec![0.0f32; g.n * g.o * p_out];
    let jobs: Vec<(usize, usize, usize)> = (0..g.n).flat_map(|n| g.tiles().into_iter().map(move |(first, rows)| (n, first, rows))).collect();
    let out = SendPtr(y.as_mut_ptr());
    jobs.par_iter().for_each_init(Vec::new, |cols, &(n, first, rows)| {
        let t = rows * wo;
        cols.resize(ck * t, 0.0);
        im2col(g, &x[n * g.c * p_in..(n + 1) * g.c * p_in], first, rows, cols);
        // SAFETY: `y` is `[n][o][p_out]`; this job writes columns first*wo..first*wo+t of
        // sample n only, and the tiles of a sample are disjoint.
        unsafe {
            matmul(g.o, t, ck, out.get().add(n * g.o * p_out + first * wo), (p_out, 1), w.as_ptr(), (ck, 1), cols.as_ptr(), (t, 1), false, false);
        }
    });
    if let Some(b) = bias {
        y.par_chunks_mut(p_out).enumerate().for_each(|(i, plane)| {
            let v = b[i % g.o];
            plane.iter_mut().for_each(|e| *e += v);
        });
    }
    tensor_from(y, [g.n, g.o, g.out[0], g.out[1], g.out[2]])
}

/// How many partial sums the weight gradient is split into: a constant, so that the result is
/// the same bits on any number of threads.
const WEIGHT_GRAD_PARTS: usize = 16;

/// Gradient with respect to the weight: `[o, c, k...]`.
fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> FlexTensor {
    let (ck, p_in, p_out, wo) = (g.ck(), g.input_volume(), g.out_volume(), g.out[2]);
    let jobs: Vec<(usize, usize, usize)> = (0..g.n).flat_map(|n| g.tiles().into_iter().map(move |(first, rows)| (n, first, rows))).collect();
    // Each part sums a fixed run of jobs into its own buffer, and the parts are added in order:
    // the float sums are grouped the same way whatever the thread count or scheduling (a rayon
    // fold/reduce groups them by work stealing, which changed dW's last bits from run to run).
    let per_part = jobs.len().div_ceil(WEIGHT_GRAD_PARTS).max(1);
    let parts: Vec<Vec<f32>> = jobs
        .par_chunks(per_part)
        .map(|part| {
            let mut acc = vec![0.0f32; g.o * ck];
            let mut cols = Vec::new();
            for &(n, first, rows) in part {
                let t = rows * wo;
                cols.resize(ck * t, 0.0);
                im2col(g, &x[n * g.c * p_in..(n + 1) * g.c * p_in], first, rows, &mut cols);
                // SAFETY: `acc` is this part's own [o, ck] buffer; `dy` rows of sample n,
                // columns first*wo.. (row stride p_out); `cols` read transposed.
                unsafe {
                    matmul(
                        g.o,
                        ck,
                        t,
                        acc.as_mut_ptr(),
                        (ck, 1),
                        dy.as_ptr().add(n * g.o * p_out + first * wo),
                        (p_out, 1),
                        cols.as_ptr(),
                        (1, t),
                        true,
                        false,
                    );
                }
            }
            acc
        })
        .collect();
    let mut parts = parts.into_iter();
    let mut dw = parts.next().unwrap_or_else(|| vec![0.0f32; g.o * ck]);
    for part in parts {
        dw.iter_mut().zip(&part).for_each(|(x, y)| *x += y);
    }
    tensor_from(dw, [g.o, g.c, g.kernel[0], g.kernel[1], g.kernel[2]])
}

/// Gradient with respect to the input: `[n, c, input...]`.
fn input_grad(g: &Geometry, w: &[f32], dy: &[f32]) -> FlexTensor {
    let shape = [g.n, g.c, g.input[0], g.input[1], g.input[2]];
    if let Some(flipped) = g.flipped() {
        // w[o][c][k] -> wf[c][o][K-1-k]
        let kvol = g.kernel_volume();
        let mut wf = vec![0.0f32; w.len()];
        for o in 0..g.o {
            for c in 0..g.c {
                let src = &w[(o * g.c + c) * kvol..][..kvol];
                let dst = &mut wf[(c * g.o + o) * kvol..][..kvol];
                for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = *s;
                }
            }
        }
        return forward(&flipped, dy, &wf, None);
    }
    let (ck, p_in, p_out, wo) = (g.ck(), g.input_volume(), g.out_volume(), g.out[2]);
    let mut dx = vec![0.0f32; g.n * g.c * p_in];
    let mut cols = Vec::new();
    for (n, dxn) in dx.chunks_exact_mut(g.c * p_in).enumerate() {
        for (first, rows) in g.tiles() {
            let t = rows * wo;
            cols.resize(ck * t, 0.0);
            // SAFETY: cols is [ck, t]; w read transposed ([o, ck] -> [ck, o]); dy rows of
            // sample n, columns first*wo.. with row stride p_out.
            unsafe {
                matmul(ck, t, g.o, cols.as_mut_ptr(), (t, 1), w.as_ptr(), (1, ck), dy.as_ptr().add(n * g.o * p_out + first * wo), (p_out, 1), false, true);
            }
            col2im_add(g, &cols, first, rows, dxn);
        }
    }
    tensor_from(dx, shape)
}

/// Gradient with respect to the bias: `dy` summed over batch and space.
fn bias_grad(g: &Geometry, dy: &[f32]) -> FlexTensor {
    let p_out = g.out_volume();
    let mut db = vec![0.0f64; g.o];
    for (i, plane) in dy.chunks_exact(p_out).enumerate() {
        db[i % g.o] += plane.iter().map(|&v| v as f64).sum::<f64>();
    }
    tensor_from(db.into_iter().map(|v| v as f32).collect(), [g.o])
}

/// The backward step of [`autodiff_conv3d`]: parents are `[x, weight]` or `[x, weight, bias]`.
#[derive(Debug)]
struct Conv3dBackward;

impl<const N: usize> Backward<Cpu, N> for Conv3dBackward {
    type State = (FlexTensor, FlexTensor, Geometry);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, w, g) = ops.state;
        let dy = grads.consume::<Cpu>(&ops.node);
        let dy = if dy.is_contiguous() { dy } else { dy.to_contiguous() };
        let (Some(x), Some(w), Some(dy)) = (x.as_slice(), w.as_slice(), dy.as_slice()) else {
            // Unreachable: the state was checked f32 and contiguous when recorded, and burn
            // propagates f32 gradients for f32 outputs.
            return;
        };
        let mut parents = ops.parents.into_iter();
        if let Some(Some(node)) = parents.next() {
            grads.register::<Cpu>(node.id, input_grad(&g, w, dy));
        }
        if let Some(Some(node)) = parents.next() {
            grads.register::<Cpu>(node.id, weight_grad(&g, x, dy));
        }
        if let Some(Some(node)) = parents.next() {
            grads.register::<Cpu>(node.id, bias_grad(&g, dy));
        }
    }
}

fn autodiff_conv3d<B: Backend>(x: &Tensor<B, 5>, weight: &Tensor<B, 5>, bias: Option<&Tensor<B, 1>>, options: &ConvOptions<3>) -> Option<Tensor<B, 5>> {
    let (x, xp) = tracked_input(x)?;
    let (w, wp) = tracked_input(weight)?;
    let b = match bias {
        Some(b) => Some(tracked_input(b)?),
        None => None,
    };
    let g = Geometry::new(xp.layout().shape(), wp.layout().shape(), options)?;
    let y = forward(&g, xp.as_slice()?, wp.as_slice()?, b.as_ref().and_then(|(_, bp)| bp.as_slice()));
    match &b {
        Some((b, _)) => tracked_output(Conv3dBackward, [&x, &w, b], (xp, wp, g), y),
        None => tracked_output(Conv3dBackward, [&x, &w], (xp, wp, g), y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Init;
    use burn::tensor::TensorData;

    fn max_abs_diff<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f64 {
        assert_eq!(a.dims(), b.dims());
        let a = a.into_data().to_vec::<f32>().expect("f32");
        let b = b.into_data().to_vec::<f32>().expect("f32");
        cytodl_testkit::max_abs_diff(&a, &b)
    }

    /// Forward and all three gradients against burn's own convolution, for the shapes DynUNet
    /// uses (3^3 stride 1 and 2, 1x1 projections, [1,3,3] 2-D kernels, anisotropic strides)
    /// and a few odd ones (no padding, kernel larger than stride + 1, batch 3).
    #[test]
    fn matches_burn_forward_and_gradients() {
        /// Input shape, weight shape, stride, padding, with a bias.
        type Case = ([usize; 5], [usize; 5], [usize; 3], [usize; 3], bool);
        let cases: &[Case] = &[
            ([2, 3, 6, 7, 8], [4, 3, 3, 3, 3], [1, 1, 1], [1, 1, 1], true),
            ([1, 4, 9, 8, 7], [5, 4, 3, 3, 3], [2, 2, 2], [1, 1, 1], false),
            ([2, 4, 5, 6, 6], [3, 4, 1, 1, 1], [2, 2, 2], [0, 0, 0], false),
            ([1, 2, 1, 9, 10], [3, 2, 1, 3, 3], [1, 2, 2], [0, 1, 1], true),
            ([3, 2, 4, 5, 6], [2, 2, 2, 3, 1], [1, 1, 1], [0, 1, 0], true),
            ([1, 3, 7, 7, 7], [2, 3, 5, 5, 5], [3, 2, 1], [2, 2, 2], true),
            ([1, 1, 4, 4, 4], [2, 1, 3, 3, 3], [1, 1, 1], [0, 0, 0], false),
            // A stride wider than the image, and a kernel reaching only into the padding.
            ([1, 2, 3, 4, 1], [2, 2, 1, 3, 1], [1, 1, 3], [0, 1, 0], true),
            ([2, 1, 2, 2, 2], [1, 1, 3, 3, 3], [2, 2, 2], [1, 1, 1], true),
        ];
        let device = Default::default();
        for &(xs, ws, stride, padding, with_bias) in cases {
            let options = ConvOptions::new(stride, padding, [1, 1, 1], 1);
            let x = Init::new(1).normal::<CpuTrain, 5>(xs, 0.0, 1.0, &device);
            let w = Init::new(2).normal::<CpuTrain, 5>(ws, 0.0, 1.0, &device);
            let b = Init::new(3).normal::<CpuTrain, 1>([ws[0]], 0.0, 1.0, &device);
            let run = |ours: bool| {
                let (x, w, b) = (x.clone().require_grad(), w.clone().require_grad(), b.clone().require_grad());
                let bias = with_bias.then(|| b.clone());
                let y = if ours {
                    conv3d(x.clone(), w.clone(), bias, options.clone())
                } else {
                    burn::tensor::module::conv3d(x.clone(), w.clone(), bias, options.clone())
                };
                // A non-uniform upstream gradient, so that every output position matters.
                let count = y.dims().iter().product::<usize>();
                let ramp: Vec<f32> = (0..count).map(|i| ((i * 7919) % 23) as f32 / 11.0 - 1.0).collect();
                let weights = Tensor::<CpuTrain, 5>::from_data(TensorData::new(ramp, y.dims()), &Default::default());
                let grads = (y.clone() * weights).sum().backward();
                (
                    y.inner(),
                    x.grad(&grads).map(|g| g.into_data()),
                    w.grad(&grads).map(|g| g.into_data()),
                    with_bias.then(|| b.grad(&grads).map(|g| g.into_data())).flatten(),
                )
            };
            let ours = run(true);
            let theirs = run(false);
            let what = format!("x {xs:?} w {ws:?} stride {stride:?} padding {padding:?}");
            assert_eq!(ours.0.dims(), theirs.0.dims(), "{what}");
            assert!(max_abs_diff(ours.0, theirs.0) < 1e-4, "forward {what}");
            for (name, a, b) in [("x", ours.1, theirs.1), ("weight", ours.2, theirs.2), ("bias", ours.3, theirs.3)] {
                match (a, b) {
                    (Some(a), Some(b)) => {
                        assert_eq!(a.shape, b.shape, "{name} gradient shape {what}");
                        let (a, b) = (a.to_vec::<f32>().expect("f32"), b.to_vec::<f32>().expect("f32"));
                        let diff = cytodl_testkit::max_abs_diff(&a, &b);
                        let scale = cytodl_testkit::max_abs(&b).max(1.0);
                        assert!(diff / scale < 1e-5, "{name} gradient {what}: {diff} (scale {scale})");
                    }
                    (None, None) if name == "bias" && !with_bias => {}
                    (a, b) => panic!("{name} gradient present for ours {} / burn {} ({what})", a.is_some(), b.is_some()),
                }
            }
        }
    }

    #[test]
    fn inference_path_matches_burn_on_a_strided_view() {
        let device = Default::default();
        // A permuted (non-contiguous) input: the fast path must copy it, not misread it.
        let x = Init::new(4).normal::<Cpu, 5>([2, 6, 5, 3, 4], 0.0, 1.0, &device).permute([0, 2, 1, 3, 4]);
        let w = Init::new(5).normal::<Cpu, 5>([4, 5, 3, 3, 3], 0.0, 1.0, &device);
        let b = Init::new(6).normal::<Cpu, 1>([4], 0.0, 1.0, &device);
        let options = ConvOptions::new([1, 2, 1], [1, 1, 1], [1, 1, 1], 1);
        let ours = conv3d(x.clone(), w.clone(), Some(b.clone()), options.clone());
        let theirs = burn::tensor::module::conv3d(x, w, Some(b), options);
        assert_eq!(ours.dims(), theirs.dims());
        assert!(max_abs_diff(ours, theirs) < 1e-4);
    }

    #[test]
    fn unsupported_options_fall_back_to_burn() {
        let device = Default::default();
        let x = Init::new(7).normal::<Cpu, 5>([1, 4, 5, 5, 5], 0.0, 1.0, &device);
        let w = Init::new(8).normal::<Cpu, 5>([4, 2, 3, 3, 3], 0.0, 1.0, &device);
        let options = ConvOptions::new([1, 1, 1], [2, 2, 2], [2, 2, 2], 2);
        let ours = conv3d(x.clone(), w.clone(), None, options.clone());
        let theirs = burn::tensor::module::conv3d(x, w, None, options);
        assert_eq!(max_abs_diff(ours, theirs), 0.0);
    }
}
