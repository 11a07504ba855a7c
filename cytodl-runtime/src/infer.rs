//! Sliding-window inference over whole images (MONAI's `sliding_window_inference`).
