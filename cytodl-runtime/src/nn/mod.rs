//! Networks: MONAI's DynUNet, cyto_dl's heads, and loading of MONAI / Lightning weights.
