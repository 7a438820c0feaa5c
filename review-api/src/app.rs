//! The HTTP API: routes, handlers, and the shared state. Every cacheable GET goes through
//! [`Cache::fetch`] and answers with `X-Cache: HIT | MISS | BYPASS`; every write commits, then
//! invalidates through [`Cache::invalidate_user`] before it answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Map, Value};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{AuthUser, TokenCache};
use crate::cache::{self, Cache, CacheStatus, Scope};
use crate::db::{ContentChange, Db, DueReview};
use crate::error::ApiError;
use crate::metrics::Metrics;

pub const PAGE_SIZE: i64 = 20;

pub struct AppState {
    pub db: Db,
    pub cache: Arc<Cache>,
    pub metrics: Arc<Metrics>,
    pub tokens: TokenCache,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/review/today/", get(review_today))
        .route("/api/review/complete/", post(review_complete))
        .route("/api/analytics/stats/", get(analytics_stats))
        .route("/api/content/", get(content_list).post(content_create))
        .route(
            "/api/content/{id}/",
            get(content_detail).put(content_put).patch(content_patch).delete(content_delete),
        )
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn_with_state(state.clone(), record_latency))
        .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, Duration::from_secs(10)))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Per-endpoint latency histogram, labelled by route template (not the raw path: ids would explode
/// the label set).
async fn record_latency(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let label = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .latency
        .with_label_values(&[&label])
        .observe(started.elapsed().as_secs_f64());
    resp
}

pub fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

fn cached_json(body: Bytes, status: CacheStatus) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (
                header::HeaderName::from_static("x-cache"),
                HeaderValue::from_static(status.as_str()),
            ),
        ],
        body,
    )
        .into_response()
}

/// Category slugs are short lowercase words; anything else is a client error, not an empty list.
fn category_param(q: &HashMap<String, String>) -> Result<String, ApiError> {
    let slug = q.get("category_slug").map(String::as_str).unwrap_or("");
    if slug.len() > 50
        || !slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(ApiError::BadRequest(
            "category_slug must be lowercase letters, digits, '-' or '_' (at most 50)".into(),
        ));
    }
    Ok(slug.to_string())
}

fn id_param(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid id {raw:?}")))
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(v)| v).map_err(|e| ApiError::BadRequest(e.body_text()))
}

async fn review_today(
    State(st): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let slug = category_param(&q)?;
    let day = today();
    // The date is part of the key: the due list changes at midnight without any write.
    let key = Cache::key("review:today", user.id, &[&slug, &day.to_string()]);
    let (db, cache) = (st.db.clone(), st.cache.clone());
    let (body, status) = st
        .cache
        .fetch(&cache::REVIEW_TODAY, user.id, &key, move || async move {
            let results = if slug.is_empty() || !cache.enabled() {
                db.review_today(user.id, day, &slug).await?
            } else {
                due_in_category(&cache, db, user.id, day, &slug).await?
            };
            Ok(serde_json::json!({ "count": results.len(), "results": results }))
        })
        .await?;
    Ok(cached_json(body, status))
}

#[derive(Deserialize)]
struct DueList {
    results: Vec<DueReview>,
}

/// A category's due list is the user's full due list filtered, so it is cut from the cached full
/// list (loaded and cached first if absent) rather than queried: a user's lists for its ~5
/// categories then cost no query of their own. As fresh as a query: the full list is read under
/// the user's review generation at that moment, never older than the one the category key was
/// read under.
async fn due_in_category(cache: &Arc<Cache>, db: Db, user: i64, day: NaiveDate, slug: &str) -> Result<Vec<DueReview>, ApiError> {
    let key = Cache::key("review:today", user, &["", &day.to_string()]);
    let all = cache
        .fetch_base(&cache::REVIEW_TODAY, user, &key, move || async move {
            let results = db.review_today(user, day, "").await?;
            Ok(serde_json::json!({ "count": results.len(), "results": results }))
        })
        .await?;
    let all: DueList = serde_json::from_slice(&all).map_err(|e| ApiError::Internal(format!("cached due list: {e}")))?;
    Ok(all
        .results
        .into_iter()
        .filter(|r| r.content.category.as_ref().is_some_and(|c| c.slug == slug))
        .collect())
}

#[derive(Deserialize)]
struct CompleteBody {
    content_id: i64,
    remembered: bool,
}

async fn review_complete(
    State(st): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    body: Result<Json<CompleteBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let body = json_body(body)?;
    if body.content_id <= 0 {
        return Err(ApiError::BadRequest("content_id must be a positive integer".into()));
    }
    let done = st.db.complete_review(user.id, body.content_id, body.remembered, today()).await?;
    st.cache.invalidate_user(user.id, &[Scope::Review, Scope::Stats]).await;
    Ok(Json(done).into_response())
}

async fn analytics_stats(State(st): State<Arc<AppState>>, AuthUser(user): AuthUser) -> Result<Response, ApiError> {
    let day = today();
    let key = Cache::key("analytics:stats", user.id, &[&day.to_string()]);
    let db = st.db.clone();
    let (body, status) = st
        .cache
        .fetch(&cache::ANALYTICS_STATS, user.id, &key, move || async move {
            Ok(db.stats(user.id, day).await?)
        })
        .await?;
    Ok(cached_json(body, status))
}

