//! The data side: manifest columns as constants, the run-time [`Settings`] literal, and one
//! straight-line transform pipeline per split.
//!
//! [`Settings`]: cytodl_runtime::experiment::Settings

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::float;
use crate::ir::{Call, Experiment, Lit, PathIr};

fn const_name(column: &str) -> String {
    let mut s: String = column.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, 'C');
    }
    s
}

/// `columns::RAW` for a configured column, or a string literal for any other key.
pub fn column(e: &Experiment, key: &str) -> TokenStream {
    if e.columns.iter().any(|c| c == key) {
        let id = format_ident!("{}", const_name(key));
        quote!(columns::#id)
    } else {
        quote!(#key)
    }
}

pub fn columns_module(e: &Experiment) -> TokenStream {
    let consts = e.columns.iter().map(|c| {
        let id = format_ident!("{}", const_name(c));
        let doc = format!(" The `{c}` column of the manifest.");
        quote! { #[doc = #doc] pub const #id: &str = #c; }
    });
    quote! {
        /// The manifest columns the experiment reads (`data.columns`).
        pub mod columns {
            #(#consts)*
        }
    }
}

fn keys(e: &Experiment, call: &Call) -> TokenStream {
    let ks = call.arg("keys").strings();
    let items = ks.iter().map(|k| column(e, k));
    quote!(vec![#(#items.to_string()),*])
}

fn opt_string(v: &Lit) -> TokenStream {
    match v.as_str() {
        Some(s) => quote!(Some(#s.into())),
        None => quote!(None),
    }
}

fn opt_f64(v: &Lit) -> TokenStream {
    match v.as_f64() {
        Some(f) => {
            let f = float(f);
            quote!(Some(#f))
        }
        None => quote!(None),
    }
}

fn f64s(v: &Lit) -> TokenStream {
    let fs = v.floats().into_iter().map(float);
    quote!(vec![#(#fs),*])
}

fn i64s(v: &Lit) -> TokenStream {
    let is = v.ints();
    quote!(vec![#(#is),*])
}

fn b(v: &Lit, default: bool) -> bool {
    v.as_bool().unwrap_or(default)
}

pub fn run_path(p: &PathIr) -> TokenStream {
    match p {
        PathIr::InRun(rel) => quote!(RunPath::in_run(#rel)),
        PathIr::Fixed(path) => quote!(RunPath::fixed(#path)),
    }
}

fn mode(v: &Lit) -> TokenStream {
    if v.as_str() == Some("max") {
        quote!(Mode::Max)
    } else {
        quote!(Mode::Min)
    }
}

/// `fn settings() -> Settings`: what a run may change, with the config's values.
pub fn settings(e: &Experiment) -> TokenStream {
    let d = &e.data;
    let path = d.arg("path").as_str().unwrap_or_default().to_string();
    let cache_dir = match d.arg("cache_dir").as_str() {
        Some(c) => quote!(Some(#c.into())),
        None => quote!(None),
    };
    let split_column = opt_string(d.arg("split_column"));
    let columns = e.columns.iter().map(|c| column(e, c));
    let batch_size = d.arg("batch_size").as_i64().unwrap_or(1).max(1) as usize;
    let num_workers = d.arg("num_workers").as_i64().unwrap_or(0).max(0) as usize;
    let subsample = match d.arg("subsample") {
        Lit::Map(m) => {
            let items = m.iter().filter_map(|(k, v)| {
                let n = v.as_i64()? as usize;
                let split = match k.as_str() {
                    s if s.starts_with("train") => quote!(Split::Train),
                    s if s.starts_with("val") => quote!(Split::Val),
                    s if s.starts_with("test") => quote!(Split::Test),
                    _ => quote!(Split::Predict),
                };
                Some(quote!((#split, #n)))
            });
            quote!(vec![#(#items),*])
        }
        _ => quote!(Vec::new()),
    };
    let subsample_seed = match d.arg("seed").as_i64() {
        Some(s) => {
            let s = s.max(0) as u64;
            quote!(Some(#s))
        }
        None => quote!(None),
    };
    let (shuffle, drop_last) = (b(d.arg("shuffle"), true), b(d.arg("drop_last"), false));
    let t = &e.trainer;
    let u = |k: &str, dflt: i64| t.arg(k).as_i64().unwrap_or(dflt).max(0) as u64;
    let (max_epochs, min_epochs, check_val) = (u("max_epochs", 1000), u("min_epochs", 1), u("check_val_every_n_epoch", 1).max(1));
    let limit = |k: &str| match t.arg(k).as_i64() {
        Some(n) => {
            let n = n as usize;
            quote!(Some(#n))
        }
        None => quote!(None),
    };
    let (limit_train, limit_val) = (limit("limit_train_batches"), limit("limit_val_batches"));
    let accumulate = t.arg("accumulate_grad_batches").as_i64().unwrap_or(1).max(1) as usize;
    let clip = opt_f64(t.arg("gradient_clip_val"));
    let clip_algorithm = t.arg("gradient_clip_algorithm").as_str().unwrap_or("norm").to_string();
    let precision = t.arg("precision").as_str().unwrap_or("32").to_string();
    let checkpoint = match &e.checkpoint {
        Some(c) => {
            let dirpath = run_path(&c.arg("dirpath").as_str().map(|p| e.path(p)).unwrap_or(PathIr::InRun("checkpoints".into())));
            let filename = opt_string(c.arg("filename"));
            let monitor = opt_string(c.arg("monitor"));
            let mode = mode(c.arg("mode"));
            let top_k = c.arg("save_top_k").as_i64().unwrap_or(1);
            let save_last = b(c.arg("save_last"), false);
            let every = c.arg("every_n_epochs").as_i64().unwrap_or(1).max(1) as u64;
            let auto = b(c.arg("auto_insert_metric_name"), true);
            quote!(Some(CheckpointSettings {
                dirpath: #dirpath,
                filename: #filename,
                monitor: #monitor,
                mode: #mode,
                save_top_k: #top_k,
                save_last: #save_last,
                every_n_epochs: #every,
                auto_insert_metric_name: #auto,
            }))
        }
        None => quote!(None),
    };
    let early = match &e.early_stopping {
        Some(c) => {
            let monitor = c.arg("monitor").as_str().unwrap_or("val/loss").to_string();
            let patience = c.arg("patience").as_i64().unwrap_or(3).max(0) as u32;
            let mode = mode(c.arg("mode"));
            let delta = float(c.arg("min_delta").as_f64().unwrap_or(0.0));
            let finite = b(c.arg("check_finite"), true);
            quote!(Some(EarlyStoppingSettings { monitor: #monitor.into(), patience: #patience, mode: #mode, min_delta: #delta, check_finite: #finite }))
        }
        None => quote!(None),
    };
    let saver = match &e.image_saver {
        Some(c) => {
            let dir = run_path(&e.path(c.arg("save_dir").as_str().unwrap_or_default()));
            let stages = c.arg("stages").strings();
            let input = b(c.arg("save_input"), false);
            let every = c.arg("save_every_n_epochs").as_i64().unwrap_or(1).max(1) as u64;
            quote!(Some(ImageSaverSettings { save_dir: #dir, stages: vec![#(#stages.into()),*], save_input: #input, every_n_epochs: #every }))
        }
        None => quote!(None),
    };
    let csv = match &e.csv_logger {
        Some(c) => {
            let dir = run_path(&e.path(c.arg("save_dir").as_str().unwrap_or_default()));
            let name = c.arg("name").as_str().unwrap_or("lightning_logs").to_string();
            quote!(Some((#dir, #name.into())))
        }
        None => quote!(None),
    };
    let (exp, run, log_dir, lr) = (&e.experiment_name, &e.run_name, &e.log_dir, float(e.lr));
    let seed = match e.seed {
        Some(seed) => quote!(Some(#seed)),
        None => quote!(None),
    };
    let (train, test) = (e.train, e.test);
    let save_dir = run_path(&e.save_dir);
    let ckpt_path = match &e.ckpt_path {
        Some(p) => quote!(Some(#p.into())),
        None => quote!(None),
    };
    let (weights_only, strict) = (e.weights_only, e.strict);
    quote! {
        fn settings() -> Settings {
            Settings {
                experiment_name: #exp.into(),
                run_name: #run.into(),
                seed: #seed,
                log_dir: #log_dir.into(),
                lr: #lr,
                data: DataSettings {
                    path: #path.into(),
                    cache_dir: #cache_dir,
                    split_column: #split_column,
                    columns: vec![#(#columns.into()),*],
                    batch_size: #batch_size,
                    num_workers: #num_workers,
                    subsample: #subsample,
                    subsample_seed: #subsample_seed,
                    shuffle: #shuffle,
                    drop_last: #drop_last,
                },
                trainer: TrainerSettings {
                    max_epochs: #max_epochs,
                    min_epochs: #min_epochs,
                    check_val_every_n_epoch: #check_val,
                    limit_train_batches: #limit_train,
                    limit_val_batches: #limit_val,
                    accumulate_grad_batches: #accumulate,
                    gradient_clip_val: #clip,
                    gradient_clip_algorithm: #clip_algorithm.into(),
                    precision: #precision.into(),
                },
                checkpoint: #checkpoint,
                early_stopping: #early,
                image_saver: #saver,
                csv_logger: #csv,
                train: #train,
                test: #test,
                ckpt_path: #ckpt_path,
                weights_only: #weights_only,
                strict: #strict,
                save_dir: #save_dir,
            }
        }
    }
}

fn index(v: &Lit) -> TokenStream {
    match v {
        Lit::Int(i) => {
            let i = (*i).max(0) as usize;
            quote!(Some(Index::One(#i)))
        }
        Lit::List(items) => {
            let is = items.iter().filter_map(Lit::as_i64).map(|i| i.max(0) as usize);
            quote!(Some(Index::Many(vec![#(#is),*])))
        }
        _ => quote!(None),
    }
}

fn selection(call: Option<&Call>) -> TokenStream {
    match call {
        Some(r) => {
            let order = opt_string(r.arg("dimension_order_out"));
            let (c, z, t) = (index(r.arg("C")), index(r.arg("Z")), index(r.arg("T")));
            quote!(Selection { dimension_order_out: #order, c: #c, z: #z, t: #t })
        }
        None => quote!(Selection::default()),
    }
}

fn pad_mode(s: &str) -> TokenStream {
    match s {
        "constant" | "zeros" => quote!(cytodl_runtime::transforms::PadMode::Constant),
        "reflect" | "reflection" => quote!(cytodl_runtime::transforms::PadMode::Reflect),
        "symmetric" => quote!(cytodl_runtime::transforms::PadMode::Symmetric),
        "wrap" | "circular" => quote!(cytodl_runtime::transforms::PadMode::Wrap),
        _ => quote!(cytodl_runtime::transforms::PadMode::Edge),
    }
}

fn interp_mode(s: &str) -> TokenStream {
    match s {
        "nearest" => quote!(InterpMode::Nearest),
        "nearest-exact" => quote!(InterpMode::NearestExact),
        "linear" | "bilinear" | "trilinear" => quote!(InterpMode::Linear),
        _ => quote!(InterpMode::Area),
    }
}

/// One transform as a struct literal (or a checked constructor).
fn transform(e: &Experiment, call: &Call) -> TokenStream {
    let keys = keys(e, call);
    let allow = b(call.arg("allow_missing_keys"), false);
    let a = |k: &str| call.arg(k);
    match call.native {
        "LoadImaged" => {
            let sel = selection(call.children.get("reader"));
            let expand = b(a("expand_user"), true);
            quote!(LoadImaged { keys: #keys, selection: #sel, expand_user: #expand, allow_missing_keys: #allow })
        }
        "EnsureChannelFirstd" => {
            let dim = match a("channel_dim") {
                Lit::Str(s) if s == "no_channel" => quote!(Some(ChannelDim::NoChannel)),
                Lit::Int(i) => quote!(Some(ChannelDim::Axis(#i))),
                _ => quote!(None),
            };
            let strict = b(a("strict_check"), true);
            quote!(EnsureChannelFirstd { keys: #keys, strict_check: #strict, allow_missing_keys: #allow, channel_dim: #dim })
        }
        "ToTensord" => quote!(ToTensord { keys: #keys, allow_missing_keys: #allow }),
        "NormalizeIntensityd" => {
            let sub = if a("subtrahend").is_null() { quote!(None) } else { let v = f64s(a("subtrahend")); quote!(Some(#v)) };
            let div = if a("divisor").is_null() { quote!(None) } else { let v = f64s(a("divisor")); quote!(Some(#v)) };
            let (nz, cw) = (b(a("nonzero"), false), b(a("channel_wise"), false));
            quote!(NormalizeIntensityd { keys: #keys, subtrahend: #sub, divisor: #div, nonzero: #nz, channel_wise: #cw, allow_missing_keys: #allow })
        }
        "ThresholdIntensityd" => {
            let t = float(a("threshold").as_f64().unwrap_or(0.0));
            let above = b(a("above"), true);
            let cval = float(a("cval").as_f64().unwrap_or(0.0));
            quote!(ThresholdIntensityd { keys: #keys, threshold: #t, above: #above, cval: #cval, allow_missing_keys: #allow })
        }
        "ScaleIntensityRanged" => {
            let (lo, hi) = (float(a("a_min").as_f64().unwrap_or(0.0)), float(a("a_max").as_f64().unwrap_or(1.0)));
            let (bmin, bmax) = (opt_f64(a("b_min")), opt_f64(a("b_max")));
            let clip = b(a("clip"), false);
            quote!(ScaleIntensityRanged { keys: #keys, a_min: #lo, a_max: #hi, b_min: #bmin, b_max: #bmax, clip: #clip, allow_missing_keys: #allow })
        }
        "ScaleIntensityRangePercentilesd" => {
            let (lo, hi) = (float(a("lower").as_f64().unwrap_or(0.0)), float(a("upper").as_f64().unwrap_or(100.0)));
            let (bmin, bmax) = (opt_f64(a("b_min")), opt_f64(a("b_max")));
            let (clip, rel, cw) = (b(a("clip"), false), b(a("relative"), false), b(a("channel_wise"), false));
            quote!(ScaleIntensityRangePercentilesd { keys: #keys, lower: #lo, upper: #hi, b_min: #bmin, b_max: #bmax, clip: #clip, relative: #rel, channel_wise: #cw, allow_missing_keys: #allow })
        }
        "Clipd" => {
            let (lo, hi) = (float(a("low").as_f64().unwrap_or(0.0)), float(a("high").as_f64().unwrap_or(1.0)));
            let (p, pc) = (b(a("percentile"), true), b(a("per_channel"), true));
            quote!(Clipd { keys: #keys, low: #lo, high: #hi, percentile: #p, per_channel: #pc, allow_missing_keys: #allow })
        }
        "Zoomd" => {
            let zoom = f64s(a("zoom"));
            let modes = a("mode").strings();
            let mode = modes.iter().map(|m| interp_mode(m));
            let pad = pad_mode(a("padding_mode").as_str().unwrap_or("edge"));
            let align = match a("align_corners").as_bool() {
                Some(v) => quote!(vec![Some(#v)]),
                None => quote!(vec![None]),
            };
            let keep = b(a("keep_size"), true);
            quote!(Zoomd { keys: #keys, zoom: #zoom, mode: vec![#(#mode),*], padding_mode: #pad, align_corners: #align, keep_size: #keep, allow_missing_keys: #allow })
        }
        "RandomMultiScaleCropd" => {
            let shape = a("patch_shape").ints().into_iter().map(|v| v.max(0) as usize);
            let n = a("patch_per_image").as_i64().unwrap_or(1).max(1) as usize;
            let scales = match a("scales_dict") {
                Lit::Map(m) => {
                    let items = m.iter().map(|(k, v)| {
                        let key = column(e, k);
                        let fs = f64s(v);
                        quote!((#key.to_string(), #fs))
                    });
                    quote!([#(#items),*].into_iter().collect())
                }
                _ => quote!(IndexMap::new()),
            };
            quote!(RandomMultiScaleCropd::new(#keys, vec![#(#shape),*], #scales, #n, #allow)?)
        }
        "RandFlipd" => {
            let prob = float(a("prob").as_f64().unwrap_or(0.1));
            let axis = if a("spatial_axis").is_null() { quote!(None) } else { let v = i64s(a("spatial_axis")); quote!(Some(#v)) };
            quote!(RandFlipd { keys: #keys, prob: #prob, spatial_axis: #axis, allow_missing_keys: #allow })
        }
        "RandRotate90d" => {
            let prob = float(a("prob").as_f64().unwrap_or(0.1));
            let max_k = a("max_k").as_i64().unwrap_or(3);
            let axes = a("spatial_axes").ints();
            let (a0, a1) = (axes.first().copied().unwrap_or(0), axes.get(1).copied().unwrap_or(1));
            quote!(RandRotate90d { keys: #keys, prob: #prob, max_k: #max_k, spatial_axes: (#a0, #a1), allow_missing_keys: #allow })
        }
        "RandHistogramShiftd" => {
            let prob = float(a("prob").as_f64().unwrap_or(0.1));
            let pts = i64s(a("num_control_points"));
            quote!(RandHistogramShiftd { keys: #keys, num_control_points: #pts, prob: #prob, allow_missing_keys: #allow })
        }
        "RandStdShiftIntensityd" => {
            let prob = float(a("prob").as_f64().unwrap_or(0.1));
            let f = f64s(a("factors"));
            let (nz, cw) = (b(a("nonzero"), false), b(a("channel_wise"), false));
            quote!(RandStdShiftIntensityd { keys: #keys, factors: #f, prob: #prob, nonzero: #nz, channel_wise: #cw, allow_missing_keys: #allow })
        }
        "RandAdjustContrastd" => {
            let prob = float(a("prob").as_f64().unwrap_or(0.1));
            let g = f64s(a("gamma"));
            let (inv, keep) = (b(a("invert_image"), false), b(a("retain_stats"), false));
            quote!(RandAdjustContrastd { keys: #keys, prob: #prob, gamma: #g, invert_image: #inv, retain_stats: #keep, allow_missing_keys: #allow })
        }
        "RandGaussianNoised" => {
            let prob = float(a("prob").as_f64().unwrap_or(0.1));
            let (m, s) = (float(a("mean").as_f64().unwrap_or(0.0)), float(a("std").as_f64().unwrap_or(0.1)));
            let ss = b(a("sample_std"), true);
            quote!(RandGaussianNoised { keys: #keys, prob: #prob, mean: #m, std: #s, sample_std: #ss, allow_missing_keys: #allow })
        }
        other => {
            let msg = format!("{other} is registered but has no code generator");
            quote!(compile_error!(#msg))
        }
    }
}

/// The `match split` body and one `fn <split>_transforms()` per split.
pub fn pipelines(e: &Experiment) -> (TokenStream, TokenStream) {
    let mut arms = Vec::new();
    let mut fns = Vec::new();
    for (split, calls) in &e.transforms {
        let f = format_ident!("{}_transforms", split);
        let variant = match split.as_str() {
            "train" => quote!(Split::Train),
            "val" => quote!(Split::Val),
            "test" => quote!(Split::Test),
            _ => quote!(Split::Predict),
        };
        arms.push(quote!(#variant => #f()));
        let steps = calls.iter().map(|c| {
            let t = transform(e, c);
            quote!(.push(#t))
        });
        let doc = format!(" `data.transforms.{}`: {} transforms.", if split == "val" { "valid" } else { split }, calls.len());
        fns.push(quote! {
            #[doc = #doc]
            pub fn #f() -> Result<Pipeline, TransformError> {
                Ok(Pipeline::new()
                    #(#steps)*)
            }
        });
    }
    let has = |s: &str| e.transforms.contains_key(s);
    if !has("val") {
        arms.push(quote!(Split::Val => train_transforms()));
    }
    if !has("test") {
        let fallback = if has("val") { quote!(val_transforms()) } else { quote!(train_transforms()) };
        arms.push(quote!(Split::Test => #fallback));
    }
    if !has("predict") {
        let fallback = if has("test") { quote!(test_transforms()) } else { quote!(train_transforms()) };
        arms.push(quote!(Split::Predict => #fallback));
    }
    (quote!(match split { #(#arms,)* }), quote!(#(#fns)*))
}

/// `fn loads()`: every key a pipeline loads, with its reader selection (for `data-check`).
pub fn loads(e: &Experiment) -> TokenStream {
    let mut seen: Vec<(String, TokenStream)> = Vec::new();
    for calls in e.transforms.values() {
        for c in calls.iter().filter(|c| c.native == "LoadImaged") {
            for k in c.arg("keys").strings() {
                if !seen.iter().any(|(s, _)| *s == k) {
                    seen.push((k.clone(), selection(c.children.get("reader"))));
                }
            }
        }
    }
    let items = seen.iter().map(|(k, sel)| {
        let key = column(e, k);
        quote!((#key.to_string(), #sel))
    });
    quote! {
        fn loads() -> Vec<(String, Selection)> {
            Vec::from([#(#items),*])
        }
    }
}
