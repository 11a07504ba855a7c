//! End-to-end checks that need a crate of their own: `cytodl_experiment!` expanded in a user crate,
//! and the helpers of the end-to-end tests ([`e2e`]).

pub mod e2e;

cytodl_macros::cytodl_experiment!("../configs/experiment/segmentation.yaml");
cytodl_macros::cytodl_experiment!("../configs/experiment/labelfree.yaml", "spatial_dims=2", "data._aux.patch_shape=[32,32]");
