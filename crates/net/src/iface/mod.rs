//! The interface layer (in progress).
