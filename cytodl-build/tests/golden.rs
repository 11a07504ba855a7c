//! Golden files of generated code (`tests/golden/<case>.rs`): any change to the code generator
//! shows up as a reviewable diff. `UPDATE_GOLDEN=1 cargo test -p cytodl-build --test golden`
//! rewrites them. The committed crates under `generated/` must match too (what
//! `cytodl-build generate --check` verifies).

mod common;

use std::path::{Path, PathBuf};

use cytodl_build::codegen::crate_files::{crate_files, Layout};
use cytodl_build::compile::{compile, CompileRequest};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

fn experiment_rs(file: &str, overrides: &[&str], out_dir: &Path) -> (String, String) {
    let req = CompileRequest {
        experiment: Some(workspace().join(file)),
        config_dir: None,
        config_name: "train".into(),
        overrides: overrides.iter().map(|s| s.to_string()).collect(),
    };
    let compiled = compile(&req).unwrap_or_else(|e| panic!("{file}: {}", e.render()));
    let files = crate_files(&compiled.experiment, &Layout { workspace: workspace(), out_dir: out_dir.to_path_buf() }).expect("codegen");
    let text = |name: &str| files.iter().find(|f| f.path == Path::new(name)).map(|f| f.text.clone()).expect(name);
    (text("src/experiment.rs"), text("resolved.yaml"))
}

fn golden(case: &str, file: &str, overrides: &[&str]) {
    let ws = workspace();
    let name = Path::new(file).file_stem().and_then(|s| s.to_str()).expect("stem").to_string();
    let (code, _) = experiment_rs(file, overrides, &ws.join("generated").join(&name));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{case}.rs"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &code).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_GOLDEN=1", path.display()));
    if want != code {
        let line = want.lines().zip(code.lines()).position(|(a, b)| a != b).map_or(want.lines().count().min(code.lines().count()), |i| i);
        panic!(
            "{} differs from the generated code at line {}:\n  golden:    {:?}\n  generated: {:?}\nrun with UPDATE_GOLDEN=1 to accept",
            path.display(),
            line + 1,
            want.lines().nth(line),
            code.lines().nth(line)
        );
    }
}

#[test]
fn segmentation() {
    golden("segmentation", "configs/experiment/segmentation.yaml", &[]);
}

#[test]
fn labelfree() {
    golden("labelfree", "configs/experiment/labelfree.yaml", &[]);
}

#[test]
fn labelfree_2d() {
    golden("labelfree_2d", "configs/experiment/labelfree.yaml", &["spatial_dims=2", "data._aux.patch_shape=[32,32]"]);
}

#[test]
fn segmentation_resblocks() {
    golden("segmentation_resblocks", "configs/experiment/segmentation_resblocks.yaml", &[]);
}

#[test]
fn segmentation_superres() {
    golden("segmentation_superres", "configs/experiment/segmentation_superres.yaml", &[]);
}

#[test]
fn gan() {
    golden("gan", "configs/experiment/gan.yaml", &[]);
}

#[test]
fn gan_superres() {
    golden("gan_superres", "configs/experiment/gan_superres.yaml", &[]);
}

#[test]
fn instance_seg() {
    golden("instance_seg", "configs/experiment/instance_seg.yaml", &[]);
}

#[test]
fn bench_medium() {
    golden("bench_medium", "configs/experiment/bench_medium.yaml", &[]);
}

