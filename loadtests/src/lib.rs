//! Load generation and benchmarks for wisp.
