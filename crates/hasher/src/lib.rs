//! Password hashing for userd: new hashes in argon2id with OWASP's parameters (19 MiB,
//! 2 iterations, 1 lane), and verification of the hashes teams bring along (argon2id,
//! argon2i, bcrypt, pbkdf2-sha256, scrypt), all through the RustCrypto crates.
//!
//! Hashing costs tens of milliseconds of CPU and, for argon2, 19 MiB of memory. It never
//! runs on a request worker: each call waits for one of a fixed number of permits (the
//! cores, by default) and then runs on the blocking pool, so a login storm queues as
//! cheap futures instead of exhausting memory or starving other requests.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use tokio::sync::Semaphore;
use userd_domain::password::PasswordHash;
use userd_ports::passwords::{
    HashError, PasswordHasher, PlainPassword, UnsupportedHash, Verification,
};

/// OWASP's first argon2id configuration: m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

/// The most an imported hash may make one check cost. Beyond these a single login would
/// tie up a core (or, for memory, a lot of it) for seconds: refused at import.
const MAX_ARGON2_MEMORY_KIB: u32 = 256 * 1024;
const MAX_ARGON2_ITERATIONS: u32 = 16;
const MAX_ARGON2_LANES: u32 = 16;
const MAX_BCRYPT_COST: u32 = 16;
const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;
const MAX_SCRYPT_LOG_N: u8 = 20;
const MAX_SCRYPT_R: u32 = 16;
const MAX_SCRYPT_P: u32 = 16;

/// The argon2id hasher, with its bound on concurrent work.
#[derive(Clone)]
pub struct Argon2idHasher {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified for users that do not exist.
    decoy: Arc<PasswordHash>,
}

impl std::fmt::Debug for Argon2idHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2idHasher")
            .field("free_permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

fn argon2id() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None)
        .map_err(|e| HashError::Internal(e.to_string().into()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_now(password: &[u8]) -> Result<PasswordHash, HashError> {
    let salt = SaltString::generate(&mut password_hash::rand_core::OsRng);
    let hash = argon2id()?
        .hash_password(password, &salt)
        .map_err(|e| HashError::Internal(e.to_string().into()))?;
    Ok(PasswordHash::new(hash.to_string()))
}

impl Argon2idHasher {
    /// At most `concurrency` hashes at once (at least one). Computes the decoy hash, a
    /// few tens of milliseconds: call it at start-up.
    pub fn new(concurrency: usize) -> Result<Argon2idHasher, HashError> {
        let mut random = [0u8; 32];
        password_hash::rand_core::RngCore::fill_bytes(
            &mut password_hash::rand_core::OsRng,
            &mut random,
        );
        Ok(Argon2idHasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            decoy: Arc::new(hash_now(&random)?),
        })
    }

    /// One per core: the work is CPU-bound, more at once only adds memory and latency.
    pub fn per_core() -> Result<Argon2idHasher, HashError> {
        Argon2idHasher::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Runs `work` on the blocking pool once a permit is free. The permit travels into
    /// the closure: a caller that gives up (a client that disconnects) cannot free it
    /// while the work still runs.
    async fn bounded<T, F>(&self, work: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, HashError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| HashError::Internal(Box::new(e)))?;
        tokio::task::spawn_blocking(move || {
            let outcome = work();
            drop(permit);
            outcome
        })
        .await
        .map_err(|e| HashError::Internal(Box::new(e)))?
    }
}

/// The families of hashes userd verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Argon2,
    Bcrypt,
    Pbkdf2,
    Scrypt,
}

