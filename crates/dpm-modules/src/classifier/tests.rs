//! Unit tests (a table of input → expected output per rule) and property tests.
