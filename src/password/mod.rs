//! Passwords: the policy a new one must meet (SPEC §1), its Argon2id hash, and
//! the single-use set-password tokens (SPEC §4) — made from 32 random bytes,
//! stored only as their SHA-256. Decision 0022.

mod policy;

pub use policy::{check_policy, Rule};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use sha2::{Digest, Sha256};

/// Argon2id memory cost in KiB (19 MiB), time cost and lanes: OWASP's first
/// recommended set, argon2's defaults (decision 0022).
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Why a password could not be hashed or a token made.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The hash function refused (parameters or an RNG failure inside it).
    #[error("hashing the password failed: {0}")]
    Hash(String),
    /// The operating system gave no random bytes.
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

/// The Argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `password`,
/// with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let hash = hasher
        .hash_password(password.as_bytes())
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// A new set-password token: the text that goes into the link (64 hex digits
/// of 32 random bytes) and its [`token_hash`], the only part stored.
pub fn new_token() -> Result<(String, String), PasswordError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| PasswordError::Random(e.to_string()))?;
    let token = hex(&bytes);
    let hash = token_hash(&token);
    Ok((token, hash))
}

/// What the store keeps of a token: the hex SHA-256 of its text, so a copy of
/// the database cannot be used to set anyone's password.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.trim().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
