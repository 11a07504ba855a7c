//! Prints one JSON line of statistics for a selection of an image file:
//! `image-stats FILE [C=i] [Z=i] [T=i]` (a comma list such as `C=0,2` keeps the axis).
//! Used to compare our reader against numpy/tifffile (tests/tiff_variants.py). Besides sum, min
//! and max, `wsum` weighs each voxel by its position (`Σ v[i]·(i mod 251 + 1)` over the C-order
//! flat index), so voxels read into the wrong place change it.

use std::path::PathBuf;
use std::process::ExitCode;

use cytodl_runtime::io::{read, Index, Selection};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: image-stats FILE [C=i] [Z=i] [T=i]");
        return ExitCode::from(2);
    };
    let mut sel = Selection::default();
    for arg in &args[1..] {
        let parsed = arg.split_once('=').and_then(|(k, v)| {
            let list: Option<Vec<usize>> = v.split(',').map(|x| x.trim().parse().ok()).collect();
            let list = list?;
            let index = if v.contains(',') { Index::Many(list) } else { Index::One(*list.first()?) };
            Some((k.to_ascii_uppercase(), index))
        });
        match parsed {
            Some((k, i)) if k == "C" => sel.c = Some(i),
            Some((k, i)) if k == "Z" => sel.z = Some(i),
            Some((k, i)) if k == "T" => sel.t = Some(i),
            _ => {
                eprintln!("{file}: bad selection argument `{arg}` (expected C=i, Z=i or T=i)");
                return ExitCode::from(2);
            }
        }
    }
    match read(&PathBuf::from(file), &sel) {
        Ok((array, info)) => {
            // Written by hand to keep the documented key order; numbers via serde_json (NaN -> null).
            let num = |v: f64| serde_json::Value::from(v).to_string();
            let shape: Vec<String> = array.shape().iter().map(|n| n.to_string()).collect();
            let wsum: f64 = array.data().iter().enumerate().map(|(i, &v)| v as f64 * ((i % 251) + 1) as f64).sum();
            println!(
                "{{\"shape\": [{}], \"dtype\": \"{}\", \"sum\": {}, \"min\": {}, \"max\": {}, \"wsum\": {}}}",
                shape.join(", "),
                info.dtype.name(),
                num(array.sum()),
                num(array.min() as f64),
                num(array.max() as f64),
                num(wsum)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("image-stats: {e}");
            ExitCode::from(1)
        }
    }
}
