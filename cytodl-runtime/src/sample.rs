//! A sample: named fields (the manifest's columns) that start as file paths and become arrays.
//! Generated experiment code names the keys; transforms reach fields by key.

use indexmap::IndexMap;

use crate::array::Array;

/// One field of a sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// A value from the manifest (a file path, or any other cell), before loading.
    Text(String),
    Array(Array),
}

/// Where a sample came from, for error messages and for naming outputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Origin {
    /// The manifest file and 1-based data row (header = row 1, first data row = row 2).
    pub manifest: Option<std::path::PathBuf>,
    pub row: usize,
    /// Source file of each loaded key (`filename_or_obj` in MONAI's metadata).
    pub files: IndexMap<String, std::path::PathBuf>,
    /// Physical pixel sizes (Z, Y, X) of each loaded key, when the file said.
    pub pixel_sizes: IndexMap<String, [Option<f64>; 3]>,
}

/// A dictionary sample, as MONAI's dictionary transforms see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub fields: IndexMap<String, Field>,
    pub origin: Origin,
}

impl Sample {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_text(mut self, key: &str, value: &str) -> Self {
        self.fields.insert(key.to_string(), Field::Text(value.to_string()));
        self
    }

    pub fn with_array(mut self, key: &str, a: Array) -> Self {
        self.fields.insert(key.to_string(), Field::Array(a));
        self
    }

    pub fn array(&self, key: &str) -> Option<&Array> {
        match self.fields.get(key) {
            Some(Field::Array(a)) => Some(a),
            _ => None,
        }
    }

    pub fn array_mut(&mut self, key: &str) -> Option<&mut Array> {
        match self.fields.get_mut(key) {
            Some(Field::Array(a)) => Some(a),
            _ => None,
        }
    }

    pub fn text(&self, key: &str) -> Option<&str> {
        match self.fields.get(key) {
            Some(Field::Text(t)) => Some(t),
            _ => None,
        }
    }

    pub fn set_array(&mut self, key: &str, a: Array) {
        self.fields.insert(key.to_string(), Field::Array(a));
    }
}