async fn content_list(
    State(st): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let slug = category_param(&q)?;
    let page = match q.get("page") {
        None => 1,
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=100_000).contains(p))
            .ok_or_else(|| ApiError::BadRequest("page must be an integer from 1".into()))?,
    };
    let key = Cache::key("content:user", user.id, &[&format!("page={page}"), &format!("category={slug}")]);
    let db = st.db.clone();
    let (body, status) = st
        .cache
        .fetch(&cache::CONTENT_LIST, user.id, &key, move || async move {
            Ok(db.content_page(user.id, page, PAGE_SIZE, &slug).await?)
        })
        .await?;
    Ok(cached_json(body, status))
}

async fn content_detail(State(st): State<Arc<AppState>>, AuthUser(user): AuthUser, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = id_param(&id)?;
    let key = Cache::key("content:user", user.id, &[&format!("id={id}")]);
    let db = st.db.clone();
    let (body, status) = st
        .cache
        .fetch(&cache::CONTENT_DETAIL, user.id, &key, move || async move {
            db.content(user.id, id).await?.ok_or(ApiError::NotFound)
        })
        .await?;
    Ok(cached_json(body, status))
}

/// Reads title / body / category_slug from a JSON object. `full` (POST, PUT) requires a title;
/// otherwise (PATCH) absent fields stay as they are, and `"category_slug": null` clears it.
fn content_change(obj: &Map<String, Value>, full: bool) -> Result<ContentChange, ApiError> {
    let text = |name: &str, max: usize| -> Result<Option<String>, ApiError> {
        match obj.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
            Some(Value::String(_)) => Err(ApiError::BadRequest(format!("{name} is longer than {max} characters"))),
            Some(_) => Err(ApiError::BadRequest(format!("{name} must be a string"))),
        }
    };
    let title = text("title", 200)?;
    if title.as_deref().is_some_and(|t| t.trim().is_empty()) || (full && title.is_none()) {
        return Err(ApiError::BadRequest("title is required and must not be blank".into()));
    }
    let body = text("body", 20_000)?;
    let category_slug = match obj.get("category_slug") {
        None if full => Some(None),
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => return Err(ApiError::BadRequest("category_slug must be a string or null".into())),
    };
    Ok(ContentChange {
        title,
        body: if full { Some(body.unwrap_or_default()) } else { body },
        category_slug,
    })
}

/// Creating or deleting a content changes lists, the review list and the per-category stats.
const CONTENT_WRITE_SCOPES: [Scope; 3] = [Scope::Content, Scope::Review, Scope::Stats];
/// Editing title or body changes lists and the review list (which shows them), not the stats: those
/// count contents per category, so they are invalidated only when the write names a category.
const CONTENT_EDIT_SCOPES: [Scope; 2] = [Scope::Content, Scope::Review];

async fn content_create(
    State(st): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Result<Response, ApiError> {
    let change = content_change(&json_body(body)?, true)?;
    let slug = change.category_slug.clone().flatten();
    let id = st
        .db
        .create_content(
            user.id,
            change.title.as_deref().unwrap_or(""),
            change.body.as_deref().unwrap_or(""),
            slug.as_deref(),
            today(),
        )
        .await?;
    st.cache.invalidate_user(user.id, &CONTENT_WRITE_SCOPES).await;
    let created = st.db.content(user.id, id).await?.ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn content_write(
    st: Arc<AppState>,
    user: i64,
    id: String,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
    full: bool,
) -> Result<Response, ApiError> {
    let id = id_param(&id)?;
    let change = content_change(&json_body(body)?, full)?;
    let updated = st.db.update_content(user, id, &change).await?;
    let scopes: &[Scope] = if change.category_slug.is_some() {
        &CONTENT_WRITE_SCOPES
    } else {
        &CONTENT_EDIT_SCOPES
    };
    st.cache.invalidate_user(user, scopes).await;
    Ok(Json(updated).into_response())
}

async fn content_put(
    State(st): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Result<Response, ApiError> {
    content_write(st, user.id, id, body, true).await
}

async fn content_patch(
    State(st): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    body: Result<Json<Map<String, Value>>, JsonRejection>,
) -> Result<Response, ApiError> {
    content_write(st, user.id, id, body, false).await
}

async fn content_delete(State(st): State<Arc<AppState>>, AuthUser(user): AuthUser, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = id_param(&id)?;
    st.db.delete_content(user.id, id).await?;
    st.cache.invalidate_user(user.id, &CONTENT_WRITE_SCOPES).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    let db_ok = st.db.ping().await.is_ok();
    let status = if db_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    // The cache being down is not unhealthy: the API answers from the database.
    (status, Json(serde_json::json!({ "status": if db_ok { "ok" } else { "error" }, "db": if db_ok { "ok" } else { "error" }, "cache": st.cache.health() })))
        .into_response()
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], st.metrics.render()).into_response()
}
