//! Predict on real OME-TIFFs: `<save_dir>/<head>/<input file name>`, postprocessed to uint8
//! (cyto_dl's ActThreshLabel with sigmoid + rescale), and an interrupted predict resumes.

use cytodl_runtime::backend::Cpu;
use cytodl_runtime::data::loader::{Dataset, Loader, LoaderOptions};
use cytodl_runtime::infer::SlidingWindow;
use cytodl_runtime::io::{read, write_ome_tiff, DType, Index, Selection};
use cytodl_runtime::model::{infer_heads, MultiTask};
use cytodl_runtime::nn::Init;
use cytodl_runtime::nn::{DynUNetConfig, PerLevel};
use cytodl_runtime::postprocess::{ActThreshLabel, Activation};
use cytodl_runtime::train::predict::{pending_rows, predict, PredictOptions};
use cytodl_runtime::transforms::spatial::ChannelDim;
use cytodl_runtime::transforms::{EnsureChannelFirstd, LoadImaged, Pipeline};
use cytodl_runtime::{Array, Sample};

#[test]
fn predictions_are_written_per_head_and_resume_skips_done_inputs() {
    let dir = cytodl_testkit::Scratch::new("predict");
    let mut rows = Vec::new();
    for i in 0..2 {
        let p = dir.join(format!("img_{i}_raw.ome.tif"));
        let data: Vec<f32> = (0..2 * 10 * 40 * 36).map(|v| ((v * 31 + i * 7) % 251) as f32).collect();
        write_ome_tiff(&p, &Array::new(vec![2, 10, 40, 36], data).unwrap(), "CZYX", DType::U16, [Some(0.29), Some(0.1), Some(0.1)]).unwrap();
        rows.push(Sample::new().with_text("raw", p.to_str().unwrap()));
    }
    let device = Default::default();
    let k: Vec<PerLevel> = vec![3.into(), 3.into(), 3.into()];
    let s: Vec<PerLevel> = vec![1.into(), 2.into(), 2.into()];
    let u: Vec<PerLevel> = vec![2.into(), 2.into()];
    let cfg = DynUNetConfig::from_monai(3, 1, 1, &k, &s, &u, Some(&[4, 8, 16])).unwrap();
    let model = MultiTask::<Cpu>::new(cfg.init(&device, &Init::new(0)).unwrap(), vec!["seg".into()]);
    let sel = Selection { dimension_order_out: Some("ZYX".into()), c: Some(Index::One(1)), z: None, t: None };
    let pipeline =
        || Pipeline::new().push(LoadImaged::new(vec!["raw".into()], sel.clone())).push(EnsureChannelFirstd::new(["raw"], Some(ChannelDim::NoChannel)));
    let save_dir = dir.join("pred");
    let opts = PredictOptions {
        x_key: "raw".into(),
        save_dir: save_dir.clone(),
        window: SlidingWindow::new(vec![8, 16, 16]),
        postprocess: [("seg".to_string(), ActThreshLabel { activation: Activation::Sigmoid, rescale_dtype: Some(DType::U8), ..Default::default() }.into())]
            .into_iter()
            .collect(),
    };
    let (pending, skipped) = pending_rows(rows.clone(), "raw", &save_dir, &["seg".into()]);
    assert_eq!((pending.len(), skipped), (2, 0));
    let loader = Loader::new(Dataset { rows: pending, pipeline: pipeline(), cache: None }, LoaderOptions::default());
    let report = predict(&model, &loader, &opts, &device).unwrap();
    assert_eq!(report.written.len(), 2);
    let out = save_dir.join("seg/img_0_raw.ome.tif");
    let (a, info) = read(&out, &Selection::default()).unwrap();
    assert_eq!(info.dtype, DType::U8);
    assert_eq!(info.axes, "ZYX");
    assert_eq!(a.shape(), &[10, 40, 36]);
    assert_eq!(info.pixel_sizes, [Some(0.29), Some(0.1), Some(0.1)], "physical sizes carried over");
    // The file holds the model's whole-image prediction of channel 1, postprocessed: the same
    // computation done here by hand, voxel for voxel.
    let input = read(&dir.join("img_0_raw.ome.tif"), &sel).unwrap().0.with_leading_axis().with_leading_axis();
    let preds = infer_heads(&model, &opts.window, &input, &device).unwrap();
    let pred = preds["seg"].clone().reshape(vec![1, 10, 40, 36]).unwrap();
    let want = ActThreshLabel { activation: Activation::Sigmoid, rescale_dtype: Some(DType::U8), ..Default::default() }.apply(&pred).unwrap();
    assert_eq!(want.dtype, DType::U8);
    assert_eq!(a.data(), want.array.data(), "the written prediction");
    assert!(a.max() > a.min(), "not a constant image");

    // An interrupted run: one output removed; the other input is skipped without being read.
    std::fs::remove_file(save_dir.join("seg/img_1_raw.ome.tif")).unwrap();
    let (pending, skipped) = pending_rows(rows, "raw", &save_dir, &["seg".into()]);
    assert_eq!((pending.len(), skipped), (1, 1));
    let loader = Loader::new(Dataset { rows: pending, pipeline: pipeline(), cache: None }, LoaderOptions::default());
    assert_eq!(predict(&model, &loader, &opts, &device).unwrap().written, vec![save_dir.join("seg/img_1_raw.ome.tif")]);
}

