//! Secrets: passwords are *referenced* from config (env var or file) and held
//! in a type that cannot be printed, logged or serialised by accident.

use std::fmt;

/// `N` bytes from the operating system's random source, or its error.
pub(crate) fn try_random<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)?;
    Ok(b)
}

/// `N` bytes from the operating system's random source. A failing source
/// panics rather than hand out zeros (a predictable salt or nonce): `run`
/// draws its salt with [`try_random`] before any probe and stops with exit
/// 4 if the source fails, and a probe task that panics becomes that
/// target's `internal` error, never a pass.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    try_random().unwrap_or_else(|e| panic!("the OS random source failed: {e}"))
}

/// A resolved secret value. `Debug` and `Display` print `[redacted]`, and the
/// type deliberately does not implement `Serialize`, so a password can only
/// leave the process through [`Secret::expose`], which is used in one place:
/// the AUTH command.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from an env var or a file.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value, for sending in AUTH. Never format it into a message.
    pub fn expose(&self) -> &str {
        &self.0
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
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some([redacted])");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }
}
