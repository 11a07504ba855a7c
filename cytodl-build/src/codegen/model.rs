//! The model side: the DynUNet backbone and the named heads, each head's loss and
//! postprocessing, the optimizer, the learning-rate schedule and sliding-window inference.

use proc_macro2::TokenStream;
use quote::quote;

use super::data::column;
use super::float;
use crate::ir::{Call, Experiment, Lit};

/// A DynUNet per-level argument: `PerLevel::Int(3)` or `PerLevel::List(vec![1, 3, 3])`.
fn per_level(v: &Lit) -> TokenStream {
    let items = v.as_list().into_iter().map(|l| match l {
        Lit::Int(i) => {
            let i = i.max(0) as usize;
            quote!(PerLevel::Int(#i))
        }
        Lit::List(items) => {
            let is = items.iter().filter_map(Lit::as_i64).map(|i| i.max(0) as usize);
            quote!(PerLevel::List(vec![#(#is),*]))
        }
        _ => quote!(PerLevel::Int(1)),
    });
    quote!(&[#(#items),*])
}

fn backbone(e: &Experiment) -> TokenStream {
    let b = &e.backbone;
    let n = |k: &str, d: i64| b.arg(k).as_i64().unwrap_or(d).max(0) as usize;
    let (dims, inc, outc) = (n("spatial_dims", 3), n("in_channels", 1), n("out_channels", 1));
    let (k, s, u) = (per_level(b.arg("kernel_size")), per_level(b.arg("strides")), per_level(b.arg("upsample_kernel_size")));
    let filters = if b.arg("filters").is_null() {
        quote!(None)
    } else {
        let f = b.arg("filters").ints().into_iter().map(|v| v.max(0) as usize);
        quote!(Some(&[#(#f),*]))
    };
    let res = b.arg("res_block").as_bool().unwrap_or(false);
    let dropout = float(b.arg("dropout").as_f64().unwrap_or(0.0));
    let ds = b.arg("deep_supervision").as_bool().unwrap_or(false);
    let ds_num = n("deep_supr_num", 1);
    let trans_bias = b.arg("trans_bias").as_bool().unwrap_or(false);
    quote! {
        let mut backbone = DynUNetConfig::from_monai(#dims, #inc, #outc, #k, #s, #u, #filters)
            .map_err(|e| e.to_string())?
            .with_res_block(#res)
            .with_dropout(#dropout)
            .with_deep_supervision(#ds, #ds_num);
        backbone.trans_bias = #trans_bias;
    }
}

fn final_act(call: Option<&Call>) -> TokenStream {
    match call.map(|c| c.native) {
        Some("Activation::Sigmoid") => quote!(FinalAct::Sigmoid),
        Some("Activation::Tanh") => quote!(FinalAct::Tanh),
        _ => quote!(FinalAct::Identity),
    }
}

fn head(e: &Experiment, h: &crate::ir::Head) -> TokenStream {
    let name = column(e, &h.name);
    let c = &h.head;
    match c.native {
        "ResBlocksHeadConfig" => {
            let n = |k: &str, d: i64| c.arg(k).as_i64().unwrap_or(d).max(0) as usize;
            let (inc, outc, dims, convs) = (n("in_channels", 1), n("out_channels", 1), n("spatial_dims", 3), n("n_convs", 1));
            let act = final_act(c.children.get("final_act"));
            let resolution = if c.arg("resolution").as_str() == Some("hr") { quote!(Resolution::Hr) } else { quote!(Resolution::Lr) };
            let method = match c.arg("upsample_method").as_str() {
                Some("nontrainable") => quote!(UpsampleMethod::NonTrainable),
                Some("deconv") => quote!(UpsampleMethod::Deconv),
                _ => quote!(UpsampleMethod::PixelShuffle),
            };
            let ratio = if c.arg("upsample_ratio").is_null() {
                quote!(None)
            } else {
                let r = c.arg("upsample_ratio").ints().into_iter().map(|v| v.max(0) as usize);
                quote!(Some(vec![#(#r),*]))
            };
            let dropout = float(c.arg("dropout").as_f64().unwrap_or(0.0));
            let dense = c.arg("dense").as_bool().unwrap_or(false);
            quote! {
                (#name.to_string(), Head::ResBlocks(ResBlocksHeadConfig {
                    in_channels: #inc,
                    out_channels: #outc,
                    final_act: #act,
                    resolution: #resolution,
                    spatial_dims: #dims,
                    n_convs: #convs,
                    dropout: #dropout,
                    upsample_method: #method,
                    upsample_ratio: #ratio,
                    first_layer: None,
                    dense: #dense,
                }.init(device, &init.at("task_heads").at(#name)).map_err(|e| e.to_string())?))
            }
        }
        _ => quote!((#name.to_string(), Head::base())),
    }
}

pub fn model_fn(e: &Experiment) -> TokenStream {
    let backbone = backbone(e);
    let heads = e.heads.iter().map(|h| head(e, h));
    quote! {
        fn model<B: Backend>(device: &B::Device, init: &Init) -> Result<MultiTask<B>, String> {
            #backbone
            let backbone = backbone.init(device, &init.at("backbone")).map_err(|e| e.to_string())?;
            Ok(MultiTask::with_heads(backbone, Vec::from([#(#heads),*])))
        }
    }
}

fn reduction(v: &Lit) -> TokenStream {
    match v.as_str() {
        Some("sum") => quote!(Reduction::Sum),
        Some("none") => quote!(Reduction::None),
        _ => quote!(Reduction::Mean),
    }
}

fn loss(c: &Call) -> TokenStream {
    let flag = |k: &str, d: bool| c.arg(k).as_bool().unwrap_or(d);
    let dice = || {
        let act = match (flag("sigmoid", false), flag("softmax", false)) {
            (true, _) => quote!(Activation::Sigmoid),
            (false, true) => quote!(Activation::Softmax),
            _ => quote!(Activation::None),
        };
        let (bg, sq) = (flag("include_background", true), flag("squared_pred", false));
        let (nr, dr) = (float(c.arg("smooth_nr").as_f64().unwrap_or(1e-5)), float(c.arg("smooth_dr").as_f64().unwrap_or(1e-5)));
        let red = reduction(c.arg("reduction"));
        quote!(DiceLossConfig {
            include_background: #bg,
            activation: #act,
            squared_pred: #sq,
            reduction: #red,
            smooth_nr: #nr,
            smooth_dr: #dr,
            ..Default::default()
        })
    };
    match c.native {
        "Loss::DiceCe" => {
            let d = dice();
            let (ld, lc) = (float(c.arg("lambda_dice").as_f64().unwrap_or(1.0)), float(c.arg("lambda_ce").as_f64().unwrap_or(1.0)));
            quote!(Loss::DiceCe(DiceCeLossConfig { dice: #d, lambda_dice: #ld, lambda_ce: #lc }))
        }
        "Loss::Dice" => {
            let d = dice();
            quote!(Loss::Dice(#d))
        }
        "Loss::L1" => {
            let r = reduction(c.arg("reduction"));
            quote!(Loss::L1 { reduction: #r })
        }
        "Loss::BceWithLogits" => {
            let r = reduction(c.arg("reduction"));
            let pw = match c.arg("pos_weight").as_f64() {
                Some(w) => {
                    let w = w as f32;
                    quote!(Some(vec![#w]))
                }
                None => quote!(None),
            };
            quote!(Loss::BceWithLogits(BceWithLogitsConfig { reduction: #r, pos_weight: #pw }))
        }
        _ => {
            let r = reduction(c.arg("reduction"));
            quote!(Loss::Mse { reduction: #r })
        }
    }
}

pub fn heads_fn(e: &Experiment) -> TokenStream {
    let items = e.heads.iter().map(|h| {
        let name = column(e, &h.name);
        let l = loss(&h.loss);
        quote!((#name.to_string(), #l))
    });
    quote! {
        fn heads() -> Vec<(String, Loss)> {
            Vec::from([#(#items),*])
        }
    }
}

pub fn optimizer(e: &Experiment) -> TokenStream {
    let o = &e.optimizer;
    let f = |k: &str, d: f64| float(o.arg(k).as_f64().unwrap_or(d));
    let betas = o.arg("betas").floats();
    let (b1, b2) = (float(betas.first().copied().unwrap_or(0.9)), float(betas.get(1).copied().unwrap_or(0.999)));
    let amsgrad = o.arg("amsgrad").as_bool().unwrap_or(false);
    let body = match o.native {
        "AdamWConfig" => {
            let (eps, wd) = (f("eps", 1e-8), f("weight_decay", 1e-2));
            quote!(OptimizerConfig::AdamW(AdamWConfig { betas: (#b1, #b2), eps: #eps, weight_decay: #wd, amsgrad: #amsgrad }))
        }
        "SgdConfig" => {
            let (m, d, wd) = (f("momentum", 0.0), f("dampening", 0.0), f("weight_decay", 0.0));
            let nesterov = o.arg("nesterov").as_bool().unwrap_or(false);
            quote!(OptimizerConfig::Sgd(SgdConfig { momentum: #m, dampening: #d, nesterov: #nesterov, weight_decay: #wd }))
        }
        _ => {
            let (eps, wd) = (f("eps", 1e-8), f("weight_decay", 0.0));
            quote!(OptimizerConfig::Adam(AdamConfig { betas: (#b1, #b2), eps: #eps, weight_decay: #wd, amsgrad: #amsgrad }))
        }
    };
    let doc = format!(" `{}` (the learning rate, {}, is a run-time setting).", o.target, e.lr);
    quote! {
        #[doc = #doc]
        fn optimizer() -> OptimizerConfig {
            #body
        }
    }
}

pub fn schedule(e: &Experiment) -> TokenStream {
    let body = match &e.scheduler {
        None => quote!(LrSchedule::Constant),
        Some(s) => {
            let gamma = float(s.arg("gamma").as_f64().unwrap_or(0.1));
            match s.native {
                "LrSchedule::Exponential" => quote!(LrSchedule::Exponential { gamma: #gamma }),
                "LrSchedule::Step" => {
                    let n = s.arg("step_size").as_i64().unwrap_or(1).max(1) as u64;
                    quote!(LrSchedule::Step { step_size: #n, gamma: #gamma })
                }
                "LrSchedule::MultiStep" => {
                    let m = s.arg("milestones").ints().into_iter().map(|v| v.max(0) as u64);
                    quote!(LrSchedule::MultiStep { milestones: vec![#(#m),*], gamma: #gamma })
                }
                _ => {
                    let t = s.arg("T_max").as_i64().unwrap_or(1).max(1) as u64;
                    let eta = float(s.arg("eta_min").as_f64().unwrap_or(0.0));
                    quote!(LrSchedule::CosineAnnealing { t_max: #t, eta_min: #eta })
                }
            }
        }
    };
    quote! {
        fn lr_schedule() -> LrSchedule {
            #body
        }
    }
}

pub fn inference(e: &Experiment) -> TokenStream {
    let a = &e.inference;
    let roi: Vec<usize> = match a.get("roi_size") {
        Some(r) => r.ints().into_iter().map(|v| v.max(0) as usize).collect(),
        None => vec![0; e.spatial_dims],
    };
    let mut fields = vec![quote!(roi_size: vec![#(#roi),*])];
    if let Some(b) = a.get("sw_batch_size").and_then(Lit::as_i64) {
        let b = b.max(1) as usize;
        fields.push(quote!(sw_batch_size: #b));
    }
    if let Some(o) = a.get("overlap") {
        let o = o.floats().into_iter().map(float);
        fields.push(quote!(overlap: vec![#(#o),*]));
    }
    if a.get("mode").and_then(Lit::as_str) == Some("gaussian") {
        fields.push(quote!(mode: BlendMode::Gaussian));
    }
    if let Some(s) = a.get("sigma_scale") {
        let s = s.floats().into_iter().map(float);
        fields.push(quote!(sigma_scale: vec![#(#s),*]));
    }
    if let Some(p) = a.get("padding_mode").and_then(Lit::as_str) {
        let p = match p {
            "reflect" => quote!(cytodl_runtime::infer::PadMode::Reflect),
            "replicate" => quote!(cytodl_runtime::infer::PadMode::Replicate),
            "circular" => quote!(cytodl_runtime::infer::PadMode::Circular),
            _ => quote!(cytodl_runtime::infer::PadMode::Constant),
        };
        fields.push(quote!(padding_mode: #p));
    }
    if let Some(c) = a.get("cval").and_then(Lit::as_f64) {
        let c = c as f32;
        fields.push(quote!(cval: #c));
    }
    let roi_new = &roi;
    quote! {
        fn inference() -> SlidingWindow {
            SlidingWindow {
                #(#fields,)*
                ..SlidingWindow::new(vec![#(#roi_new),*])
            }
        }
    }
}

fn dtype(v: &Lit) -> Option<TokenStream> {
    let s = v.as_str()?;
    Some(match s.trim_start_matches("numpy.") {
        "uint16" => quote!(DType::U16),
        "uint32" => quote!(DType::U32),
        "int8" => quote!(DType::I8),
        "int16" => quote!(DType::I16),
        "int32" => quote!(DType::I32),
        "float32" => quote!(DType::F32),
        "float64" => quote!(DType::F64),
        _ => quote!(DType::U8),
    })
}

fn postprocess_step(c: Option<&Call>) -> TokenStream {
    let Some(c) = c else { return quote!(Postprocess::default()) };
    match c.native {
        "rescale" => return quote!(Postprocess::Rescale),
        "sigmoid_rescale" => return quote!(Postprocess::SigmoidRescale),
        _ => {}
    }
    let act = match c.children.get("activation").map(|a| a.native) {
        Some("Activation::Sigmoid") => quote!(cytodl_runtime::postprocess::Activation::Sigmoid),
        Some("Activation::Tanh") => quote!(cytodl_runtime::postprocess::Activation::Tanh),
        Some("Activation::ReLU") => quote!(cytodl_runtime::postprocess::Activation::ReLU),
        Some("Activation::Softmax") => {
            let dim = c.children.get("activation").and_then(|a| a.arg("dim").as_i64()).unwrap_or(0);
            quote!(cytodl_runtime::postprocess::Activation::Softmax { dim: #dim })
        }
        _ => quote!(cytodl_runtime::postprocess::Activation::Identity),
    };
    let threshold = match c.arg("threshold").as_f64() {
        Some(t) => {
            let t = t as f32;
            quote!(Some(#t))
        }
        None => quote!(None),
    };
    let label = c.arg("label").as_bool().unwrap_or(false);
    let dt = dtype(c.arg("dtype")).unwrap_or(quote!(DType::U8));
    let ch = c.arg("ch").as_i64().unwrap_or(-1);
    let rescale = match dtype(c.arg("rescale_dtype")) {
        Some(d) => quote!(Some(#d)),
        None => quote!(None),
    };
    quote!(Postprocess::ActThreshLabel(ActThreshLabel { activation: #act, threshold: #threshold, label: #label, dtype: #dt, ch: #ch, rescale_dtype: #rescale }))
}

pub fn postprocess(e: &Experiment) -> TokenStream {
    let items = e.heads.iter().map(|h| {
        let name = column(e, &h.name);
        let (i, p) = (postprocess_step(h.postprocess.0.as_ref()), postprocess_step(h.postprocess.1.as_ref()));
        quote!((#name.to_string(), (#i, #p)))
    });
    quote! {
        fn postprocess() -> IndexMap<String, (Postprocess, Postprocess)> {
            [#(#items),*].into_iter().collect()
        }
    }
}
