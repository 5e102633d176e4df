//! The papers' microbenchmarks: unbalanced, penalty, cache-efficient, synthetic, dispatch
