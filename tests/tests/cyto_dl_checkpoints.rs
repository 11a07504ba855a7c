//! Models trained by Python cyto_dl 0.6.2 predict here what they predict there. For each
//! experiment, `scripts/oracles/cyto_dl_fixtures.py` had real cyto_dl train on small synthetic
//! data with its own config tree (`../shared/reference/cyto_dl-configs`, a few size overrides)
//! and predict one image; `tests/fixtures/cyto_dl/<experiment>/` keeps the input, the checkpoint
//! and cyto_dl's prediction. Here the user's path: `cytodl-build build` on the same YAML with the
//! same overrides, then the binary's `predict --ckpt` on the same input.

use std::path::{Path, PathBuf};

use cytodl_tests::e2e::{binary, read_image, run, scratch};

/// `overrides.txt`: the size overrides cyto_dl trained with, one per line.
fn fixture_overrides(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

/// Builds `experiment` from cyto_dl's config tree, predicts the fixture's image with cyto_dl's
/// checkpoint, and compares each head's output with cyto_dl's.
fn predicts_like_cyto_dl(experiment: &str, heads: &[&str]) {
    let test = format!("predicts_like_cyto_dl({experiment})");
    let Some(shared) = cytodl_testkit::shared_dir(&test) else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let fixture = root.join("tests/fixtures/cyto_dl").join(experiment);
    let yaml = shared.join(format!("reference/cyto_dl-configs/experiment/im2im/{experiment}.yaml"));
    let dir = scratch(&format!("cyto-dl-{experiment}"));

    // The data folder cyto_dl predicted from: the image and a manifest naming it in every column.
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let image = data.join("img.ome.tif");
    std::fs::copy(fixture.join("img.ome.tif"), &image).expect("copy the fixture's image");
    let columns = ["raw", "seg"];
    let row = columns.iter().map(|_| image.to_str().expect("utf-8")).collect::<Vec<_>>().join(",");
    for split in ["train", "valid", "test"] {
        std::fs::write(data.join(format!("{split}.csv")), format!("{}\n{row}\n", columns.join(","))).expect("csv");
    }

    // cytodl-build on cyto_dl's YAML, unmodified; the overrides cyto_dl trained with.
    let overrides = fixture_overrides(&fixture.join("overrides.txt"));
    let mut args: Vec<String> = vec!["build".into(), yaml.to_str().expect("utf-8").into()];
    args.extend(overrides.iter().cloned());
    args.extend(["--out".into(), dir.join("gen").to_str().expect("utf-8").into(), "--profile".into(), "dev".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run(&dir, &binary("cytodl-build"), &args);
    assert!(r.ok, "cytodl-build {args:?}:\n{}", r.text());
    let exe = PathBuf::from(r.stdout.lines().last().expect("the binary's path"));
    // cyto_dl's experiments train on `trainer: gpu`; a build without a GPU backend says so...
    assert!(r.stderr.contains("warning: trainer.accelerator is gpu, but this build has no GPU backend"), "{}", r.stderr);

    let out = dir.join("pred");
    let ckpt = fixture.join("model.ckpt");
    let data_path = format!("data.path={}", data.display());
    let predict = ["predict", "--ckpt", ckpt.to_str().expect("utf-8"), &data_path, "--output-dir", out.to_str().expect("utf-8")];
    // ...and the binary, as Lightning would, refuses to run on the CPU unless told to.
    let r = run(&dir, &exe, &predict);
    assert!(!r.ok && r.stderr.contains("trainer.accelerator is gpu, but this binary was built without a GPU backend"), "{experiment} predict:\n{}", r.text());
    assert!(!out.exists(), "{experiment}: nothing is written before the device is settled");
    let r = run(&dir, &exe, &[&predict[..], &["--device", "cpu"]].concat());
    assert!(r.ok, "{experiment} predict:\n{}", r.text());
    assert!(r.stdout.contains("predict: 1 files written"), "{}", r.stdout);
    let load_warning = format!("warning: {}", ckpt.display());
    assert!(!r.stderr.contains(&load_warning), "every weight of cyto_dl's checkpoint loads by name:\n{}", r.stderr);

    for head in heads {
        let (ours, dtype) = read_image(&out.join(head).join("img.ome.tif"));
        let (want, want_dtype) = read_image(&fixture.join("pred").join(head).join("img.ome.tif"));
        assert_eq!((dtype, ours.shape()), (want_dtype, want.shape()), "{experiment}/{head}: type and shape");
        assert!(want.max() > want.min(), "{experiment}/{head}: cyto_dl's prediction is constant; regenerate the fixture");
        // Instance labels: the same labels up to a renumbering (each of ours paired with the
        // cyto_dl label it overlaps most, one to one) on at least 99% of voxels.
        if dtype == cytodl_runtime::io::DType::U16 {
            let same = ours.data().iter().zip(want.data()).filter(|(a, b)| a == b).count();
            let agree = agreement_up_to_renumbering(ours.data(), want.data());
            eprintln!("{experiment}/{head}: {same} of {} labels identical, {agree} up to renumbering; cyto_dl found {} instances", want.len(), want.max());
            assert!(agree * 100 >= want.len() * 99, "{experiment}/{head}: only {agree} of {} voxels agree", want.len());
            cytodl_testkit::oracle_ran("cyto_dl", &test, want.len());
            continue;
        }
        // uint8 after a sigmoid and a stretch to [0, 255]: float32 differences between torch and
        // burn move a voxel on a rounding boundary by one step.
        let diffs: Vec<f32> = ours.data().iter().zip(want.data()).map(|(a, b)| (a - b).abs()).collect();
        let worst = diffs.iter().copied().fold(0.0f32, f32::max);
        let off = diffs.iter().filter(|d| **d > 1.0).count();
        let differing = diffs.iter().filter(|d| **d > 0.0).count();
        eprintln!("{experiment}/{head}: {differing} of {} voxels differ (max {worst})", diffs.len());
        assert!(off * 100 <= diffs.len(), "{experiment}/{head}: {off} of {} voxels differ by more than 1 (max {worst})", diffs.len());
        cytodl_testkit::oracle_ran("cyto_dl", &test, diffs.len());
    }
}

/// Voxels on which two label images agree once labels are paired one to one, greedily by
/// overlap (background pairs with background).
fn agreement_up_to_renumbering(a: &[f32], b: &[f32]) -> usize {
    let mut overlap: std::collections::HashMap<(u32, u32), usize> = std::collections::HashMap::new();
    for (x, y) in a.iter().zip(b) {
        *overlap.entry((*x as u32, *y as u32)).or_default() += 1;
    }
    let mut pairs: Vec<((u32, u32), usize)> = overlap.into_iter().collect();
    pairs.sort_by(|p, q| q.1.cmp(&p.1).then(p.0.cmp(&q.0)));
    let (mut used_a, mut used_b) = (std::collections::HashSet::new(), std::collections::HashSet::new());
    let mut agree = 0;
    for ((x, y), n) in pairs {
        if (x == 0) != (y == 0) || used_a.contains(&x) || used_b.contains(&y) {
            continue;
        }
        used_a.insert(x);
        used_b.insert(y);
        agree += n;
    }
    agree
}

#[test]
fn segmentation_superres_predicts_like_cyto_dl() {
    predicts_like_cyto_dl("segmentation_superres", &["seg"]);
}

/// cyto_dl's GAN (segmentation -> raw image): the generator of cyto_dl's checkpoint (its
/// discriminator loads too) predicts cyto_dl's image.
#[test]
fn gan_predicts_like_cyto_dl() {
    predicts_like_cyto_dl("gan", &["raw"]);
}

/// cyto_dl's GAN super-resolution: a quarter-size segmentation in, the full-size image out
/// (GANHead_resize upsamples; the discriminator saw the source nearest-upsampled).
#[test]
fn gan_superres_predicts_like_cyto_dl() {
    predicts_like_cyto_dl("gan_superres", &["raw"]);
}

/// cyto_dl's instance segmentation: its network's skeleton, semantic and embedding channels
/// clustered into the same instance labels.
#[test]
fn instance_seg_predicts_like_cyto_dl() {
    predicts_like_cyto_dl("instance_seg", &["seg"]);
}
