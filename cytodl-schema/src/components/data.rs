//! The data module and its image reader.

use crate::component;
use crate::components::transforms::Compose;
use crate::field::{Keys, Map};
use crate::values::IntOrInts;

component! {
    /// A CSV manifest of image paths, split into train/val/test, each split with its transforms.
    #[kind(Datamodule)]
    #[names(
        "cyto_dl.datamodules.dataframe.DataframeDatamodule",
        "cyto_dl.datamodules.DataframeDatamodule",
        "serotiny.datamodules.DataframeDatamodule",
        "serotiny.datamodules.dataframe.DataframeDatamodule",
    )]
    pub struct DataframeDatamodule {
        /// a CSV file (with split_column) or a folder of train/valid/test CSVs
        pub path: String,
        /// one monai.transforms.Compose per split: train, valid, test, predict
        pub transforms: Map<Compose>,
        /// the column naming each row's split
        pub split_column: Option<String> = None,
        /// columns the data needs; relative paths resolve against the CSV's folder
        pub columns: Option<Keys> = None,
        /// where deterministic transform results are cached between epochs and runs
        pub cache_dir: Option<String> = None,
        /// samples per training batch
        pub batch_size: i64 = 1,
        /// data-loading threads
        pub num_workers: i64 = 0,
        /// rows drawn per split, e.g. {train: 10}
        pub subsample: Option<Map<Option<i64>>> = None,
        /// seed for subsampling
        pub seed: Option<i64> = None,
        /// drop a last incomplete training batch
        pub drop_last: bool = false,
        /// shuffle training rows each epoch
        pub shuffle: bool = true,
    }
    ignored {
        /// (PyTorch DataLoader) no effect here
        pin_memory: bool = false => "data stays on the CPU until batching",
        /// (PyTorch DataLoader) no effect here
        persistent_workers: bool = false => "worker threads live for the run",
    }
}

component! {
    /// Which channels, slices and axes to read from each file.
    #[kind(Reader)]
    #[names("cyto_dl.image.io.MonaiBioReader", "cyto_dl.image.io.monai_bio_reader.MonaiBioReader")]
    pub struct MonaiBioReader {
        /// output axes, e.g. ZYX, CZYX, YX
        pub dimension_order_out: Option<String> = None,
        /// channel index or indices
        #[yaml = "C"]
        pub c: Option<IntOrInts> = None,
        /// Z slice(s); null keeps all
        #[yaml = "Z"]
        pub z: Option<IntOrInts> = None,
        /// time point(s)
        #[yaml = "T"]
        pub t: Option<IntOrInts> = None,
    }
}
