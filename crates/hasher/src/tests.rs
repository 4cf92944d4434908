#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// Made by other implementations (Python's `bcrypt`, `argon2-cffi` and `hashlib`), all of
/// the password "correct horse": proof that userd reads what other systems wrote.
const FOREIGN: [(&str, &str); 7] = [
    (
        "bcrypt $2b$",
        "$2b$04$q3cyJrRgYCpG4e/XMYlR6u1QAqEVCBmsSndtvsfpj6B/wpVonX2f6",
    ),
    (
        "bcrypt $2y$",
        "$2y$05$DbY7lWWs5Mh.uaWt6/5J9uoDr3diGgxvkwAxLQplkWUl1EqtUoMpy",
    ),
    (
        "bcrypt $2a$",
        "$2a$05$DbY7lWWs5Mh.uaWt6/5J9uoDr3diGgxvkwAxLQplkWUl1EqtUoMpy",
    ),
    (
        "argon2id",
        "$argon2id$v=19$m=1024,t=1,p=1$WlOrLjhNGO/botRWoM5XhA$GqoiZe9ZMKkcHbBKq0rmgwsv0mZCu+2W29n6g95EKp4",
    ),
    (
        "argon2i",
        "$argon2i$v=19$m=2048,t=2,p=1$/o7vJkZfuKJebec3P2z/NA$Xk//jZ3yRKIRJNwR3mU+1z9366G/EdMC+RlCDuKCDvs",
    ),
    (
        "pbkdf2-sha256",
        "$pbkdf2-sha256$i=1000,l=32$c2FsdHNhbHRzYWx0c2FsdA$BBs+1+PaslLtBPULUr8/lQicvVuHiEPMz0i8MjLCbzM",
    ),
    (
        "scrypt",
        "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$A9lBa6RTbfBovWqamVIqXKovIl4Vk6OZyVojLJmYmSI",
    ),
];

fn plain(text: &str) -> PlainPassword {
    PlainPassword::new(text.to_owned())
}

#[tokio::test]
async fn new_hashes_are_argon2id_with_owasp_parameters_and_verify() {
    let hasher = Argon2idHasher::new(2).unwrap();
    let hash = hasher.hash(&plain("correct horse")).await.unwrap();
    assert!(
        hash.encoded()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        hash.encoded()
    );
    let again = hasher.hash(&plain("correct horse")).await.unwrap();
    assert_ne!(hash, again, "each hash has its own salt");
    let right = hasher.verify(&plain("correct horse"), &hash).await.unwrap();
    assert_eq!(
        right,
        Verification {
            matches: true,
            outdated: false
        }
    );
    let wrong = hasher.verify(&plain("Correct horse"), &hash).await.unwrap();
    assert!(!wrong.matches);
}

#[tokio::test]
async fn hashes_made_elsewhere_import_verify_and_are_marked_outdated() {
    let hasher = Argon2idHasher::new(2).unwrap();
    for (name, encoded) in FOREIGN {
        let imported = hasher
            .import(encoded)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(imported.encoded(), encoded);
        let right = hasher
            .verify(&plain("correct horse"), &imported)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(right.matches, "{name}");
        assert!(right.outdated, "{name}: weaker than userd's own parameters");
        let wrong = hasher
            .verify(&plain("battery staple"), &imported)
            .await
            .unwrap();
        assert!(!wrong.matches, "{name}");
    }
}

#[test]
fn unsupported_or_too_costly_hashes_are_refused_at_import() {
    let hasher = Argon2idHasher::new(1).unwrap();
    for encoded in [
        "",
        "plaintext",
        "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",
        "$5$rounds=5000$salt$hash",
        "$argon2d$v=19$m=1024,t=1,p=1$WlOrLjhNGO/botRWoM5XhA$GqoiZe9ZMKkcHbBKq0rmgwsv0mZCu+2W29n6g95EKp4",
        "$argon2id$v=19$m=1048576,t=1,p=1$WlOrLjhNGO/botRWoM5XhA$GqoiZe9ZMKkcHbBKq0rmgwsv0mZCu+2W29n6g95EKp4",
        "$argon2id$v=19$m=1024,t=1,p=1$WlOrLjhNGO/botRWoM5XhA",
        "$2b$31$q3cyJrRgYCpG4e/XMYlR6u1QAqEVCBmsSndtvsfpj6B/wpVonX2f6",
        "$2b$04$short",
        "$pbkdf2-sha256$i=100000000,l=32$c2FsdHNhbHRzYWx0c2FsdA$BBs+1+PaslLtBPULUr8/lQicvVuHiEPMz0i8MjLCbzM",
        "$pbkdf2-sha512$i=1000,l=32$c2FsdHNhbHRzYWx0c2FsdA$BBs+1+PaslLtBPULUr8/lQicvVuHiEPMz0i8MjLCbzM",
        "$scrypt$ln=30,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$A9lBa6RTbfBovWqamVIqXKovIl4Vk6OZyVojLJmYmSI",
    ] {
        assert!(hasher.import(encoded).is_err(), "{encoded:?} was accepted");
    }
}

#[tokio::test]
async fn a_damaged_stored_hash_is_an_error_not_a_mismatch() {
    let hasher = Argon2idHasher::new(1).unwrap();
    let damaged = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$!!$??");
    assert!(matches!(
        hasher.verify(&plain("x"), &damaged).await,
        Err(HashError::Corrupt)
    ));
}

#[tokio::test]
async fn verifying_nothing_spends_a_verification() {
    let hasher = Argon2idHasher::new(1).unwrap();
    hasher.verify_nothing(&plain("anything")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_more_hashes_run_at_once_than_there_are_threads() {
    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    static MOST: AtomicUsize = AtomicUsize::new(0);
    let hasher = Argon2idHasher::new(2).unwrap();
    let calls = (0..12).map(|_| {
        let hasher = hasher.clone();
        tokio::spawn(async move {
            hasher
                .bounded(|| {
                    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
                    MOST.fetch_max(now, Ordering::SeqCst);
                    // Real work, so that overlapping calls would overlap.
                    let outcome = hash_now(b"correct horse");
                    RUNNING.fetch_sub(1, Ordering::SeqCst);
                    outcome
                })
                .await
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap().unwrap();
    }
    let most = MOST.load(Ordering::SeqCst);
    assert!(most <= 2, "{most} ran at once on 2 threads");
    assert_eq!(most, 2, "both threads were used");
}

#[tokio::test]
async fn a_panicking_job_is_an_error_and_the_threads_go_on() {
    let hasher = Argon2idHasher::new(1).unwrap();
    let failed = hasher
        .bounded(|| -> Result<(), HashError> { panic!("boom") })
        .await;
    assert!(matches!(failed, Err(HashError::Internal(_))));
    hasher.verify_nothing(&plain("still works")).await.unwrap();
}
