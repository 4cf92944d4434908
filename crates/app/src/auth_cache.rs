//! A short-lived cache in front of an [`Authenticator`].
//!
//! A request then usually costs no database lookup to authenticate. Entries live at most
//! `ttl` (one second by default), so a token revoked, or a user locked, through another
//! process stops working there within that time; through this process it stops at once,
//! because the use cases call [`Authenticator::forget_user`]. An entry never outlives its
//! token's own expiry.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use userd_domain::Timestamp;
use userd_domain::values::UserId;

use userd_ports::error::StoreError;
use userd_ports::repository::{AuthenticatedToken, Authenticator};
use userd_ports::tokens::TokenHash;

pub const DEFAULT_TTL: Duration = Duration::from_secs(1);
const DEFAULT_CAPACITY: usize = 100_000;

struct Entry {
    answer: Option<AuthenticatedToken>,
    fetched: Instant,
}

#[derive(Default)]
struct State {
    entries: HashMap<TokenHash, Entry>,
    /// Which cached tokens belong to which user, to forget them together.
    by_user: HashMap<UserId, HashSet<TokenHash>>,
    /// Counts [`Authenticator::forget_user`] calls. A lookup that was in flight across
    /// one may carry the answer from before the change, so it is not remembered.
    forgets: u64,
}

impl State {
    fn remove(&mut self, hash: &TokenHash) {
        if let Some(Entry {
            answer: Some(found),
            ..
        }) = self.entries.remove(hash)
            && let Some(hashes) = self.by_user.get_mut(&found.caller.user_id)
        {
            hashes.remove(hash);
            if hashes.is_empty() {
                self.by_user.remove(&found.caller.user_id);
            }
        }
    }
}

pub struct CachedAuthenticator {
    inner: Arc<dyn Authenticator>,
    ttl: Duration,
    capacity: usize,
    state: Mutex<State>,
}

impl CachedAuthenticator {
    pub fn new(inner: Arc<dyn Authenticator>) -> Self {
        CachedAuthenticator::with_ttl(inner, DEFAULT_TTL)
    }

