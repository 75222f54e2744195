//! The 9P client (in progress).
