//! Every registered component compiles and runs: `configs/experiment/ci/every_component.yaml` and
//! its optimizer/scheduler variants (`cytodl_tests::every_component`) use every component of the
//! registry between them; each variant is instantiated and trained here, and the main one goes
//! the user's way — its generated binary trains on TIFFs and predicts.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cytodl_runtime::backend::CpuTrain;
use cytodl_runtime::burn::module::AutodiffModule;
use cytodl_runtime::config::component::component_lit;
use cytodl_runtime::config::{registry, Component, Field, Lit};
use cytodl_runtime::data::loader::Batch;
use cytodl_runtime::experiment::{Experiment, Settings};
use cytodl_runtime::family::ModelFamily;
use cytodl_runtime::io::DType;
use cytodl_runtime::metric::EpochMetrics;
use cytodl_runtime::nn::Init;
use cytodl_runtime::sample::Sample;
use cytodl_runtime::task::Im2Im;
use cytodl_runtime::train::step::TrainingStep;
use cytodl_runtime::train::trainer::TrainerConfig;
use cytodl_runtime::transforms::Pipeline;
use cytodl_runtime::Array;
use cytodl_tests::e2e::{binary, every_component_manifests, example_data, metric_values, metrics, read_channel, read_image, run, scratch};
use cytodl_tests::every_component::{adamw_step, ci_every_component, cosine, one_cycle, sgd_multistep};
use cytodl_tests::gan;

type Main = ci_every_component::CiEveryComponent;

/// The canonical name of every registered component a typed value holds, at any depth.
fn targets_in(lit: &Lit, out: &mut BTreeSet<&'static str>) {
    match lit {
        Lit::Map(m) => {
            if let Some(target) = m.get("_target_").and_then(Lit::as_str) {
                let spec = registry::lookup(target).unwrap_or_else(|| panic!("`{target}` is in a typed config but not registered"));
                out.insert(spec.names[0]);
            }
            m.values().for_each(|v| targets_in(v, out));
        }
        Lit::List(items) => items.iter().for_each(|v| targets_in(v, out)),
        _ => {}
    }
}

/// Every component an experiment's typed configuration uses.
fn components_of<E: Experiment>() -> BTreeSet<&'static str>
where
    E::Model: Component,
{
    let settings = E::settings();
    let mut out = BTreeSet::new();
    let model = component_lit(&E::model());
    targets_in(&component_lit(&settings.data), &mut out);
    targets_in(&model, &mut out);
    targets_in(&component_lit(&settings.trainer), &mut out);
    for (_, c) in &settings.callbacks {
        targets_in(&c.to_lit(), &mut out);
    }
    for (_, l) in &settings.loggers {
        targets_in(&l.to_lit(), &mut out);
    }
    // `model.inference_args` holds sliding_window_inference's arguments without a `_target_`.
    if model.as_map().and_then(|m| m.get("inference_args")).is_some_and(|a| *a != Lit::Null) {
        out.insert(<cytodl_runtime::config::SlidingWindowArgs as cytodl_runtime::config::Component>::SPEC.names[0]);
    }
    out
}

#[test]
fn every_registered_component_is_used_by_the_ci_experiments() {
    let mut used = components_of::<Main>();
    used.extend(components_of::<adamw_step::ci_every_component::CiEveryComponent>());
    used.extend(components_of::<sgd_multistep::ci_every_component::CiEveryComponent>());
    used.extend(components_of::<cosine::ci_every_component::CiEveryComponent>());
    used.extend(components_of::<one_cycle::ci_every_component::CiEveryComponent>());
    used.extend(components_of::<gan::gan_superres::GanSuperres>());
    used.extend(components_of::<gan::lsgan::gan::Gan>());
    used.extend(components_of::<cytodl_tests::plugin_data::ci_plugin_data::CiPluginData>());
    used.extend(components_of::<cytodl_tests::instance_seg::instance_seg::InstanceSeg>());
    let registered: BTreeSet<&str> = registry::all().iter().map(|s| s.names[0]).collect();
    let unused: Vec<&&str> = registered.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "registered components no CI experiment uses (add them to configs/experiment/ci/every_component.yaml or a variant in tests/src/lib.rs): {unused:?}"
    );
    // Every head and loss of the main experiment is a head of its own, so each is trained.
    assert_eq!(Main::model().outputs().len(), 8);
}

