//! Dictionary transforms, with MONAI's (and cyto_dl's) names and defaults.

use crate::components::data::MonaiBioReader;
use crate::field::{Keys, Map, Raw};
use crate::values::{ChannelDim, Listed, PerKey, Targets};
use crate::{choice, component, kind};

choice! {
    /// How `Zoomd` (and padding transforms) fill outside the image.
    pub enum PadMode {
        Constant = "constant" | "zeros",
        Edge = "edge" | "replicate" | "border",
        Reflect = "reflect" | "reflection",
        Symmetric = "symmetric",
        Wrap = "wrap" | "circular",
    }
}

choice! {
    /// `Zoomd`'s interpolation (torch's `F.interpolate` modes).
    pub enum InterpMode {
        Area = "area",
        Nearest = "nearest",
        NearestExact = "nearest-exact",
        Linear = "linear" | "bilinear" | "trilinear",
    }
}

component! {
    /// Runs transforms in order.
    #[kind(Transform)]
    #[names("monai.transforms.Compose")]
    pub struct Compose {
        /// the transforms, in order
        pub transforms: Targets<TransformConfig>,
    }
}

component! {
    /// Reads TIFF / OME-TIFF images named in a column.
    #[kind(Transform)]
    #[names("monai.transforms.LoadImaged", "cyto_dl.image.io.bioio_loader.BioIOImageLoaderd")]
    pub struct LoadImaged {
        /// the columns this transform applies to
        pub keys: Keys,
        /// a cyto_dl MonaiBioReader (or a list holding one) selecting channels and slices
        pub reader: Option<Listed<MonaiBioReader>> = None,
        /// expand `~` in paths
        pub expand_user: bool = true,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
    ignored {
        /// (MONAI) no metadata dict is kept
        image_only: bool = true => "metadata is not exposed to transforms",
    }
}

component! {
    /// Moves (or adds) the channel axis to the front.
    #[kind(Transform)]
    #[names("monai.transforms.EnsureChannelFirstd")]
    pub struct EnsureChannelFirstd {
        /// the columns this transform applies to
        pub keys: Keys,
        /// `no_channel` to add a channel axis, or the axis index
        pub channel_dim: Option<ChannelDim> = None,
        /// fail on ambiguous layouts
        pub strict_check: bool = true,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// A no-op: arrays are already what the model takes.
    #[kind(Transform)]
    #[names("monai.transforms.ToTensord")]
    pub struct ToTensord {
        /// the columns this transform applies to
        pub keys: Keys,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
    ignored {
        /// (MONAI) arrays are float32 here
        dtype: Option<Raw> = None => "arrays are float32",
        /// (MONAI) no metadata
        track_meta: bool = true => "no metadata is tracked",
    }
}

component! {
    /// Zero-mean, unit-variance intensities.
    #[kind(Transform)]
    #[names("monai.transforms.NormalizeIntensityd")]
    pub struct NormalizeIntensityd {
        /// the columns this transform applies to
        pub keys: Keys,
        /// value(s) to subtract; null: the mean
        pub subtrahend: Option<Vec<f64>> = None,
        /// value(s) to divide by; null: the standard deviation
        pub divisor: Option<Vec<f64>> = None,
        /// statistics over non-zero voxels only
        pub nonzero: bool = false,
        /// statistics per channel
        pub channel_wise: bool = false,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Replaces values on one side of a threshold.
    #[kind(Transform)]
    #[names("monai.transforms.ThresholdIntensityd")]
    pub struct ThresholdIntensityd {
        /// the columns this transform applies to
        pub keys: Keys,
        /// the threshold
        pub threshold: f64,
        /// keep values above (else below) the threshold
        pub above: bool = true,
        /// value for the others
        pub cval: f64 = 0.0,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// cyto_dl's instance-segmentation target: a label image becomes `dim + 4` channels
    /// (skeleton distance, semantic mask, embedding offsets, boundaries, loss cost map).
    #[kind(Transform)]
    #[names("cyto_dl.models.im2im.utils.InstanceSegPreprocessd", "cyto_dl.models.im2im.utils.instance_seg.InstanceSegPreprocessd")]
    pub struct InstanceSegPreprocessd {
        /// the label columns to convert
        #[yaml = "label_keys"]
        pub keys: Keys,
        /// box size of the embedding's smoothing
        pub kernel_size: i64 = 3,
        /// erosion radius of the thinning
        pub thin: i64 = 5,
        /// 2 or 3 (the experiment's spatial_dims)
        pub dim: i64 = 3,
        /// Z spacing relative to Y and X
        pub anisotropy: f64 = 2.6,
        /// keep only each label's largest connected piece
        pub keep_largest: bool = true,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Linear intensity rescaling.
    #[kind(Transform)]
    #[names("monai.transforms.ScaleIntensityRanged")]
    pub struct ScaleIntensityRanged {
        /// the columns this transform applies to
        pub keys: Keys,
        /// input range start
        pub a_min: f64,
        /// input range end
        pub a_max: f64,
        /// output range start
        pub b_min: Option<f64> = None,
        /// output range end
        pub b_max: Option<f64> = None,
        /// clip to the output range
        pub clip: bool = false,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Percentile-based intensity rescaling.
    #[kind(Transform)]
    #[names("monai.transforms.ScaleIntensityRangePercentilesd")]
    pub struct ScaleIntensityRangePercentilesd {
        /// the columns this transform applies to
        pub keys: Keys,
        /// lower percentile
        pub lower: f64,
        /// upper percentile
        pub upper: f64,
        /// output range start
        pub b_min: Option<f64> = None,
        /// output range end
        pub b_max: Option<f64> = None,
        /// clip to the output range
        pub clip: bool = false,
        /// output range relative to the percentiles
        pub relative: bool = false,
        /// percentiles per channel
        pub channel_wise: bool = false,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Clips intensities.
    #[kind(Transform)]
    #[names("cyto_dl.image.transforms.clip.Clipd", "cyto_dl.image.transforms.Clipd")]
    pub struct Clipd {
        /// the columns this transform applies to
        pub keys: Keys,
        /// lower bound
        pub low: f64 = 0.0,
        /// upper bound
        pub high: f64 = 1.0,
        /// bounds are percentiles
        pub percentile: bool = true,
        /// per channel
        pub per_channel: bool = true,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Resizes by a zoom factor.
    #[kind(Transform)]
    #[names("monai.transforms.Zoomd")]
    pub struct Zoomd {
        /// the columns this transform applies to
        pub keys: Keys,
        /// zoom factor(s) per spatial axis
        pub zoom: Vec<f64>,
        /// interpolation: one of area, nearest, nearest-exact, linear, bilinear, trilinear, or one per key
        pub mode: PerKey<InterpMode> = PerKey(vec![InterpMode::Area]),
        /// padding when keep_size shrinks
        pub padding_mode: PadMode = PadMode::Edge,
        /// align corners for linear modes
        pub align_corners: Option<bool> = None,
        /// pad or crop back to the input size
        pub keep_size: bool = true,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Random aligned patches across keys at different scales.
    #[kind(Transform)]
    #[names("cyto_dl.image.transforms.RandomMultiScaleCropd", "cyto_dl.image.transforms.multiscale_cropper.RandomMultiScaleCropd")]
    pub struct RandomMultiScaleCropd {
        /// the columns this transform applies to
        pub keys: Keys,
        /// patch size at scale 1, one value per spatial axis
        pub patch_shape: Vec<i64>,
        /// per key, its scale(s) relative to the patch
        pub scales_dict: Option<Map<Vec<f64>>> = None,
        /// patches drawn per image
        pub patch_per_image: i64 = 1,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
    ignored {
        /// (cyto_dl) attempts for selection_fn
        max_attempts: i64 = 100 => "no selection function",
    }
    unsupported {
        /// (cyto_dl) not supported
        selection_fn: Option<Raw> = None,
    }
}

component! {
    /// Random crops of a fixed size, several per image (MONAI's).
    #[kind(Transform)]
    #[names("monai.transforms.RandSpatialCropSamplesd")]
    pub struct RandSpatialCropSamplesd {
        /// the columns this transform applies to
        pub keys: Keys,
        /// the crop size, one value per spatial axis (-1: the image's size)
        pub roi_size: Vec<i64>,
        /// crops drawn per image
        pub num_samples: i64,
        /// the largest crop when random_size is true
        pub max_roi_size: Option<Vec<i64>> = None,
        /// crop from the image's centre
        pub random_center: bool = true,
        /// draw each crop's size between roi_size and max_roi_size
        pub random_size: bool = false,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Crops the centre of the image (MONAI's).
    #[kind(Transform)]
    #[names("monai.transforms.CenterSpatialCropd")]
    pub struct CenterSpatialCropd {
        /// the columns this transform applies to
        pub keys: Keys,
        /// the crop size, one value per spatial axis (-1: the image's size)
        pub roi_size: Vec<i64>,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Drops the sample's empty manifest cells (pandas' NaN: an empty cell, `nan`, `NA`, ...),
    /// so that transforms with `allow_missing_keys` skip them (cyto_dl's plugin data).
    #[kind(Transform)]
    #[names("cyto_dl.datamodules.dataframe.utils.RemoveNaNKeysd")]
    pub struct RemoveNaNKeysd {}
}

component! {
    /// Keeps only these keys of the sample (MONAI's).
    #[kind(Transform)]
    #[names("monai.transforms.SelectItemsd")]
    pub struct SelectItemsd {
        /// the keys to keep
        pub keys: Keys,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Merges two images by a mask into a new key (cyto_dl's `Merged`): the image the
    /// `base_image_key` column names where the mask is set, the other image elsewhere; without a
    /// mask, a copy of the named image.
    #[kind(Transform)]
    #[names("cyto_dl.image.transforms.merge.Merged", "cyto_dl.image.transforms.Merged")]
    pub struct Merged {
        /// the mask's key (1: the base image)
        pub mask_key: String,
        /// the two images' keys
        pub image_keys: Vec<String>,
        /// the column naming which of the two is the base image
        pub base_image_key: String,
        /// the key the merged image is written to
        pub output_name: String,
    }
}

component! {
    /// Pads the image to at least a size (MONAI's).
    #[kind(Transform)]
    #[names("monai.transforms.SpatialPadd")]
    pub struct SpatialPadd {
        /// the size to reach, one value per spatial axis (-1: the image's size)
        pub spatial_size: Vec<i64>,
        /// the columns this transform applies to
        pub keys: Keys,
        /// where the padding goes
        pub method: PadMethod = PadMethod::Symmetric,
        /// how to fill
        pub mode: PadMode = PadMode::Constant,
        /// the fill of mode constant
        pub value: f64 = 0.0,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

choice! {
    /// Where `SpatialPadd` puts its padding.
    pub enum PadMethod {
        Symmetric = "symmetric",
        End = "end",
    }
}

component! {
    /// Random flips.
    #[kind(Transform)]
    #[names("monai.transforms.RandFlipd")]
    pub struct RandFlipd {
        /// the columns this transform applies to
        pub keys: Keys,
        /// probability of applying the transform
        pub prob: f64 = 0.1,
        /// axis or axes to flip; null: all
        pub spatial_axis: Option<Vec<i64>> = None,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Random quarter-turn rotations.
    #[kind(Transform)]
    #[names("monai.transforms.RandRotate90d")]
    pub struct RandRotate90d {
        /// the columns this transform applies to
        pub keys: Keys,
        /// probability of applying the transform
        pub prob: f64 = 0.1,
        /// at most this many quarter turns
        pub max_k: i64 = 3,
        /// the plane of rotation
        pub spatial_axes: Vec<i64> = vec![0, 1],
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Random non-linear intensity shifts.
    #[kind(Transform)]
    #[names("monai.transforms.RandHistogramShiftd")]
    pub struct RandHistogramShiftd {
        /// the columns this transform applies to
        pub keys: Keys,
        /// control points (or a range)
        pub num_control_points: Vec<i64> = vec![10],
        /// probability of applying the transform
        pub prob: f64 = 0.1,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Random intensity shift scaled by the standard deviation.
    #[kind(Transform)]
    #[names("monai.transforms.RandStdShiftIntensityd")]
    pub struct RandStdShiftIntensityd {
        /// the columns this transform applies to
        pub keys: Keys,
        /// shift range in standard deviations
        pub factors: Vec<f64>,
        /// probability of applying the transform
        pub prob: f64 = 0.1,
        /// non-zero voxels only
        pub nonzero: bool = false,
        /// per channel
        pub channel_wise: bool = false,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Random gamma contrast.
    #[kind(Transform)]
    #[names("monai.transforms.RandAdjustContrastd")]
    pub struct RandAdjustContrastd {
        /// the columns this transform applies to
        pub keys: Keys,
        /// probability of applying the transform
        pub prob: f64 = 0.1,
        /// gamma range
        pub gamma: Vec<f64> = vec![0.5, 4.5],
        /// invert before and after
        pub invert_image: bool = false,
        /// keep mean and std
        pub retain_stats: bool = false,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

component! {
    /// Random Gaussian noise.
    #[kind(Transform)]
    #[names("monai.transforms.RandGaussianNoised")]
    pub struct RandGaussianNoised {
        /// the columns this transform applies to
        pub keys: Keys,
        /// probability of applying the transform
        pub prob: f64 = 0.1,
        /// noise mean
        pub mean: f64 = 0.0,
        /// noise standard deviation
        pub std: f64 = 0.1,
        /// draw the std uniformly from [0, std]
        pub sample_std: bool = true,
        /// skip keys absent from a sample
        pub allow_missing_keys: bool = false,
    }
}

kind! {
    /// A transform of a split's pipeline.
    pub enum TransformConfig: Transform {
        LoadImaged,
        EnsureChannelFirstd,
        ToTensord,
        NormalizeIntensityd,
        ThresholdIntensityd,
        InstanceSegPreprocessd,
        RemoveNaNKeysd,
        SelectItemsd,
        Merged,
        ScaleIntensityRanged,
        ScaleIntensityRangePercentilesd,
        Clipd,
        Zoomd,
        RandomMultiScaleCropd,
        RandSpatialCropSamplesd,
        CenterSpatialCropd,
        SpatialPadd,
        RandFlipd,
        RandRotate90d,
        RandHistogramShiftd,
        RandStdShiftIntensityd,
        RandAdjustContrastd,
        RandGaussianNoised,
    }
}