/// The committed crates are what the generator writes today.
#[test]
fn generated_crates_are_current() {
    let ws = workspace();
    let crates = [
        ("segmentation", "segmentation"),
        ("labelfree", "labelfree"),
        ("bench_medium", "bench_medium"),
        ("segmentation_resblocks", "segmentation_resblocks"),
        ("segmentation_superres", "segmentation_superres"),
        ("gan", "gan"),
        ("gan_superres", "gan_superres"),
        ("instance_seg", "instance_seg"),
        ("ci_every_component", "ci/every_component"),
        ("ci_plugin_data", "ci/plugin_data"),
    ];
    for (name, experiment) in crates {
        let dir = ws.join("generated").join(name);
        let (code, yaml) = experiment_rs(&format!("configs/experiment/{experiment}.yaml"), &[], &dir);
        let on_disk = std::fs::read_to_string(dir.join("src/experiment.rs")).expect("generated crate");
        assert!(on_disk == code, "generated/{name} is stale: run `cytodl-build generate configs/experiment/{experiment}.yaml`");
        assert_eq!(std::fs::read_to_string(dir.join("resolved.yaml")).expect("resolved.yaml"), yaml);
    }
    let run = common::cytodl_build(&ws, &["generate", "--check"], &[("CYTODL_WORKSPACE", ws.to_str().expect("utf-8"))]);
    assert!(run.ok, "generate --check failed:\n{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout.lines().filter(|l| l.starts_with("ok: ")).count(), crates.len(), "{}", run.stdout);
}

/// Generation does not depend on the clock or the working directory.
#[test]
fn generation_is_reproducible() {
    let ws = workspace();
    let dir = ws.join("generated/segmentation");
    let a = experiment_rs("configs/experiment/segmentation.yaml", &[], &dir);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = experiment_rs("configs/experiment/segmentation.yaml", &[], &dir);
    assert_eq!(a, b);
}

/// cyto_dl's own experiments check unmodified, in 3D and in 2D.
#[test]
fn cyto_dl_reference_experiments_check() {
    let Some(shared) = cytodl_testkit::shared_dir("cyto_dl_reference_experiments_check") else { return };
    let dir = shared.join("reference/cyto_dl-configs/experiment/im2im");
    for name in ["segmentation", "labelfree"] {
        let file = dir.join(format!("{name}.yaml"));
        for extra in [&[][..], &["spatial_dims=2", "data._aux.patch_shape=[32,32]"][..]] {
            let mut args = vec!["check", file.to_str().expect("utf-8")];
            args.extend_from_slice(extra);
            let run = common::cytodl_build(&workspace(), &args, &[]);
            assert!(run.ok, "{name} {extra:?}:\n{}", run.stderr);
            let dims = if extra.is_empty() { "3D" } else { "2D" };
            assert!(run.stderr.contains(&format!("ok: im2im_{name} checks ({dims}")), "{}", run.stderr);
        }
    }
    // Super-resolution checks in 3D. In 2D, cyto_dl's test and predict crops keep their 3-value
    // `roi_size: [64, -1, -1]`, which MONAI's CenterSpatialCropd rejects at test time ("Sequence
    // must have length 2, got 3"), and its ResBlocksHead keeps the default spatial_dims 3: check
    // reports all three at their lines; with 2-value crops and a 2-D head it passes.
    let superres = dir.join("segmentation_superres.yaml");
    let superres = superres.to_str().expect("utf-8");
    let run = common::cytodl_build(&workspace(), &["check", superres], &[]);
    assert!(run.ok && run.stderr.contains("ok: im2im_segmentation_superres checks (3D, 2 columns, head seg"), "{}", run.stderr);
    let run = common::cytodl_build(&workspace(), &["check", superres, "spatial_dims=2", "data._aux.patch_shape=[64,64]"], &[]);
    assert!(!run.ok);
    for line in [99, 133] {
        let at = format!("data/im2im/segmentation_superres.yaml:{line}:19: error: roi_size [64, -1, -1] has 3 values but the backbone's spatial_dims is 2");
        assert!(run.stderr.contains(&at), "{}", run.stderr);
    }
    assert!(
        run.stderr.contains("model/im2im/segmentation_superres.yaml:45:9: error: head `seg` has spatial_dims = 3 (the default is 3), the backbone 2"),
        "{}",
        run.stderr
    );
    let crops_2d = ["data.transforms.test.transforms.3.roi_size=[64,-1]", "data.transforms.predict.transforms.2.roi_size=[64,-1]"];
    let head_2d = "+model._aux._tasks.0.1.spatial_dims=2";
    let run =
        common::cytodl_build(&workspace(), &["check", superres, "spatial_dims=2", "data._aux.patch_shape=[64,64]", crops_2d[0], crops_2d[1], head_2d], &[]);
    assert!(run.ok && run.stderr.contains("ok: im2im_segmentation_superres checks (2D"), "{}", run.stderr);

    // cyto_dl's GAN checks in 3D and 2D.
    let gan = dir.join("gan.yaml");
    let gan = gan.to_str().expect("utf-8");
    for (extra, dims) in [(&[][..], "3D"), (&["spatial_dims=2", "data._aux.patch_shape=[64,64]"][..], "2D")] {
        let mut args = vec!["check", gan];
        args.extend_from_slice(extra);
        let run = common::cytodl_build(&workspace(), &args, &[]);
        assert!(run.ok && run.stderr.contains(&format!("ok: im2im_gan checks ({dims}, 2 columns, head raw")), "{}", run.stderr);
    }
    // GAN super-resolution checks in 3D. In 2D, besides the same 3-value crops, its
    // GANHead_resize keeps the default spatial_dims 3 (cyto_dl would build 3-D convolutions for
    // 2-D images); with both set for 2D it checks.
    let gsr = dir.join("gan_superres.yaml");
    let gsr = gsr.to_str().expect("utf-8");
    let run = common::cytodl_build(&workspace(), &["check", gsr], &[]);
    assert!(run.ok && run.stderr.contains("ok: im2im_gan_superres checks (3D, 2 columns, head raw"), "{}", run.stderr);
    let run = common::cytodl_build(&workspace(), &["check", gsr, "spatial_dims=2", "data._aux.patch_shape=[64,64]"], &[]);
    assert!(!run.ok);
    for line in [94, 134] {
        let at = format!("data/im2im/gan_superres.yaml:{line}:19: error: roi_size [64, -1, -1] has 3 values but the backbone's spatial_dims is 2");
        assert!(run.stderr.contains(&at), "{}", run.stderr);
    }
    assert!(
        run.stderr.contains("model/im2im/gan_superres.yaml:64:9: error: head `raw` has spatial_dims = 3 (the default is 3), the backbone 2"),
        "{}",
        run.stderr
    );
    let run = common::cytodl_build(&workspace(), &["check", gsr, "spatial_dims=2", "data._aux.patch_shape=[64,64]", crops_2d[0], crops_2d[1], head_2d], &[]);
    assert!(run.ok && run.stderr.contains("ok: im2im_gan_superres checks (2D"), "{}", run.stderr);

    // Instance segmentation checks in 3D and 2D.
    let iseg = dir.join("instance_seg.yaml");
    let iseg = iseg.to_str().expect("utf-8");
    for (extra, dims) in [(&[][..], "3D"), (&["spatial_dims=2", "data._aux.patch_shape=[64,64]"][..], "2D")] {
        let mut args = vec!["check", iseg];
        args.extend_from_slice(extra);
        let run = common::cytodl_build(&workspace(), &args, &[]);
        assert!(run.ok && run.stderr.contains(&format!("ok: im2im_instance_seg checks ({dims}, 2 columns, head seg")), "{}", run.stderr);
    }
    // The napari plugin's experiment (its MUST_OVERRIDE values set) checks but for its polygon
    // loading, which is listed at each of its locations.
    let plugin = dir.join("segmentation_plugin.yaml");
    let set = [
        "spatial_dims=3",
        "data.path=/data/manifests",
        "data.num_workers=0",
        "data.batch_size=1",
        "paths.output_dir=/data/out",
        "model._aux.filters=[16,32,64]",
    ];
    let mut args = vec!["check", plugin.to_str().expect("utf-8")];
    args.extend_from_slice(&set);
    let run = common::cytodl_build(&workspace(), &args, &[]);
    assert!(!run.ok);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(errors.len(), 6, "{}", run.stderr);
    for e in &errors {
        assert!(e.ends_with("error: `cyto_dl.image.io.PolygonLoaderd` (polygon loading) is not implemented in cytodl yet"), "{e}");
    }
    for line in [55, 61, 131, 137, 218, 224] {
        assert!(run.stderr.contains(&format!("data/im2im/segmentation_plugin.yaml:{line}:19: error")), "{}", run.stderr);
    }
}

/// The seed document's model-level postprocessing (`_partial_` functions per column and head)
/// becomes typed steps; per-head `postprocess` entries take precedence.
#[test]
fn seed_document_postprocessing_shape() {
    let over = "model.postprocessing={input:{raw:{_target_:cyto_dl.model.utils.postprocessing.rescale,_partial_:true}},prediction:{seg:{_target_:cyto_dl.model.utils.postprocessing.sigmoid_rescale,_partial_:true}}}";
    let ws = workspace();
    let (code, _) =
        experiment_rs("configs/experiment/segmentation.yaml", &["~model._aux._tasks.0.1.postprocess", &format!("+{over}")], &ws.join("generated/segmentation"));
    let code: String = code.split_whitespace().collect();
    assert!(code.contains("input:Some(PostprocessConfig::Rescale(Rescale{}))"), "{code}");
    assert!(code.contains("prediction:Some(PostprocessConfig::SigmoidRescale(SigmoidRescale{})"), "{code}");
    assert!(code.contains("postprocessing:None"), "the model-level entries moved to the head: {code}");
}
