//! Bearer-token authentication. Tokens are looked up in the users table and remembered in-process
//! for a short while (`Settings::token_ttl`, 60 s by default), so authentication does not add a DB
//! query to every cache hit (the seed's JWT auth did not touch the DB either). Unknown tokens are
//! never remembered: they are looked up every time and answer 401. A revoked token (changed or
//! removed in the users table) is refused once its entry expires, so within `token_ttl`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::app::AppState;
use crate::db::User;
use crate::error::ApiError;

/// Bound on remembered tokens; the map is cleared when it fills (cheap, and rare).
const MAX_TOKENS: usize = 100_000;

pub struct TokenCache {
    ttl: Duration,
    map: Mutex<HashMap<String, (User, Instant)>>,
}

impl TokenCache {
    /// `ttl` zero: every request looks its token up in the DB.
    pub fn new(ttl: Duration) -> TokenCache {
        TokenCache {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, token: &str) -> Option<User> {
        let mut map = self.map.lock().unwrap();
        match map.get(token) {
            Some((user, at)) if at.elapsed() < self.ttl => Some(user.clone()),
            Some(_) => {
                // Expired: forget it, so a revoked token is looked up (and refused) from now on.
                map.remove(token);
                None
            }
            None => None,
        }
    }

    fn put(&self, token: &str, user: User) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.lock().unwrap();
        if map.len() >= MAX_TOKENS {
            map.clear();
        }
        map.insert(token.to_string(), (user, Instant::now()));
    }
}

/// The authenticated user of a request.
pub struct AuthUser(pub User);

impl FromRequestParts<Arc<AppState>> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        if let Some(user) = state.tokens.get(token) {
            return Ok(AuthUser(user));
        }
        let user = state.db.user_by_token(token).await?.ok_or(ApiError::Unauthorized)?;
        state.tokens.put(token, user.clone());
        Ok(AuthUser(user))
    }
}
