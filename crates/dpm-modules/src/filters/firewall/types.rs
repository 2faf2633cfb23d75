//! Statement-type sets (`type select|update`, `on_queries ddl`): names as
//! [`StatementType::as_str`] gives them, case-insensitive, kept as a bit set
//! (bit `t as u32`).

use crate::classifier::StatementType;

use super::ast::list_items;

/// The bit of `t`.
#[inline]
pub fn bit(t: StatementType) -> u64 {
    1u64 << (t as u32)
}

/// A `|`- or `,`-separated list of statement type names as a bit set.
pub fn parse_types(list: &str) -> Result<u64, String> {
    let mut bits = 0;
    for item in list_items(list, "statement type")? {
        match StatementType::from_name(&item.to_ascii_lowercase()) {
            Some(t) => bits |= bit(t),
            None => {
                let known: Vec<&str> = StatementType::ALL.iter().map(|t| t.as_str()).collect();
                return Err(format!(
                    "unknown statement type '{item}' (known: {})",
                    known.join(", ")
                ));
            }
        }
    }
    Ok(bits)
}
