//! memcached's text protocol: parsing requests ([`parse`]) into [`Request`]s.
//!
//! `protocol.txt` is the reference; where it is silent, memcached 1.6's behaviour is.

mod parse;
mod request;

pub use parse::{parse, Limits, Parsed};
pub use request::{GetKind, MetaFlag, MetaFlags, Request, StoreKind};
