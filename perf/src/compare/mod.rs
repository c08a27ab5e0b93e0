//! Comparison of a run with a baseline: the regression rule. Pure.
