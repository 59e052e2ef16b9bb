//! Conformance suites that every store plugin and registry driver runs in its own tests.
//! Enabled by the `conformance` feature.