#[test]
fn test_stage_reports_whole_image_losses_and_saves_images() {
    use cytodl_runtime::loss::{Loss, Reduction};
    use cytodl_runtime::task::Task;
    use cytodl_runtime::train::evaluate::{test, ImageSaver, TestImages};
    let dir = cytodl_testkit::Scratch::new("test-stage");
    let raw: Vec<f32> = (0..8 * 24 * 20).map(|v| (v % 17) as f32 / 17.0).collect();
    let seg: Vec<f32> = raw.iter().map(|v| (*v > 0.5) as u8 as f32).collect();
    let row = Sample::new().with_array("raw", Array::new(vec![1, 8, 24, 20], raw).unwrap()).with_array("seg", Array::new(vec![1, 8, 24, 20], seg).unwrap());
    let device = Default::default();
    let k: Vec<PerLevel> = vec![3.into(), 3.into(), 3.into()];
    let s: Vec<PerLevel> = vec![1.into(), 2.into(), 2.into()];
    let u: Vec<PerLevel> = vec![2.into(), 2.into()];
    let model = MultiTask::<Cpu>::new(
        DynUNetConfig::from_monai(3, 1, 1, &k, &s, &u, Some(&[4, 8, 8])).unwrap().init(&device, &Init::new(0)).unwrap(),
        vec!["seg".into()],
    );
    let task = Task::new("raw", vec![("seg".into(), Loss::Mse { reduction: Reduction::Mean })]);
    let loader = Loader::new(Dataset { rows: vec![row], pipeline: Pipeline::new(), cache: None }, LoaderOptions::default());
    let saver = ImageSaver::new(
        cytodl_runtime::config::ImageSaver {
            save_dir: cytodl_runtime::config::ConfigPath::in_run(""),
            save_every_n_epochs: 1,
            stages: vec!["test".into()],
            save_input: true,
        },
        &dir,
    );
    let post = [(
        "seg".to_string(),
        (
            ActThreshLabel { rescale_dtype: Some(DType::U8), ..Default::default() }.into(),
            ActThreshLabel { activation: Activation::Sigmoid, rescale_dtype: Some(DType::U8), ..Default::default() }.into(),
        ),
    )]
    .into_iter()
    .collect();
    let images = TestImages { saver: &saver, post: &post, step: 18 };
    let metrics = test(&model, &task, &loader, &SlidingWindow::new(vec![8, 16, 16]), Some(images), None, &device).unwrap();
    assert!(metrics["test/loss"].is_finite() && metrics["test/loss"] == metrics["test/loss/seg"], "{metrics:?}");
    for kind in ["input", "target", "pred"] {
        let p = dir.join(format!("test_images/18_seg_{kind}.tif"));
        let (a, info) = read(&p, &Selection::default()).unwrap();
        assert_eq!(a.shape(), &[8, 24, 20], "{kind}");
        assert_eq!(info.axes, "ZYX");
    }
}