/// One synthetic batch of two samples at the window's size: a normal input and, per head, a
/// binary target of the prediction's shape.
fn synthetic_batch<E: Experiment>(family: &E::Model, init: &Init) -> Batch {
    let task = family.task().expect("task");
    let roi = family.window().expect("window").roi_size;
    let voxels: usize = roi.iter().product();
    let shape = |c: usize| [vec![c], roi.clone()].concat();
    let device = Default::default();
    let net = family.build::<cytodl_runtime::backend::Cpu>(&device, &init.at("net")).expect("net");
    let mut shape5 = [1, family.in_channels(), 1, 1, 1];
    for (i, s) in roi.iter().rev().enumerate() {
        shape5[4 - i] = *s;
    }
    let x = init.at("x").normal::<cytodl_runtime::backend::Cpu, 5>(shape5, 0.0, 1.0, &device);
    // Each target has its prediction's shape (a super-resolution head's is larger than the input).
    let rank = roi.len();
    let out_shapes: Vec<(String, Vec<usize>)> = net.forward_heads(x).into_iter().map(|(h, p)| (h, [&p.dims()[1..2], &p.dims()[5 - rank..]].concat())).collect();
    let samples = (0..2u64)
        .map(|i| {
            let values = |name: &str, n: usize| -> Vec<f32> {
                let t = init.at(name).at(i.to_string()).uniform::<cytodl_runtime::backend::Cpu, 1>([n], 0.0, 1.0, &device);
                t.into_data().into_vec::<f32>().expect("f32")
            };
            let input = Array::new(shape(family.in_channels()), values("input", voxels * family.in_channels())).expect("input");
            out_shapes.iter().fold(Sample::new().with_array(&task.x_key, input), |s, (head, shape)| {
                let target: Vec<f32> = values(head, shape.iter().product()).into_iter().map(|v| if v < 0.4 { 1.0 } else { 0.0 }).collect();
                s.with_array(head, Array::new(shape.clone(), target).expect("target"))
            })
        })
        .collect();
    Batch { samples }
}

/// Builds everything the experiment declares — each split's transforms, the network, task,
/// training step (optimizer, scheduler, clipping), window, postprocessing — and trains three
/// epochs of one batch: every loss finite, every head's loss reported, the weights moving.
fn instantiate_and_train<E: Experiment>() {
    let settings: Settings = E::settings();
    for (split, compose) in settings.data.transforms.iter() {
        let pipeline = Pipeline::from_config(compose).unwrap_or_else(|e| panic!("{}: {split} transforms: {e}", E::NAME));
        assert_eq!(pipeline.steps().len(), compose.transforms.0.len(), "{}: {split}: one step per transform", E::NAME);
    }
    let family = E::model();
    let device = Default::default();
    let init = Init::new(3);
    let task = family.task().expect("task");
    let outputs = family.outputs();
    assert_eq!(task.heads.len(), outputs.len());
    family.window().expect("window");
    let postprocess = family.postprocess();
    for head in &outputs {
        assert!(postprocess.contains_key(head.as_str()), "{}: `{head}` has postprocessing", E::NAME);
    }
    let config = TrainerConfig::new(settings.trainer.clone(), 3);
    let mut step = family.training_step::<CpuTrain>(&config, None).unwrap_or_else(|e| panic!("{}: training step: {e}", E::NAME));
    let batch = synthetic_batch::<E>(&family, &init.at("data"));
    let mut net = family.build_trainable::<CpuTrain>(&device, &init.at("model")).expect("net");
    // A MaskHead's mask reaches its loss: without it the same batch gives another loss.
    assert!(!task.masks.is_empty(), "{}: the experiment has a MaskHead", E::NAME);
    for (head, mask) in &task.masks {
        let unmasked = cytodl_runtime::task::Task { masks: Default::default(), ..task.clone() };
        let loss_of = |t: &cytodl_runtime::task::Task| {
            let (_, per_head, _) = cytodl_runtime::task::batch_losses(&net.valid(), t, &batch, &device).unwrap_or_else(|e| panic!("{}: {e}", E::NAME));
            per_head.iter().find(|(h, _)| h == head).map(|(_, l)| cytodl_runtime::task::scalar(l)).expect("the head's loss")
        };
        let (with, without) = (loss_of(&task), loss_of(&unmasked));
        assert!((with - without).abs() > 1e-4, "{}: `{head}` masked by `{mask}`: {with} vs unmasked {without}", E::NAME);
    }
    let first = net.valid().forward_heads(Init::new(9).normal::<cytodl_runtime::backend::Cpu, 5>([1, family.in_channels(), 8, 24, 24], 0.0, 1.0, &device));
    for epoch in 0..3 {
        step.begin_epoch(epoch).unwrap_or_else(|e| panic!("{}: epoch {epoch}: {e}", E::NAME));
        let out = step.step(net, &task, &batch, true, &device).unwrap_or_else(|e| panic!("{}: epoch {epoch}: {e}", E::NAME));
        assert_eq!(out.optimizer_steps, 1);
        for head in &outputs {
            let loss = out.losses.get(&format!("train/loss/{head}")).unwrap_or_else(|| panic!("{}: no loss for `{head}`: {:?}", E::NAME, out.losses));
            assert!(loss.is_finite(), "{}: epoch {epoch}: `{head}` loss {loss}", E::NAME);
        }
        net = out.model;
    }
    // Every metric of model.metrics takes the batch and gives a finite value in its stage.
    let (_, _, preds) = cytodl_runtime::task::batch_losses(&net.valid(), &task, &batch, &device).unwrap_or_else(|e| panic!("{}: {e}", E::NAME));
    for stage in ["train", "val", "test"] {
        let mut metrics = EpochMetrics::new(&task.metrics, stage).unwrap_or_else(|e| panic!("{}: {e}", E::NAME));
        metrics.update(|head| task.batch_metric_pair(head, &batch, &preds)).unwrap_or_else(|(name, e)| panic!("{}: {name}: {e}", E::NAME));
        let values = metrics.compute();
        assert_eq!(values.len(), task.metrics.iter().filter(|m| m.stage == stage).count(), "{}: {stage}: {values:?}", E::NAME);
        for (name, v) in values {
            assert!(v.is_finite(), "{}: {name} = {v}", E::NAME);
        }
    }
    let after = net.valid().forward_heads(Init::new(9).normal::<cytodl_runtime::backend::Cpu, 5>([1, family.in_channels(), 8, 24, 24], 0.0, 1.0, &device));
    for head in &outputs {
        let diff: f32 = (first[head].clone() - after[head].clone()).abs().max().into_scalar();
        assert!(diff > 0.0, "{}: `{head}`'s output did not change after three optimizer steps", E::NAME);
    }
}

