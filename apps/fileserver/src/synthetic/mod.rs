//! Synthetic tree (in progress).
