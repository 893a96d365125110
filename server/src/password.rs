//! Web passwords: the policy a new password must meet, Argon2id hashing into a PHC string, and verification.
//!
//! Hashing is deliberately slow (Argon2id with the RustCrypto defaults, the OWASP baseline: 19 MiB, two
//! passes), so callers on the async runtime run [`verify`] on a blocking thread. A login for a user that does
//! not exist, or has no password, verifies against [`dummy_hash`] so it costs the same time as a wrong
//! password: the answer's timing does not tell whether the name exists.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

/// Fewest characters of a new password (NIST SP 800-63B asks at least 8; a photo library deserves more).
pub const MIN_CHARS: usize = 12;
/// Most bytes of a password: longer input is refused, at login before any hashing, so a huge form field
/// costs the server nothing.
pub const MAX_BYTES: usize = 1024;

/// Why a new password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Nothing was given.
    #[error("the password is empty")]
    Empty,
    /// Fewer than [`MIN_CHARS`] characters.
    #[error("the password is too short: {chars} characters, at least {MIN_CHARS}")]
    TooShort {
        /// How many it has.
        chars: usize,
    },
    /// More than [`MAX_BYTES`] bytes.
    #[error("the password is too long: {bytes} bytes, at most {MAX_BYTES}")]
    TooLong {
        /// How many it has.
        bytes: usize,
    },
}

/// Checks a new password against the policy.
pub fn check(password: &str) -> Result<(), PolicyError> {
    if password.is_empty() {
        return Err(PolicyError::Empty);
    }
    if password.len() > MAX_BYTES {
        return Err(PolicyError::TooLong {
            bytes: password.len(),
        });
    }
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(PolicyError::TooShort { chars });
    }
    Ok(())
}

/// Hashing failed (the OS random generator, or an impossible parameter): nothing to do but report it.
#[derive(Debug, thiserror::Error)]
#[error("hashing the password failed: {0}")]
pub struct HashError(String);

/// The Argon2id PHC string of `password`, with a fresh random salt.
pub fn hash(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| HashError(error.to_string()))
}

/// Whether `password` matches the PHC string `phc` (its own parameters are used). A malformed string never
/// matches. Constant-time in the comparison of the digests (the `password-hash` crate's `Output`).
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash of a random password no one knows, made once per process with the same parameters as real ones:
/// what a login for an unknown user is verified against.
pub fn dummy_hash() -> &'static str {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        let unguessable = hex::encode(rand::random::<[u8; 32]>());
        // A failure here (no randomness) would fail every real hash as well; an unparsable string still
        // makes `verify` refuse, only faster.
        hash(&unguessable).unwrap_or_default()
    });
    &DUMMY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_its_limits() {
        assert_eq!(check(""), Err(PolicyError::Empty));
        assert_eq!(check("short"), Err(PolicyError::TooShort { chars: 5 }));
        // Characters, not bytes: eleven accented letters are still too short.
        assert_eq!(check(&"é".repeat(11)), Err(PolicyError::TooShort { chars: 11 }));
        assert_eq!(check(&"é".repeat(12)), Ok(()));
        assert_eq!(
            check(&"a".repeat(MAX_BYTES + 1)),
            Err(PolicyError::TooLong { bytes: MAX_BYTES + 1 })
        );
        assert!(
            PolicyError::TooShort { chars: 3 }
                .to_string()
                .contains("at least 12")
        );
    }

    #[test]
    fn a_hash_is_argon2id_salted_and_verifies_only_its_password() {
        let first = hash("correct horse battery").unwrap();
        let second = hash("correct horse battery").unwrap();
        assert!(first.starts_with("$argon2id$v=19$"), "{first}");
        assert_ne!(first, second, "each hash has its own salt");
        assert!(verify("correct horse battery", &first));
        assert!(!verify("correct horse battery!", &first));
        assert!(!verify("correct horse battery", "not a phc string"));
        assert!(!verify("", dummy_hash()));
        assert!(dummy_hash().starts_with("$argon2id$"));
    }
}
