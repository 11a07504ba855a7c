//! Activations and cyto_dl's postprocessing of predictions.

use crate::{choice, component, kind};

component! {
    /// sigmoid
    #[kind(Activation)]
    #[names("torch.nn.Sigmoid")]
    pub struct Sigmoid {}
}

component! {
    /// identity
    #[kind(Activation)]
    #[names("torch.nn.Identity")]
    pub struct Identity {}
}

component! {
    /// tanh
    #[kind(Activation)]
    #[names("torch.nn.Tanh")]
    pub struct Tanh {}
}

component! {
    /// ReLU
    #[kind(Activation)]
    #[names("torch.nn.ReLU")]
    pub struct ReLU {}
    ignored {
        /// (torch) no effect
        inplace: bool = false => "no tensor is modified in place",
    }
}

component! {
    /// softmax
    #[kind(Activation)]
    #[names("torch.nn.Softmax")]
    pub struct Softmax {
        /// the axis
        pub dim: i64 = 0,
    }
}

kind! {
    /// An activation (a head's `final_act`, a postprocessing `activation`).
    pub enum ActivationConfig: Activation {
        Sigmoid,
        Identity,
        Tanh,
        ReLU,
        Softmax,
    }
}

choice! {
    /// The numpy types cyto_dl saves predictions as.
    pub enum NumpyDType {
        U8 = "numpy.uint8" | "uint8",
        U16 = "numpy.uint16" | "uint16",
        U32 = "numpy.uint32",
        I8 = "numpy.int8",
        I16 = "numpy.int16",
        I32 = "numpy.int32",
        F32 = "numpy.float32" | "float32",
        F64 = "numpy.float64",
    }
}

component! {
    /// Activation, threshold, labels, rescale.
    #[kind(Postprocess)]
    #[names("cyto_dl.models.im2im.utils.postprocessing.ActThreshLabel", "cyto_dl.models.im2im.utils.postprocessing.act_thresh_label.ActThreshLabel")]
    pub struct ActThreshLabel {
        /// applied first
        pub activation: Option<ActivationConfig> = None,
        /// keep values above
        pub threshold: Option<f64> = None,
        /// connected-component labels
        pub label: bool = false,
        /// output type
        pub dtype: NumpyDType = NumpyDType::U8,
        /// channel to keep (> 0 selects)
        pub ch: i64 = -1,
        /// stretch to this type's range
        pub rescale_dtype: Option<NumpyDType> = None,
    }
}

choice! {
    /// `AutoThreshold`'s method (skimage's filters).
    pub enum ThresholdMethod {
        Otsu = "threshold_otsu",
    }
}

component! {
    /// A threshold found per image (Otsu's), or a fixed one, to a uint8 mask.
    #[kind(Postprocess)]
    #[names("cyto_dl.models.im2im.utils.postprocessing.AutoThreshold", "cyto_dl.models.im2im.utils.postprocessing.auto_thresh.AutoThreshold")]
    pub struct AutoThreshold {
        /// a skimage threshold function, a fixed threshold, or null (no thresholding)
        pub method: Option<ThresholdArg> = None,
    }
}

/// `AutoThreshold`'s `method`: a skimage function name or a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdArg {
    Method(ThresholdMethod),
    Value(f64),
}

impl crate::Field for ThresholdArg {
    const TY: crate::Ty = crate::Ty::Any;
    fn from_lit(lit: &crate::Lit) -> Result<Self, String> {
        match lit {
            crate::Lit::Int(_) | crate::Lit::Float(_) => Ok(ThresholdArg::Value(lit.as_f64().unwrap_or_default())),
            other => ThresholdMethod::from_lit(other).map(ThresholdArg::Method),
        }
    }
    fn to_lit(&self) -> crate::Lit {
        match self {
            ThresholdArg::Method(m) => m.to_lit(),
            ThresholdArg::Value(v) => crate::Lit::Float(*v),
        }
    }
    #[cfg(feature = "codegen")]
    fn literal(&self, cx: &dyn crate::field::Context) -> proc_macro2::TokenStream {
        match self {
            ThresholdArg::Method(m) => {
                let m = m.literal(cx);
                quote::quote!(ThresholdArg::Method(#m))
            }
            ThresholdArg::Value(v) => {
                let v = crate::field::float_literal(*v);
                quote::quote!(ThresholdArg::Value(#v))
            }
        }
    }
}

component! {
    /// Legacy: stretch to uint8.
    #[kind(Postprocess)]
    #[names("cyto_dl.models.im2im.utils.postprocessing.rescale", "cyto_dl.model.utils.postprocessing.rescale", "cyto_dl.models.utils.postprocessing.rescale")]
    pub struct Rescale {}
}

component! {
    /// Legacy: (sigmoid(x) * 255) as uint8.
    #[kind(Postprocess)]
    #[names("cyto_dl.models.im2im.utils.postprocessing.sigmoid_rescale", "cyto_dl.model.utils.postprocessing.sigmoid_rescale", "cyto_dl.models.utils.postprocessing.sigmoid_rescale")]
    pub struct SigmoidRescale {}
}

component! {
    /// Instance labels (uint16) from an instance-segmentation prediction: skeleton, semantic and
    /// embedding channels, clustered object by object.
    #[kind(Postprocess)]
    #[names("cyto_dl.models.im2im.utils.instance_seg.InstanceSegCluster", "cyto_dl.models.im2im.utils.InstanceSegCluster")]
    pub struct InstanceSegCluster {
        /// 2 or 3 (the experiment's spatial_dims)
        pub dim: i64 = 3,
        /// Z spacing relative to Y and X
        pub anisotropy: f64 = 2.6,
        /// skeleton voxels: skeleton channel above this
        pub skel_threshold: f64 = 0.0,
        /// object voxels: semantic channel above this
        pub semantic_threshold: f64 = 0.0,
        /// skeletons not touching the image edge and smaller than this are dropped
        pub min_size: i64 = 1000,
        /// voxels embedded farther than this from every skeleton stay unlabelled
        pub distance_threshold: f64 = 100.0,
    }
    ignored {
        /// (cyto_dl) a progress bar
        progress: bool = true => "no progress bar",
    }
}

kind! {
    /// How a saved image is postprocessed.
    pub enum PostprocessConfig: Postprocess {
        ActThreshLabel,
        AutoThreshold,
        Rescale,
        SigmoidRescale,
        InstanceSegCluster,
    }
}
