//! Each transform's config (`cytodl-schema`, as generated code holds it) to the transform that
//! runs. One `match` over the transform kind: a transform added to the schema is a compile error
//! here until it is built.

use cytodl_schema as config;
use cytodl_schema::TransformConfig;

use super::*;
use crate::io::{Index, Selection};

fn keys(k: &config::Keys) -> Vec<String> {
    k.0.clone()
}

fn index(i: &Option<config::IntOrInts>) -> Result<Option<Index>, TransformError> {
    let bad = |v: i64| TransformError::Invalid { transform: "LoadImaged", message: format!("a reader index must be at least 0, got {v}") };
    Ok(match i {
        None => None,
        Some(config::IntOrInts::One(v)) => Some(Index::One(usize::try_from(*v).map_err(|_| bad(*v))?)),
        Some(config::IntOrInts::Many(vs)) => Some(Index::Many(vs.iter().map(|v| usize::try_from(*v).map_err(|_| bad(*v))).collect::<Result<_, _>>()?)),
    })
}

/// What a `MonaiBioReader` selects.
pub fn selection(reader: Option<&config::MonaiBioReader>) -> Result<Selection, TransformError> {
    let Some(r) = reader else { return Ok(Selection::default()) };
    Ok(Selection { dimension_order_out: r.dimension_order_out.clone(), c: index(&r.c)?, z: index(&r.z)?, t: index(&r.t)? })
}

fn pad_mode(m: config::PadMode) -> PadMode {
    match m {
        config::PadMode::Constant => PadMode::Constant,
        config::PadMode::Edge => PadMode::Edge,
        config::PadMode::Reflect => PadMode::Reflect,
        config::PadMode::Symmetric => PadMode::Symmetric,
        config::PadMode::Wrap => PadMode::Wrap,
    }
}

fn interp_mode(m: config::InterpMode) -> InterpMode {
    match m {
        config::InterpMode::Area => InterpMode::Area,
        config::InterpMode::Nearest => InterpMode::Nearest,
        config::InterpMode::NearestExact => InterpMode::NearestExact,
        config::InterpMode::Linear => InterpMode::Linear,
    }
}

fn count(transform: &'static str, what: &str, v: i64) -> Result<usize, TransformError> {
    usize::try_from(v).map_err(|_| TransformError::Invalid { transform, message: format!("{what} must be at least 0, got {v}") })
}

