//! [`Secret`]: a string that never prints.
//!
//! Tokens, signing secrets and passwords are held in this type from the
//! moment they are read from the environment. Its `Debug` and `Display` print
//! `[redacted]`, and it has no `Serialize`, so a secret cannot reach a log
//! line, an error message or a JSON answer by accident; code that needs the
//! value calls [`Secret::expose`], which is easy to find in review.
//!
//! A tiny wrapper rather than the `secrecy` crate: we need only "never
//! prints" and a constant-time comparison, and this keeps the wording of the
//! redaction our own.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret string. Prints as `[redacted]`.
#[derive(Clone)]
pub struct Secret(Box<str>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().into_boxed_str())
    }

    /// The value itself: for the one place that needs it (a comparison, a
    /// signature), never for output.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares `given` with the secret in constant time. Both sides are
    /// hashed first, so neither the content nor the length of the secret
    /// shows in how long the comparison takes.
    pub fn matches(&self, given: &[u8]) -> bool {
        let want = Sha256::digest(self.0.as_bytes());
        let got = Sha256::digest(given);
        want.ct_eq(&got).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some([redacted])");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn matches_compares_the_whole_value() {
        let s = Secret::new("abc123");
        assert!(s.matches(b"abc123"));
        assert!(!s.matches(b"abc12"));
        assert!(!s.matches(b"abc1234"));
        assert!(!s.matches(b""));
    }
}
