//! Paths of the sample guest components.
