//! Host directory export (in progress).