#[test]
fn main_variant_instantiates_and_trains() {
    instantiate_and_train::<Main>();
}

#[test]
fn adamw_steplr_variant_instantiates_and_trains() {
    instantiate_and_train::<adamw_step::ci_every_component::CiEveryComponent>();
}

#[test]
fn sgd_multisteplr_variant_instantiates_and_trains() {
    instantiate_and_train::<sgd_multistep::ci_every_component::CiEveryComponent>();
}

#[test]
fn cosine_variant_instantiates_and_trains() {
    instantiate_and_train::<cosine::ci_every_component::CiEveryComponent>();
}

#[test]
fn one_cycle_variant_instantiates_and_trains() {
    instantiate_and_train::<one_cycle::ci_every_component::CiEveryComponent>();
}

/// A GAN experiment builds everything it declares and trains three batches: two optimizer
/// steps each, both losses finite, and both networks' weights moving (each by its own step).
fn gan_instantiates_and_trains<E: Experiment<Model = cytodl_runtime::config::GAN>>() {
    use cytodl_runtime::nn::weights::state_dict;
    let family = E::model();
    let device = Default::default();
    let init = Init::new(3);
    let task = family.task().expect("task");
    assert!(task.adversarial.is_some(), "{}: a GAN's task is adversarial", E::NAME);
    let config = TrainerConfig::new(E::settings().trainer.clone(), 3);
    let mut step = family.training_step::<CpuTrain>(&config, None).unwrap_or_else(|e| panic!("{}: training step: {e}", E::NAME));
    let batch = synthetic_batch::<E>(&family, &init.at("data"));
    let mut net = family.build_trainable::<CpuTrain>(&device, &init.at("model")).expect("net");
    let before = (state_dict(&net.generator), state_dict(&net.discriminator));
    for epoch in 0..3 {
        step.begin_epoch(epoch).unwrap_or_else(|e| panic!("{}: epoch {epoch}: {e}", E::NAME));
        let out = step.step(net, &task, &batch, true, &device).unwrap_or_else(|e| panic!("{}: epoch {epoch}: {e}", E::NAME));
        assert_eq!(out.optimizer_steps, 2, "{}: a generator and a discriminator step", E::NAME);
        for key in ["train/loss/generator_loss", "train/loss/discriminator_loss"] {
            let loss = out.losses.get(key).unwrap_or_else(|| panic!("{}: no `{key}`: {:?}", E::NAME, out.losses));
            assert!(loss.is_finite(), "{}: epoch {epoch}: `{key}` = {loss}", E::NAME);
        }
        net = out.model;
    }
    let after = (state_dict(&net.generator), state_dict(&net.discriminator));
    for (which, b, a) in [("generator", &before.0, &after.0), ("discriminator", &before.1, &after.1)] {
        let moved = b.iter().filter(|(k, v)| a.get(*k).is_some_and(|w| w.as_slice::<f32>().ok() != v.as_slice::<f32>().ok())).count();
        assert!(moved * 2 >= b.len(), "{}: only {moved} of the {which}'s {} weights moved", E::NAME, b.len());
    }
}

