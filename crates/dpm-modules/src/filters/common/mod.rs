//! What the built-in filters share: the bounded, never-blocking log file writer
//! (`log_writer`), the statement scope options (`scope`), a JSON line builder (`line`)
//! and the per-session facts a filter reports (`session_facts`).

pub mod line;
pub mod log_writer;
pub mod scope;
pub mod session_facts;
