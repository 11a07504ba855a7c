//! OmegaConf 2.3 interpolation: grammar, resolution, resolvers.
