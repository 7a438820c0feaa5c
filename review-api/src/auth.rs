//! Bearer-token authentication. Tokens are looked up in the users table and remembered in-process
//! for a minute, so authentication does not add a DB query to every cache hit (the seed's JWT auth
//! did not touch the DB either). A revoked token therefore works for up to a minute.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::app::AppState;
use crate::db::User;
use crate::error::ApiError;

const TOKEN_TTL: Duration = Duration::from_secs(60);
/// Bound on remembered tokens; the map is cleared when it fills (cheap, and rare).
const MAX_TOKENS: usize = 100_000;

#[derive(Default)]
pub struct TokenCache {
    map: Mutex<HashMap<String, (User, Instant)>>,
}

impl TokenCache {
    fn get(&self, token: &str) -> Option<User> {
        let map = self.map.lock().unwrap();
        map.get(token).filter(|(_, at)| at.elapsed() < TOKEN_TTL).map(|(u, _)| u.clone())
    }

    fn put(&self, token: &str, user: User) {
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
