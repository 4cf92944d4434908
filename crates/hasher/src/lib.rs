//! Password hashing for userd: new hashes in argon2id with OWASP's parameters (19 MiB,
//! 2 iterations, 1 lane), and verification of the hashes teams bring along (argon2id,
//! argon2i, bcrypt, pbkdf2-sha256, scrypt), all through the RustCrypto crates.
//!
//! Hashing costs tens of milliseconds of CPU and, for argon2, 19 MiB of memory. It never
//! runs on a request worker: it runs on a fixed set of threads of its own (one per core
//! by default), and calls beyond them queue as cheap futures, so a login storm neither
//! exhausts memory nor starves other requests.
//!
//! Threads of their own, not tokio's blocking pool: that pool hands each call to
//! whichever of up to 512 threads is idle, and the C allocator keeps a freed 19 MiB block
//! in the arena of the thread that used it. Measured: 200 logins in flight grew userd to
//! 6.8 GiB resident through the blocking pool; a few fixed threads reuse their own.

use std::sync::Arc;

use std::cell::RefCell;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use password_hash::{PasswordVerifier as _, SaltString};
use std::sync::Mutex;
use std::sync::mpsc;
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

type Job = Box<dyn FnOnce() + Send>;

/// The argon2id hasher and its threads. Clones share the threads, which end when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Argon2idHasher {
    jobs: mpsc::Sender<Job>,
    threads: usize,
    /// A hash of a random password, verified for users that do not exist.
    decoy: Arc<PasswordHash>,
}

impl std::fmt::Debug for Argon2idHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2idHasher")
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

fn argon2id() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None)
        .map_err(|e| HashError::Internal(e.to_string().into()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

thread_local! {
    /// The 19 MiB an argon2 computation at userd's own parameters works in, kept by each
    /// hashing thread. Allocating it afresh per call made the C allocator keep one freed
    /// block per call in fragmented arenas: 1.6 GiB resident under a login storm on two
    /// hashing threads, against 2 × 19 MiB with the block reused.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` on `count` argon2 memory blocks: the thread's own when they suffice, else
/// (an imported hash with more memory) a one-off allocation.
fn with_blocks<T>(count: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
    let own = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).map_or(0, |p| p.block_count());
    if count > own {
        let mut once = vec![Block::default(); count];
        return work(&mut once);
    }
    BLOCKS.with(|cell| {
        let mut blocks = cell.borrow_mut();
        if blocks.len() < own {
            blocks.resize(own, Block::default());
        }
        work(&mut blocks[..count])
    })
}

fn internal(error: impl std::fmt::Display) -> HashError {
    HashError::Internal(error.to_string().into())
}

fn hash_now(password: &[u8]) -> Result<PasswordHash, HashError> {
    let salt = SaltString::generate(&mut password_hash::rand_core::OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(internal)?;
    let argon2 = argon2id()?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_blocks(argon2.params().block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password, salt_bytes, &mut out, blocks)
    })
    .map_err(internal)?;
    let phc = password_hash::PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: argon2.params().try_into().map_err(internal)?,
        salt: Some(salt.as_salt()),
        hash: Some(password_hash::Output::new(&out).map_err(internal)?),
    };
    Ok(PasswordHash::new(phc.to_string()))
}

/// Whether `password` matches an argon2 (id or i) PHC hash, computed in reused memory.
fn argon2_matches(
    password: &[u8],
    parsed: &password_hash::PasswordHash<'_>,
) -> Result<bool, HashError> {
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|_| HashError::Corrupt)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|_| HashError::Corrupt)?
        .unwrap_or_default();
    let params = Params::try_from(parsed).map_err(|_| HashError::Corrupt)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(HashError::Corrupt);
    };
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|_| HashError::Corrupt)?;
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    with_blocks(argon2.params().block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password, salt_bytes, &mut out, blocks)
    })
    .map_err(|_| HashError::Corrupt)?;
    // Output's comparison takes the same time whatever the bytes.
    Ok(password_hash::Output::new(&out).map_err(|_| HashError::Corrupt)? == expected)
}

impl Argon2idHasher {
    /// At most `concurrency` hashes at once (at least one), on as many threads of its
    /// own. Computes the decoy hash, a few tens of milliseconds: call it at start-up.
    pub fn new(concurrency: usize) -> Result<Argon2idHasher, HashError> {
        let threads = concurrency.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("userd-hash-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        match next {
                            // A panic (a bug in a hashing crate) fails that one call: its
                            // answer channel drops; the thread serves the next.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            // Every hasher clone is gone.
                            Err(_) => break,
                        }
                    }
                })
                .map_err(|e| HashError::Internal(Box::new(e)))?;
        }
        let mut random = [0u8; 32];
        password_hash::rand_core::RngCore::fill_bytes(
            &mut password_hash::rand_core::OsRng,
            &mut random,
        );
        // Made on a hashing thread, whose argon2 memory is kept anyway, rather than
        // leaving 19 MiB with the caller's thread (the main thread, at start-up).
        let (made, decoy) = mpsc::channel();
        jobs.send(Box::new(move || {
            let _ = made.send(hash_now(&random));
        }))
        .map_err(|_| HashError::Internal("the hashing threads are gone".into()))?;
        let decoy = decoy
            .recv()
            .map_err(|_| HashError::Internal("a hashing thread panicked".into()))??;
        Ok(Argon2idHasher {
            jobs,
            threads,
            decoy: Arc::new(decoy),
        })
    }

    /// One per core: the work is CPU-bound, more at once only adds memory and latency.
    pub fn per_core() -> Result<Argon2idHasher, HashError> {
        Argon2idHasher::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Runs `work` on the hashing threads, first come first served. A caller that gives
    /// up (a client that disconnects) does not stop it; its answer is dropped.
    async fn bounded<T, F>(&self, work: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, HashError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = answer.send(work());
            }))
            .map_err(|_| HashError::Internal("the hashing threads are gone".into()))?;
        answered
            .await
            .map_err(|_| HashError::Internal("a hashing thread panicked".into()))?
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
        Family::Argon2 => {
            return Ok(Verification {
                matches: argon2_matches(password, &parsed)?,
                outdated: !is_current(&parsed),
            });
        }
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

/// A new argon2id hash, on the calling thread: for benchmarks measuring the raw cost.
pub fn hash_blocking(password: &str) -> Result<PasswordHash, HashError> {
    hash_now(password.as_bytes())
}

/// Verifies on the calling thread, exactly as [`Argon2idHasher`] does on its pool: for
/// benchmarks measuring what the machine does without userd around it.
pub fn verify_blocking(password: &str, hash: &PasswordHash) -> Result<Verification, HashError> {
    verify_now(password.as_bytes(), hash.encoded())
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