    pub fn with_ttl(inner: Arc<dyn Authenticator>, ttl: Duration) -> Self {
        CachedAuthenticator {
            inner,
            ttl,
            capacity: DEFAULT_CAPACITY,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn remember(&self, hash: TokenHash, answer: Option<AuthenticatedToken>, forgets_before: u64) {
        let mut state = self.state();
        if state.forgets != forgets_before {
            return;
        }
        if state.entries.len() >= self.capacity {
            let ttl = self.ttl;
            let stale: Vec<TokenHash> = state
                .entries
                .iter()
                .filter(|(_, entry)| entry.fetched.elapsed() >= ttl)
                .map(|(hash, _)| hash.clone())
                .collect();
            for hash in &stale {
                state.remove(hash);
            }
            if state.entries.len() >= self.capacity {
                // Everything is fresh: a flood of distinct tokens. Start over rather than
                // grow without bound.
                state.entries.clear();
                state.by_user.clear();
            }
        }
        if let Some(found) = &answer {
            state
                .by_user
                .entry(found.caller.user_id.clone())
                .or_default()
                .insert(hash.clone());
        }
        state.entries.insert(
            hash,
            Entry {
                answer,
                fetched: Instant::now(),
            },
        );
    }
}

#[async_trait]
impl Authenticator for CachedAuthenticator {
    async fn caller_for_token(
        &self,
        token: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<AuthenticatedToken>, StoreError> {
        let forgets_before = {
            let mut state = self.state();
            match state.entries.get(token) {
                Some(entry) if entry.fetched.elapsed() < self.ttl => {
                    return Ok(entry
                        .answer
                        .clone()
                        .filter(|found| found.expires_at.is_none_or(|at| now < at)));
                }
                Some(_) => state.remove(token),
                None => {}
            }
            state.forgets
        };
        let answer = self.inner.caller_for_token(token, now).await?;
        self.remember(token.clone(), answer.clone(), forgets_before);
        Ok(answer)
    }

    fn forget_user(&self, user: &UserId) {
        let mut state = self.state();
        state.forgets = state.forgets.wrapping_add(1);
        if let Some(hashes) = state.by_user.remove(user) {
            for hash in hashes {
                state.entries.remove(&hash);
            }
        }
        // A refused token is not tied to a user in the cache; the change may be the one
        // that makes it valid again (an unlock, an activation), so refusals go too.
        state.entries.retain(|_, entry| entry.answer.is_some());
        drop(state);
        self.inner.forget_user(user);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use userd_domain::authz::{Caller, RoleSet};
    use userd_domain::values::OrgId;

    use super::*;
    use crate::tokens::hash_token;
    use userd_ports::repository::MockAuthenticator;

    fn found(user: &str, expires_at: Option<i64>) -> AuthenticatedToken {
        AuthenticatedToken {
            caller: Caller {
                user_id: UserId::new(user).unwrap(),
                org_id: OrgId::new("o").unwrap(),
                roles: userd_domain::authz::Memberships {
                    instance: RoleSet::default(),
                    organizations: BTreeMap::new(),
                },
                ceiling: None,
            },
            expires_at: expires_at.map(Timestamp::from_unix_micros),
        }
    }

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_unix_micros(micros)
    }

    #[tokio::test]
    async fn a_fresh_answer_is_served_without_a_lookup() {
        let mut inner = MockAuthenticator::new();
        inner
            .expect_caller_for_token()
            .times(1)
            .returning(|_, _| Ok(Some(found("u", None))));
        let cache = CachedAuthenticator::with_ttl(Arc::new(inner), Duration::from_secs(60));
        let hash = hash_token("t");
        for _ in 0..3 {
            let answer = cache.caller_for_token(&hash, at(0)).await.unwrap();
            assert_eq!(
                answer.map(|a| a.caller.user_id),
                Some(UserId::new("u").unwrap())
            );
        }
    }

    #[tokio::test]
    async fn answers_expire_after_the_ttl() {
        let mut inner = MockAuthenticator::new();
        let mut calls = 0;
        inner
            .expect_caller_for_token()
            .times(2)
            .returning(move |_, _| {
                calls += 1;
                Ok((calls == 1).then(|| found("u", None)))
            });
        // A zero TTL makes every entry already too old: the expiry path, without a pause.
        let cache = CachedAuthenticator::with_ttl(Arc::new(inner), Duration::ZERO);
        let hash = hash_token("t");
        assert!(
            cache
                .caller_for_token(&hash, at(0))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            cache
                .caller_for_token(&hash, at(0))
                .await
                .unwrap()
                .is_none(),
            "revoked meanwhile"
        );
    }

    #[tokio::test]
    async fn a_cached_token_still_expires_on_time() {
        let mut inner = MockAuthenticator::new();
        inner
            .expect_caller_for_token()
            .times(1)
            .returning(|_, _| Ok(Some(found("u", Some(100)))));
        let cache = CachedAuthenticator::with_ttl(Arc::new(inner), Duration::from_secs(60));
        let hash = hash_token("t");
        assert!(
            cache
                .caller_for_token(&hash, at(99))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            cache
                .caller_for_token(&hash, at(100))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn forgetting_a_user_drops_their_tokens_and_all_refusals() {
        let mut inner = MockAuthenticator::new();
        inner
            .expect_caller_for_token()
            .times(6)
            .returning(|hash, _| {
                Ok(if *hash == hash_token("refused") {
                    None
                } else if *hash == hash_token("other") {
                    Some(found("v", None))
                } else {
                    Some(found("u", None))
                })
            });
        inner.expect_forget_user().times(1).return_const(());
        let cache = CachedAuthenticator::with_ttl(Arc::new(inner), Duration::from_secs(60));
        for token in ["a", "b", "other", "refused"] {
            cache
                .caller_for_token(&hash_token(token), at(0))
                .await
                .unwrap();
        }
        cache.forget_user(&UserId::new("u").unwrap());
        // "a" and "refused" are looked up again; "other" (user v) comes from the cache.
        for token in ["a", "other", "refused"] {
            cache
                .caller_for_token(&hash_token(token), at(0))
                .await
                .unwrap();
        }
    }

    /// Answers the first lookup only when the test says so, to hold it in flight; every
    /// later lookup finds the user locked (no answer).
    struct HeldLookup {
        started: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
        proceed: tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
        lookups: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl Authenticator for HeldLookup {
        async fn caller_for_token(
            &self,
            _: &TokenHash,
            _: Timestamp,
        ) -> Result<Option<AuthenticatedToken>, StoreError> {
            let first = self
                .lookups
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                == 0;
            if !first {
                return Ok(None);
            }
            let started = self.started.lock().unwrap().take();
            started.unwrap().send(()).unwrap();
            let proceed = self.proceed.lock().await.take();
            proceed.unwrap().await.unwrap();
            Ok(Some(found("u", None)))
        }

        fn forget_user(&self, _: &UserId) {}
    }

    #[tokio::test]
    async fn a_lookup_in_flight_across_a_lock_is_not_remembered() {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (proceed_tx, proceed_rx) = tokio::sync::oneshot::channel();
        let inner = Arc::new(HeldLookup {
            started: Mutex::new(Some(started_tx)),
            proceed: tokio::sync::Mutex::new(Some(proceed_rx)),
            lookups: std::sync::atomic::AtomicUsize::new(0),
        });
        let cache = Arc::new(CachedAuthenticator::with_ttl(
            inner.clone(),
            Duration::from_secs(60),
        ));
        let hash = hash_token("t");
        let in_flight = tokio::spawn({
            let cache = cache.clone();
            let hash = hash.clone();
            async move { cache.caller_for_token(&hash, at(0)).await }
        });
        // The lookup has read the user as it was before the lock; now the lock commits.
        started_rx.await.unwrap();
        cache.forget_user(&UserId::new("u").unwrap());
        proceed_tx.send(()).unwrap();
        let before_lock = in_flight.await.unwrap().unwrap();
        assert!(
            before_lock.is_some(),
            "the request that began first may pass"
        );
        assert!(
            cache
                .caller_for_token(&hash, at(0))
                .await
                .unwrap()
                .is_none(),
            "the next request sees the lock"
        );
        assert_eq!(inner.lookups.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
