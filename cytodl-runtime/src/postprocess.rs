//! cyto_dl's postprocessing of predictions: activation, threshold, labels, rescaling.