/// Which family a hash is, and whether its parameters are within the caps.
fn classify(encoded: &str) -> Result<Family, UnsupportedHash> {
    if let Some(rest) = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .find_map(|prefix| encoded.strip_prefix(prefix))
    {
        let cost: u32 = rest
            .get(..2)
            .and_then(|digits| digits.parse().ok())
            .ok_or(UnsupportedHash("a bcrypt hash needs a two-digit cost"))?;
        if cost > MAX_BCRYPT_COST {
            return Err(UnsupportedHash("the bcrypt cost is above 16"));
        }
        encoded
            .parse::<bcrypt::HashParts>()
            .map_err(|_| UnsupportedHash("the bcrypt hash is malformed"))?;
        return Ok(Family::Bcrypt);
    }
    let parsed = password_hash::PasswordHash::new(encoded)
        .map_err(|_| UnsupportedHash("not a PHC string nor a bcrypt hash"))?;
    let param = |name: &str| parsed.params.get_decimal(name);
    if parsed.hash.is_none() {
        return Err(UnsupportedHash("the hash has no output part"));
    }
    match parsed.algorithm.as_str() {
        "argon2id" | "argon2i" => {
            let params = Params::try_from(&parsed)
                .map_err(|_| UnsupportedHash("the argon2 parameters are malformed"))?;
            if params.m_cost() > MAX_ARGON2_MEMORY_KIB
                || params.t_cost() > MAX_ARGON2_ITERATIONS
                || params.p_cost() > MAX_ARGON2_LANES
            {
                return Err(UnsupportedHash(
                    "the argon2 parameters are above m=262144, t=16, p=16",
                ));
            }
            Ok(Family::Argon2)
        }
        "pbkdf2-sha256" => {
            let rounds = param("i").ok_or(UnsupportedHash("pbkdf2 needs i=<rounds>"))?;
            if rounds == 0 || rounds > MAX_PBKDF2_ROUNDS {
                return Err(UnsupportedHash("the pbkdf2 rounds are not in 1..=10000000"));
            }
            Ok(Family::Pbkdf2)
        }
        "scrypt" => {
            let log_n = param("ln").ok_or(UnsupportedHash("scrypt needs ln, r and p"))?;
            let r = param("r").ok_or(UnsupportedHash("scrypt needs ln, r and p"))?;
            let p = param("p").ok_or(UnsupportedHash("scrypt needs ln, r and p"))?;
            if log_n > u32::from(MAX_SCRYPT_LOG_N) || r > MAX_SCRYPT_R || p > MAX_SCRYPT_P {
                return Err(UnsupportedHash(
                    "the scrypt parameters are above ln=20, r=16, p=16",
                ));
            }
            Ok(Family::Scrypt)
        }
        _ => Err(UnsupportedHash(
            "supported: argon2id, argon2i, bcrypt ($2a$, $2b$, $2y$), pbkdf2-sha256, scrypt",
        )),
    }
}

/// Whether an argon2 hash is exactly what [`hash_now`] makes.
fn is_current(parsed: &password_hash::PasswordHash<'_>) -> bool {
    parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(parsed).is_ok_and(|p| {
            p.m_cost() == MEMORY_KIB && p.t_cost() == ITERATIONS && p.p_cost() == LANES
        })
}

fn verify_now(password: &[u8], encoded: &str) -> Result<Verification, HashError> {
    // A stored hash passed `classify` when it was set; failing now means damage.
    let family = classify(encoded).map_err(|_| HashError::Corrupt)?;
    if family == Family::Bcrypt {
        let matches = bcrypt::verify(password, encoded).map_err(|_| HashError::Corrupt)?;
        return Ok(Verification {
            matches,
            outdated: true,
        });
    }
    let parsed = password_hash::PasswordHash::new(encoded).map_err(|_| HashError::Corrupt)?;
    let outcome = match family {
        Family::Argon2 => Argon2::default().verify_password(password, &parsed),
        Family::Pbkdf2 => pbkdf2::Pbkdf2.verify_password(password, &parsed),
        Family::Scrypt => scrypt::Scrypt.verify_password(password, &parsed),
        Family::Bcrypt => return Err(HashError::Corrupt),
    };
    let matches = match outcome {
        Ok(()) => true,
        Err(password_hash::Error::Password) => false,
        Err(_) => return Err(HashError::Corrupt),
    };
    Ok(Verification {
        matches,
        outdated: !is_current(&parsed),
    })
}

#[async_trait]
impl PasswordHasher for Argon2idHasher {
    async fn hash(&self, password: &PlainPassword) -> Result<PasswordHash, HashError> {
        let password = password.clone();
        self.bounded(move || hash_now(password.expose().as_bytes()))
            .await
    }

    async fn verify(
        &self,
        password: &PlainPassword,
        hash: &PasswordHash,
    ) -> Result<Verification, HashError> {
        let (password, hash) = (password.clone(), hash.clone());
        self.bounded(move || verify_now(password.expose().as_bytes(), hash.encoded()))
            .await
    }

    async fn verify_nothing(&self, password: &PlainPassword) -> Result<(), HashError> {
        let (password, decoy) = (password.clone(), Arc::clone(&self.decoy));
        self.bounded(move || verify_now(password.expose().as_bytes(), decoy.encoded()).map(drop))
            .await
    }

    fn import(&self, encoded: &str) -> Result<PasswordHash, UnsupportedHash> {
        classify(encoded)?;
        Ok(PasswordHash::new(encoded))
    }
}

#[cfg(test)]
mod tests;