#[test]
fn gan_superres_instantiates_and_trains() {
    gan_instantiates_and_trains::<gan::gan_superres::GanSuperres>();
}

#[test]
fn gan_with_lsgan_objective_instantiates_and_trains() {
    gan_instantiates_and_trains::<gan::lsgan::gan::Gan>();
}

/// The plugin's data pipeline on manifest rows: an empty merge-mask cell is dropped and the
/// target is the segmentation `base_image` names; with a mask, the base where the mask is set and
/// the other segmentation elsewhere; only `raw` and `seg` are left.
#[test]
fn plugin_data_pipeline_merges_and_selects() {
    use cytodl_runtime::Rng;
    let settings = cytodl_tests::plugin_data::ci_plugin_data::CiPluginData::settings();
    let compose = settings.data.transforms.get("train").expect("a train pipeline");
    let pipeline = Pipeline::from_config(compose).expect("pipeline");
    let dir = scratch("plugin-data");
    example_data(&dir, 3);
    let image = dir.join("data/example/segmentation/img_000.ome.tif");
    let path = image.to_str().expect("utf-8");
    let row = |merge_mask: &str, base: &str| {
        Sample::new().with_text("raw", path).with_text("seg1", path).with_text("seg2", path).with_text("merge_mask", merge_mask).with_text("base_image", base)
    };
    let run_one = |s: Sample| pipeline.run(s, &mut Rng::seed_from(0)).expect("pipeline").remove(0);
    let mask = read_channel(&image, 1);
    let instances = read_channel(&image, 2);
    // ThresholdIntensityd(threshold 0.1, above False, cval 1): 0 stays 0, anything else is 1.
    let binary = |a: &Array| a.data().iter().map(|v| if *v > 0.1 { 1.0 } else { 0.0 }).collect::<Vec<f32>>();

    let out = run_one(row("", "seg2"));
    assert_eq!(out.fields.keys().collect::<Vec<_>>(), vec!["raw", "seg"], "SelectItemsd keeps raw and seg");
    assert_eq!(out.array("seg").expect("seg").data(), binary(&instances).as_slice(), "no mask: the base image (seg2)");

    let out = run_one(row(path, "seg2"));
    let want: Vec<f32> = mask.data().iter().zip(binary(&instances)).zip(binary(&mask)).map(|((m, i), s1)| if *m != 0.0 { i } else { s1 }).collect();
    assert_eq!(out.array("seg").expect("seg").data(), want.as_slice(), "the base where the mask is set, the other image elsewhere");

    let err = pipeline.run(row("", "seg3"), &mut Rng::seed_from(0)).expect_err("an unknown base image");
    assert!(err.to_string().contains("the base image name `seg3` must be one of [seg1, seg2]"), "{err}");
}

