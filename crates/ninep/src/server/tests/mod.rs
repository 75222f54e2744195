//! Tests of the server framework: sessions over an in-memory transport serving a small
//! in-memory tree, on a one-core cairn runtime.

mod flush;
mod fuzz;
mod harness;
mod linux;
mod plan9;
mod ramfs;
mod version;