/// The transform a config describes.
pub fn build(c: &TransformConfig) -> Result<Box<dyn Transform>, TransformError> {
    Ok(match c {
        TransformConfig::LoadImaged(t) => Box::new(LoadImaged {
            keys: keys(&t.keys),
            selection: selection(t.reader.as_ref().map(|r| &r.0))?,
            expand_user: t.expand_user,
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::EnsureChannelFirstd(t) => Box::new(EnsureChannelFirstd {
            keys: keys(&t.keys),
            strict_check: t.strict_check,
            allow_missing_keys: t.allow_missing_keys,
            channel_dim: t.channel_dim.map(|d| match d {
                config::ChannelDim::NoChannel => ChannelDim::NoChannel,
                config::ChannelDim::Axis(a) => ChannelDim::Axis(a),
            }),
        }),
        TransformConfig::ToTensord(t) => Box::new(ToTensord { keys: keys(&t.keys), allow_missing_keys: t.allow_missing_keys }),
        TransformConfig::NormalizeIntensityd(t) => Box::new(NormalizeIntensityd {
            keys: keys(&t.keys),
            subtrahend: t.subtrahend.clone(),
            divisor: t.divisor.clone(),
            nonzero: t.nonzero,
            channel_wise: t.channel_wise,
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::ThresholdIntensityd(t) => Box::new(ThresholdIntensityd {
            keys: keys(&t.keys),
            threshold: t.threshold,
            above: t.above,
            cval: t.cval,
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::InstanceSegPreprocessd(t) => Box::new(super::instance_seg::InstanceSegPreprocessd {
            keys: keys(&t.keys),
            params: crate::instance_seg::preprocess::InstanceSegPreprocess {
                dim: if t.dim == 2 { 2 } else { 3 },
                kernel_size: t.kernel_size.max(1) as usize,
                thin: t.thin.max(1) as usize,
                anisotropy: t.anisotropy,
                keep_largest: t.keep_largest,
            },
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::RemoveNaNKeysd(_) => Box::new(super::items::RemoveNaNKeysd),
        TransformConfig::SelectItemsd(t) => Box::new(super::items::SelectItemsd { keys: keys(&t.keys), allow_missing_keys: t.allow_missing_keys }),
        TransformConfig::Merged(t) => match t.image_keys.as_slice() {
            [a, b] => Box::new(super::items::Merged {
                mask_key: t.mask_key.clone(),
                image_keys: [a.clone(), b.clone()],
                base_image_key: t.base_image_key.clone(),
                output_name: t.output_name.clone(),
            }),
            other => {
                return Err(TransformError::Invalid { transform: "Merged", message: format!("image_keys must be two keys, got {other:?}") });
            }
        },
        TransformConfig::ScaleIntensityRanged(t) => Box::new(ScaleIntensityRanged {
            keys: keys(&t.keys),
            a_min: t.a_min,
            a_max: t.a_max,
            b_min: t.b_min,
            b_max: t.b_max,
            clip: t.clip,
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::ScaleIntensityRangePercentilesd(t) => Box::new(ScaleIntensityRangePercentilesd {
            keys: keys(&t.keys),
            lower: t.lower,
            upper: t.upper,
            b_min: t.b_min,
            b_max: t.b_max,
            clip: t.clip,
            relative: t.relative,
            channel_wise: t.channel_wise,
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::Clipd(t) => Box::new(Clipd {
            keys: keys(&t.keys),
            low: t.low,
            high: t.high,
            percentile: t.percentile,
            per_channel: t.per_channel,
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::Zoomd(t) => Box::new(Zoomd {
            keys: keys(&t.keys),
            zoom: t.zoom.clone(),
            mode: t.mode.0.iter().map(|m| interp_mode(*m)).collect(),
            padding_mode: pad_mode(t.padding_mode),
            align_corners: vec![t.align_corners],
            keep_size: t.keep_size,
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::RandomMultiScaleCropd(t) => {
            const NAME: &str = "RandomMultiScaleCropd";
            let patch: Vec<usize> = t.patch_shape.iter().map(|v| count(NAME, "patch_shape", *v)).collect::<Result<_, _>>()?;
            // cyto_dl without `scales_dict`: every key at the patch's scale.
            let scales = match &t.scales_dict {
                Some(m) => m.0.clone(),
                None => t.keys.iter().map(|k| (k.clone(), vec![1.0])).collect(),
            };
            Box::new(RandomMultiScaleCropd::new(keys(&t.keys), patch, scales, count(NAME, "patch_per_image", t.patch_per_image)?, t.allow_missing_keys)?)
        }
        TransformConfig::RandSpatialCropSamplesd(t) => Box::new(RandSpatialCropSamplesd {
            keys: keys(&t.keys),
            roi_size: t.roi_size.clone(),
            num_samples: count("RandSpatialCropSamplesd", "num_samples", t.num_samples)?,
            max_roi_size: t.max_roi_size.clone(),
            random_center: t.random_center,
            random_size: t.random_size,
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::CenterSpatialCropd(t) => {
            Box::new(CenterSpatialCropd { keys: keys(&t.keys), roi_size: t.roi_size.clone(), allow_missing_keys: t.allow_missing_keys })
        }
        TransformConfig::SpatialPadd(t) => Box::new(SpatialPadd {
            keys: keys(&t.keys),
            spatial_size: t.spatial_size.clone(),
            symmetric: t.method == config::PadMethod::Symmetric,
            mode: pad_mode(t.mode),
            value: t.value as f32,
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::RandFlipd(t) => {
            Box::new(RandFlipd { keys: keys(&t.keys), prob: t.prob, spatial_axis: t.spatial_axis.clone(), allow_missing_keys: t.allow_missing_keys })
        }
        TransformConfig::RandRotate90d(t) => Box::new(RandRotate90d {
            keys: keys(&t.keys),
            prob: t.prob,
            max_k: t.max_k,
            spatial_axes: (t.spatial_axes.first().copied().unwrap_or(0), t.spatial_axes.get(1).copied().unwrap_or(1)),
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::RandHistogramShiftd(t) => Box::new(RandHistogramShiftd {
            keys: keys(&t.keys),
            num_control_points: t.num_control_points.clone(),
            prob: t.prob,
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::RandStdShiftIntensityd(t) => Box::new(RandStdShiftIntensityd {
            keys: keys(&t.keys),
            factors: t.factors.clone(),
            prob: t.prob,
            nonzero: t.nonzero,
            channel_wise: t.channel_wise,
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::RandAdjustContrastd(t) => Box::new(RandAdjustContrastd {
            keys: keys(&t.keys),
            prob: t.prob,
            gamma: t.gamma.clone(),
            invert_image: t.invert_image,
            retain_stats: t.retain_stats,
            allow_missing_keys: t.allow_missing_keys,
        }),
        TransformConfig::RandGaussianNoised(t) => Box::new(RandGaussianNoised {
            keys: keys(&t.keys),
            prob: t.prob,
            mean: t.mean,
            std: t.std,
            sample_std: t.sample_std,
            allow_missing_keys: t.allow_missing_keys,
        }),
    })
}

impl Pipeline {
    /// The pipeline of a split (`Compose`), each transform built from its config.
    pub fn from_config(compose: &config::Compose) -> Result<Pipeline, TransformError> {
        let mut p = Pipeline::new();
        for c in &compose.transforms.0 {
            p.steps.push(build(c)?);
        }
        Ok(p)
    }
}
