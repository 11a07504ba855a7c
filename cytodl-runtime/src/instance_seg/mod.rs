//! cyto_dl's instance segmentation (`cyto_dl/models/im2im/utils/instance_seg.py`): the training
//! target of a label image ([`preprocess`]), and the clustering of a prediction into instance
//! labels ([`cluster`]), on the label-volume operations they are built from ([`grid`],
//! [`morphology`], [`nearest`]). The loss is [`crate::loss::instance_seg_loss`].

pub mod cluster;
pub mod grid;
pub mod morphology;
pub mod nearest;
pub mod preprocess;

pub use cluster::{ClusterError, InstanceSegCluster};
pub use preprocess::{InstanceSegPreprocess, PreprocessError};
