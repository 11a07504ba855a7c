//! Image files: TIFF / OME-TIFF / ImageJ-hyperstack reading with cyto_dl's selection
//! (`dimension_order_out`, `C`, `Z`, `T`), and OME-TIFF writing.

use std::path::PathBuf;

use thiserror::Error;

/// The sample type stored in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    U8,
    U16,
    U32,
    I8,
    I16,
    I32,
    F32,
    F64,
}

impl DType {
    /// numpy's name (`uint16`, `float32`...), as tifffile and cyto_dl users see it.
    pub fn name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}

/// An index or a list of indices into one axis (cyto_dl's `C: 5` or `C: [3, 5]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Index {
    One(usize),
    Many(Vec<usize>),
}

/// What to read from a file, as cyto_dl's `MonaiBioReader` takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selection {
    /// Output axes, e.g. `ZYX`, `CZYX`, `YX`. `None`: the file's axes minus the selected ones, in file order.
    pub dimension_order_out: Option<String>,
    pub c: Option<Index>,
    pub z: Option<Index>,
    pub t: Option<Index>,
}

/// What a file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// Axes in file order after dropping length-1 axes tifffile would squeeze (`CZYX`, `TZCYX`, `YXS`).
    pub axes: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    /// Physical pixel sizes (Z, Y, X) in the file's unit (microns for OME), when given.
    pub pixel_sizes: [Option<f64>; 3],
    pub channel_names: Vec<String>,
}

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a TIFF file ({reason})")]
    NotTiff { path: PathBuf, reason: String },
    #[error("{path}: truncated or corrupt TIFF: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: unsupported TIFF feature: {feature}")]
    Unsupported { path: PathBuf, feature: String },
    #[error("{path}: {axis} index {index} is out of range (the file has {size} along {axis})")]
    OutOfRange { path: PathBuf, axis: char, index: usize, size: usize },
    #[error("{path}: cannot produce axes `{requested}` from the file's axes `{available}`: {reason}")]
    BadSelection { path: PathBuf, requested: String, available: String, reason: String },
}

#[derive(Debug, Error)]
pub enum WriteError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot write {what}")]
    Unsupported { what: String },
}

pub mod ome;
pub mod tiff;
pub mod write;

pub use tiff::{read, read_info};
pub use write::write_ome_tiff;
