//! The crate's single error type, [`ProtocolError`], and its [`Result`] alias.

use thiserror::Error;

/// Everything that can go wrong while decoding (or, rarely, encoding) protocol data.
///
/// Decoders never panic: truncated or malformed input is reported through this type.
/// The `what` fields name the packet or field being read, for logs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The input ended before `what` was complete.
    #[error("truncated {what}")]
    Truncated {
        /// The packet or field that was being read.
        what: &'static str,
    },
    /// `what` was present but its content violates the protocol.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The packet or field that was being read.
        what: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A logical packet's payload is larger than the configured limit.
    #[error("packet payload of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// The payload length seen so far (at least).
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The first byte of a payload is not the one the packet type requires.
    #[error("unexpected header byte 0x{found:02X} for {what}")]
    UnexpectedHeader {
        /// The packet type that was expected.
        what: &'static str,
        /// The header byte actually found.
        found: u8,
    },
    /// A continuation frame of a multi-frame packet carries the wrong sequence id.
    #[error("packet sequence out of order: expected {expected}, found {found}")]
    SequenceMismatch {
        /// The sequence id the frame should have had.
        expected: u8,
        /// The sequence id it had.
        found: u8,
    },
}

impl ProtocolError {
    /// Shorthand for [`ProtocolError::Truncated`].
    #[inline]
    pub const fn truncated(what: &'static str) -> Self {
        ProtocolError::Truncated { what }
    }

    /// Shorthand for [`ProtocolError::Malformed`].
    #[inline]
    pub const fn malformed(what: &'static str, reason: &'static str) -> Self {
        ProtocolError::Malformed { what, reason }
    }
}

/// `Result` with [`ProtocolError`] as the default error type.
pub type Result<T, E = ProtocolError> = std::result::Result<T, E>;
