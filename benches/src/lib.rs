//! Criterion benchmarks for EDK live in `benches/`.
