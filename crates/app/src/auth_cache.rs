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
}

impl State {
    fn remove(&mut self, hash: &TokenHash) {
        if let Some(Entry {
            answer: Some(found),
            ..
        }) = self.entries.remove(hash)
        {
            if let Some(hashes) = self.by_user.get_mut(&found.caller.user_id) {
                hashes.remove(hash);
                if hashes.is_empty() {
                    self.by_user.remove(&found.caller.user_id);
                }
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

    fn remember(&self, hash: TokenHash, answer: Option<AuthenticatedToken>) {
        let mut state = self.state();
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
                *state = State::default();
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
        {
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
        }
        let answer = self.inner.caller_for_token(token, now).await?;
        self.remember(token.clone(), answer.clone());
        Ok(answer)
    }

    fn forget_user(&self, user: &UserId) {
        let mut state = self.state();
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
        let cache = CachedAuthenticator::with_ttl(Arc::new(inner), Duration::from_millis(30));
        let hash = hash_token("t");
        assert!(
            cache
                .caller_for_token(&hash, at(0))
                .await
                .unwrap()
                .is_some()
        );
        std::thread::sleep(Duration::from_millis(40));
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
}
