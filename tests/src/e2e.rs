//! What the end-to-end tests share: running the workspace's binaries (built by
//! [`cytodl_testkit::workspace_binary`], never a stale one), scratch folders, the example data,
//! and reading back what a run wrote (metrics, images).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cytodl_runtime::experiment::Experiment as _;
use cytodl_runtime::io::{read, DType, Selection};
use cytodl_runtime::Array;

/// What a finished command printed.
#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Both streams, for assertion messages.
    pub fn text(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// Runs `bin` with `args` in `dir`.
pub fn run(dir: &Path, bin: &Path, args: &[&str]) -> Out {
    // Hermetic: a developer's own tracking server is not where test runs go.
    let out = Command::new(bin)
        .current_dir(dir)
        .args(args)
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    Out { ok: out.status.success(), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
}

/// The workspace binary `name` (an experiment such as `segmentation`, or `cytodl-build`).
pub fn binary(name: &str) -> PathBuf {
    cytodl_testkit::workspace_binary(name)
}

/// An empty folder of this test's own, removed when the test passes.
pub fn scratch(name: &str) -> cytodl_testkit::Scratch {
    cytodl_testkit::Scratch::new(&format!("e2e-{name}"))
}

/// `cytodl-build example-data data/example --files N` in `dir` (where the example experiments'
/// `data.path` points when they run from `dir`).
pub fn example_data(dir: &Path, files: usize) {
    let n = files.to_string();
    let r = run(dir, &binary("cytodl-build"), &["example-data", "data/example", "--files", &n]);
    assert!(r.ok, "example-data:\n{}", r.text());
    assert!(dir.join("data/example/segmentation/train.csv").is_file());
}

/// `data/example/every_component/{train,valid,test}.csv` in `dir`: every column of the
/// experiment names the same two-channel example image.
pub fn every_component_manifests(dir: &Path) {
    let data = dir.join("data/example/every_component");
    std::fs::create_dir_all(&data).expect("mkdir");
    let columns: Vec<String> =
        crate::every_component::ci_every_component::CiEveryComponent::settings().data.columns.expect("the experiment lists its columns").0;
    for (split, images) in [("train", 0..3), ("valid", 3..4), ("test", 4..5)] {
        let mut csv = columns.join(",") + "\n";
        for i in images {
            let path = format!("../segmentation/img_{i:03}.ome.tif");
            csv += &vec![path; columns.len()].join(",");
            csv += "\n";
        }
        std::fs::write(data.join(format!("{split}.csv")), csv).expect("csv");
    }
}

/// A Lightning `metrics.csv`: the header and each row as column -> cell (empty cells left out).
pub fn metrics(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_else(|| panic!("{} is empty", path.display())).split(',').collect();
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{}: row `{line}` does not fit the header", path.display());
            header.iter().zip(cells).filter(|(_, c)| !c.is_empty()).map(|(h, c)| (h.to_string(), c.to_string())).collect()
        })
        .collect()
}

/// Every value of `column` in a metrics file, as numbers; fails on a cell that is not a finite
/// number.
pub fn metric_values(rows: &[BTreeMap<String, String>], column: &str) -> Vec<f64> {
    rows.iter()
        .filter_map(|r| r.get(column))
        .map(|c| {
            let v: f64 = c.parse().unwrap_or_else(|_| panic!("`{column}` = `{c}` is not a number"));
            assert!(v.is_finite(), "`{column}` = {v}");
            v
        })
        .collect()
}

/// An image file read whole, with the sample type it was written as.
pub fn read_image(path: &Path) -> (Array, DType) {
    let (array, info) = read(path, &Selection::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (array, info.dtype)
}

/// One channel of an image file (`C=channel`), e.g. the ground truth of the example data.
pub fn read_channel(path: &Path, channel: usize) -> Array {
    let sel = Selection { c: Some(cytodl_runtime::io::Index::One(channel)), ..Selection::default() };
    read(path, &sel).unwrap_or_else(|e| panic!("{}: {e}", path.display())).0
}

/// The Dice coefficient of two masks given as `value > threshold`, over the same voxels.
pub fn dice(prediction: &[f32], pred_threshold: f32, truth: &[f32], truth_threshold: f32) -> f64 {
    assert_eq!(prediction.len(), truth.len(), "prediction and ground truth differ in size");
    let (mut both, mut p, mut t) = (0usize, 0usize, 0usize);
    for (a, b) in prediction.iter().zip(truth) {
        let (a, b) = (*a > pred_threshold, *b > truth_threshold);
        both += usize::from(a && b);
        p += usize::from(a);
        t += usize::from(b);
    }
    if p + t == 0 {
        return 1.0;
    }
    2.0 * both as f64 / (p + t) as f64
}

/// Every weight of the example segmentation's checkpoint `path`, in the model's parameter
/// order (for comparing two runs' weights).
pub fn segmentation_weights(path: &Path) -> Vec<f32> {
    use cytodl_runtime::backend::Cpu;
    use cytodl_runtime::burn::module::{Module, ModuleVisitor, Param};
    use cytodl_runtime::burn::tensor::backend::Backend;
    use cytodl_runtime::burn::tensor::Tensor;
    use cytodl_runtime::family::ModelFamily;

    struct Collect(Vec<f32>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.extend(param.val().into_data().convert::<f32>().into_vec::<f32>().expect("f32 weights"));
        }
    }
    let data = cytodl_runtime::train::checkpoint::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let device = Default::default();
    let family = crate::segmentation::Segmentation::model();
    let net = family.build::<Cpu>(&device, &cytodl_runtime::nn::Init::new(0)).expect("the example segmentation's network");
    let net = cytodl_runtime::train::checkpoint::decode_model(net, &data, &device).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut collect = Collect(Vec::new());
    net.visit(&mut collect);
    collect.0
}
