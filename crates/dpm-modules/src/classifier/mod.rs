//! The query classifier (placeholder: being written).

use dpm_engine::service::{Maturity, ModuleInfo, ModuleType};

/// The classifier's declaration.
pub static INFO: ModuleInfo = ModuleInfo {
    kind: ModuleType::QueryClassifier,
    name: "qc_lexer",
    maturity: Maturity::InDevelopment,
    version: "0.1.0",
    description: "Statement type, writes, transaction boundaries, tables and digest from a MariaDB-aware lexer",
    options: &[],
};
