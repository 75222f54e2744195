//! Network devices (in progress).