#[test]
fn every_component_binary_trains_and_predicts() {
    let dir = scratch("every-component");
    example_data(&dir, 5);
    every_component_manifests(&dir);
    let bin = binary("ci-every-component");
    let r = run(&dir, &bin, &["data-check"]);
    assert!(r.ok, "data-check:\n{}", r.text());
    let run_dir = dir.join("run");
    let r = run(&dir, &bin, &["train", "--output-dir", run_dir.to_str().expect("utf-8")]);
    assert!(r.ok, "train:\n{}", r.text());
    assert!(r.stdout.contains("trained 2 epochs"), "{}", r.stdout);
    // Every random component here (crops, flips, rotations, intensity shifts, noise, the
    // ResBlocksHead's dropout) draws from the run's seed: a second run, with data workers, is the
    // same byte for byte.
    let again = dir.join("run-again");
    let r = run(&dir, &bin, &["train", "data.num_workers=2", "--output-dir", again.to_str().expect("utf-8")]);
    assert!(r.ok, "train again:\n{}", r.text());
    let log = "csv/version_0/metrics.csv";
    let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(read(run_dir.join(log)) == read(again.join(log)), "the same seed trained differently");
    assert!(read(run_dir.join("checkpoints/last.ckpt")) == read(again.join("checkpoints/last.ckpt")), "last.ckpt differs between two runs with one seed");
    let rows = metrics(&run_dir.join(log));
    for head in Main::model().outputs() {
        for col in [format!("val/loss/{head}"), format!("test/loss/{head}")] {
            let values = metric_values(&rows, &col);
            assert!(!values.is_empty() && values.iter().all(|v| *v >= 0.0), "`{col}`: {values:?}");
        }
    }
    // The image saver (a default callback) wrote each stage's images.
    for stage in ["val_images", "test_images"] {
        let n = std::fs::read_dir(run_dir.join(stage)).map(|d| d.count()).unwrap_or(0);
        assert!(n > 0, "the image saver wrote nothing in {}", run_dir.join(stage).display());
    }
    assert_eq!(metric_values(&rows, "train/loss").len(), 2, "one train/loss per epoch");
    assert!(run_dir.join("plots/loss.png").is_file(), "the loss plot");
    // The config's MLflow logger (a file store in the run folder, no server): the run finished
    // with the CSV's losses, the resolved config and the loss plot among its artifacts.
    let runs: Vec<PathBuf> = std::fs::read_dir(run_dir.join("mlruns"))
        .expect("the MLflow file store")
        .flatten()
        .filter(|e| e.path().join("meta.yaml").is_file())
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten().map(|r| r.path()).filter(|r| r.join("meta.yaml").is_file()))
        .collect();
    assert_eq!(runs.len(), 1, "one MLflow run: {runs:?}");
    let tracked = &runs[0];
    assert!(std::fs::read_to_string(tracked.join("meta.yaml")).expect("meta").contains("status: 3\n"), "FINISHED");
    let history: Vec<f64> = std::fs::read_to_string(tracked.join("metrics/train/loss"))
        .expect("train/loss")
        .lines()
        .map(|l| l.split(' ').nth(1).expect("value").parse().expect("float"))
        .collect();
    assert_eq!(history, metric_values(&rows, "train/loss"), "MLflow's train/loss history is the CSV's");
    assert_eq!(std::fs::read_to_string(tracked.join("artifacts/config/train.yaml")).expect("config"), run(&dir, &bin, &["config"]).stdout);
    assert_eq!(std::fs::read(tracked.join("artifacts/plots/loss.png")).expect("plot"), std::fs::read(run_dir.join("plots/loss.png")).expect("plot"));

    let pred = dir.join("pred");
    let ckpt = run_dir.join("checkpoints/last.ckpt");
    let r = run(&dir, &bin, &["predict", "--ckpt", ckpt.to_str().expect("utf-8"), "--output-dir", pred.to_str().expect("utf-8")]);
    assert!(r.ok, "predict:\n{}", r.text());
    // Each head's postprocessing decides what is saved.
    let expect = [
        ("seg", DType::U16),        // sigmoid, threshold 0.5, connected components
        ("seg_dice", DType::U8),    // Otsu threshold, a 0/1 mask
        ("seg_masked", DType::U8),  // sigmoid_rescale
        ("seg_tversky", DType::U8), // softmax over the channel, rescaled to uint8
        ("seg_bce", DType::F32),    // tanh
        ("seg_focal", DType::U8),   // sigmoid, rescaled to uint8
        ("raw_mse", DType::F32),    // ReLU
        ("raw_l1", DType::F32),     // the head's own final ReLU
    ];
    assert_eq!(expect.len(), Main::model().outputs().len(), "every head's output is checked");
    for (head, dtype) in expect {
        let (image, got) = read_image(&pred.join(head).join("img_004.ome.tif"));
        assert_eq!(got, dtype, "`{head}` is saved as {dtype:?}");
        let data = image.data();
        let ok = match head {
            "seg" => data.iter().all(|v| v.fract() == 0.0 && *v >= 0.0),
            // Otsu splits a non-constant image into a 0/1 mask with both classes.
            "seg_dice" => data.iter().all(|v| *v == 0.0 || *v == 1.0) && data.contains(&0.0) && data.contains(&1.0),
            "seg_bce" => data.iter().all(|v| (-1.0..=1.0).contains(v)),
            "raw_mse" | "raw_l1" => data.iter().all(|v| *v >= 0.0),
            _ => true,
        };
        assert!(ok, "`{head}`: values outside what its postprocessing gives (min {}, max {})", image.min(), image.max());
    }
}
