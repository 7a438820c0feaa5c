//! review-api over real TCP against an in-process respite, on SQLite (and PostgreSQL when
//! REVIEW_API_TEST_POSTGRES_URL is set): every endpoint, auth, invalidation, the invalidation race,
//! the stampede, XFetch, and the cache going away and coming back.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Backend, Env, Options};
use redis::AsyncCommands;
use reqwest::Method;
use review_api::cache::{self, Cache, Scope};
use serde_json::{json, Value};

fn today() -> String {
    review_api::app::today().to_string()
}

/// The ids of the contents in a review/today or content list answer.
fn content_ids(reply: &Value) -> Vec<i64> {
    reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["content"]["id"].as_i64().or(r["id"].as_i64()).unwrap())
        .collect()
}

async fn auth_and_errors(backend: Backend) {
    let env = common::start(backend, Options::default()).await;
    let t = &env.tokens[0];

    for (token, what) in [(None, "no token"), (Some("not-a-token"), "unknown token")] {
        let r = env.request(Method::GET, "/api/review/today/", token, None).await;
        assert_eq!(r.status, 401, "{what}");
        assert!(r.json["error"].as_str().unwrap().contains("Bearer"), "{what}: {}", r.json);
        assert_eq!(r.headers["www-authenticate"], "Bearer");
    }
    let r = env
        .http
        .get(env.app.url("/api/analytics/stats/"))
        .header("authorization", format!("Basic {t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a non-Bearer scheme is refused");

    for path in [
        "/api/review/today/?category_slug=Bad%20Slug",
        "/api/content/?page=0",
        "/api/content/?page=abc",
        "/api/content/abc/",
    ] {
        let r = env.get(path, t).await;
        assert_eq!(r.status, 400, "{path}");
        assert!(r.json["error"].is_string(), "{path}: {}", r.json);
    }
    for (method, path, body) in [
        (
            Method::POST,
            "/api/review/complete/",
            json!({"content_id": "x", "remembered": true}),
        ),
        (Method::POST, "/api/review/complete/", json!({"remembered": true})),
        (Method::POST, "/api/review/complete/", json!({"content_id": -1, "remembered": true})),
        (Method::POST, "/api/content/", json!({"body": "no title"})),
        (Method::POST, "/api/content/", json!({"title": "   "})),
        (
            Method::POST,
            "/api/content/",
            json!({"title": "t", "category_slug": "no-such-category"}),
        ),
        (Method::POST, "/api/content/", json!({"title": 5})),
    ] {
        let r = env.send(method, path, t, body.clone()).await;
        assert_eq!(r.status, 400, "{path} {body}");
        assert!(r.json["error"].is_string(), "{path} {body}: {}", r.json);
    }
    let r = env
        .http
        .post(env.app.url("/api/review/complete/"))
        .bearer_auth(t)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());

    assert_eq!(env.get("/api/no/such/route/", t).await.status, 404);
    env.stop().await;
}
both_backends!(auth_and_errors);

/// Tokens are remembered in-process for `token_ttl`: a remembered token costs no DB query, an
/// unknown one is looked up (and refused) every time, and a revoked one is refused once its entry
/// expires.
async fn token_cache_and_revocation(backend: Backend) {
    let ttl = Duration::from_secs(2);
    let env = common::start(
        backend,
        Options {
            token_ttl: ttl,
            ..Options::default()
        },
    )
    .await;
    let t = env.tokens[0].clone();
    let lookups = env.db_queries("user_by_token").await;
    assert_eq!(env.get("/api/review/today/", &t).await.status, 200);
    let remembered_at = Instant::now();
    assert_eq!(env.get("/api/analytics/stats/", &t).await.status, 200);
    assert_eq!(env.get("/api/content/", &t).await.status, 200);
    if remembered_at.elapsed() < ttl {
        assert_eq!(
            env.db_queries("user_by_token").await,
            lookups + 1,
            "one lookup, then the remembered token"
        );
    }

    // Unknown tokens are not remembered: each is looked up and refused.
    let before = env.db_queries("user_by_token").await;
    for _ in 0..3 {
        assert_eq!(env.get("/api/review/today/", "no-such-token").await.status, 401);
    }
    assert_eq!(env.db_queries("user_by_token").await, before + 3);

    // Revoke (the token is replaced in the users table): refused once the entry has expired.
    let replacement = format!("{t}-rotated");
    sqlx::query("UPDATE users SET token = $1 WHERE token = $2")
        .bind(&replacement)
        .bind(&t)
        .execute(&env.app.state.db.pool)
        .await
        .unwrap();
    tokio::time::sleep(ttl.saturating_sub(remembered_at.elapsed()) + Duration::from_millis(100)).await;
    for path in ["/api/review/today/", "/api/analytics/stats/", "/api/content/"] {
        let r = env.get(path, &t).await;
        assert_eq!(r.status, 401, "revoked token on {path}: {}", r.json);
    }
    assert_eq!(env.get("/api/review/today/", &replacement).await.status, 200);
    env.stop().await;
}
both_backends!(token_cache_and_revocation);

/// Editing a content's title or body refreshes the lists and the review list (they show it) but
/// keeps the stats, which only count contents per category; changing the category refreshes them.
async fn content_edit_invalidates_stats_only_on_category_change(backend: Backend) {
    let env = common::start(backend, Options::default()).await;
    let t = &env.tokens[0];
    let today_list = env.get("/api/review/today/", t).await;
    let id = content_ids(&today_list.json)[0];
    let old_slug = today_list.json["results"][0]["content"]["category"]["slug"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(env.get("/api/content/", t).await.x_cache(), "MISS");
    let stats = env.get("/api/analytics/stats/", t).await;
    assert_eq!(stats.x_cache(), "MISS");
    assert_eq!(env.get("/api/analytics/stats/", t).await.x_cache(), "HIT");

    let r = env
        .send(Method::PATCH, &format!("/api/content/{id}/"), t, json!({"title": "Renamed"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let review = env.get("/api/review/today/", t).await;
    assert_eq!(review.x_cache(), "MISS", "titles show in the review list");
    assert_eq!(review.json["results"][0]["content"]["title"], "Renamed");
    let detail = env.get(&format!("/api/content/{id}/"), t).await;
    assert_eq!((detail.x_cache(), detail.json["title"].as_str()), ("MISS", Some("Renamed")));
    let s = env.get("/api/analytics/stats/", t).await;
    assert_eq!(s.x_cache(), "HIT", "a title does not change the stats");
    assert_eq!(s.json, stats.json);

    let new_slug = if old_slug == "music" { "math" } else { "music" };
    let r = env
        .send(Method::PATCH, &format!("/api/content/{id}/"), t, json!({"category_slug": new_slug}))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let s = env.get("/api/analytics/stats/", t).await;
    assert_eq!(s.x_cache(), "MISS", "a category change does");
    let count = |stats: &Value, slug: &str| {
        stats["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["slug"] == slug)
            .map(|c| c["contents"].as_i64().unwrap())
            .unwrap_or(0)
    };
    assert_eq!(count(&s.json, &old_slug), count(&stats.json, &old_slug) - 1);
    assert_eq!(count(&s.json, new_slug), count(&stats.json, new_slug) + 1);
    env.stop().await;
}
both_backends!(content_edit_invalidates_stats_only_on_category_change);

async fn review_today_and_stats(backend: Backend) {
    let env = common::start(backend, Options::default()).await;
    let t = &env.tokens[0];
    let first = env.get("/api/review/today/", t).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.x_cache(), "MISS");
    let results = first.json["results"].as_array().unwrap();
    assert_eq!(first.json["count"].as_u64().unwrap() as usize, results.len());
    assert!(!results.is_empty(), "the seed makes about half of 30 schedules due");
    let dates: Vec<&str> = results.iter().map(|r| r["next_review_date"].as_str().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "ordered by next_review_date: {dates:?}");
    assert!(dates.iter().all(|d| *d <= today().as_str()), "only due schedules: {dates:?}");
    let author = results[0]["content"]["author"].as_str().unwrap();
    assert!(
        results.iter().all(|r| r["content"]["author"] == author),
        "only the caller's schedules"
    );

    let second = env.get("/api/review/today/", t).await;
    assert_eq!(second.x_cache(), "HIT");
    assert_eq!(second.json, first.json, "a hit serves what the miss stored");

    // Category filter: a subset, all in that category, cached under its own key, and cut from
    // the cached full list rather than queried.
    let slug = results[0]["content"]["category"]["slug"].as_str().unwrap().to_string();
    let queries = env.db_queries("review_today").await;
    let filtered = env.get(&format!("/api/review/today/?category_slug={slug}"), t).await;
    assert_eq!(filtered.x_cache(), "MISS");
    assert_eq!(env.db_queries("review_today").await, queries, "cut from the cached full list");
    assert_eq!(
        env.get(&format!("/api/review/today/?category_slug={slug}"), t).await.x_cache(),
        "HIT"
    );
    let f = filtered.json["results"].as_array().unwrap();
    assert!(!f.is_empty() && f.len() <= results.len());
    assert!(f.iter().all(|r| r["content"]["category"]["slug"] == slug.as_str()));
    assert_eq!(
        f.len(),
        results.iter().filter(|r| r["content"]["category"]["slug"] == slug.as_str()).count()
    );

    // Another user, category first: one query, for the full list, which is then cached too.
    let queries = env.db_queries("review_today").await;
    let other_filtered = env.get(&format!("/api/review/today/?category_slug={slug}"), &env.tokens[1]).await;
    assert_eq!(other_filtered.x_cache(), "MISS");
    assert_eq!(env.db_queries("review_today").await, queries + 1);
    let other = env.get("/api/review/today/", &env.tokens[1]).await;
    assert_eq!(other.x_cache(), "HIT", "the full list was loaded for the category's");
    assert_eq!(
        content_ids(&other_filtered.json),
        other.json["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["content"]["category"]["slug"] == slug.as_str())
            .map(|r| r["content"]["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    );
    // Another user sees only their own list.
    assert!(other.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["content"]["author"] != author));

    let stats = env.get("/api/analytics/stats/", t).await;
    assert_eq!(stats.status, 200);
    assert_eq!(stats.x_cache(), "MISS");
    let s = &stats.json;
    assert_eq!(s["total_contents"], 30, "60 contents over 2 users");
    assert_eq!(s["due_today"].as_u64().unwrap() as usize, results.len());
    let per_category: u64 = s["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contents"].as_u64().unwrap())
        .sum();
    assert_eq!(per_category, 30);
    let due_per_category: u64 = s["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["due_today"].as_u64().unwrap())
        .sum();
    assert_eq!(due_per_category as usize, results.len());
    assert!((0.0..=100.0).contains(&s["success_rate"].as_f64().unwrap()));
    assert!(s["done_this_week"].as_i64().unwrap() >= s["done_today"].as_i64().unwrap());
    assert_eq!(env.get("/api/analytics/stats/", t).await.x_cache(), "HIT");

    // Completing a review: schedule advances, history written, the user's lists and stats recomputed.
    let done_id = content_ids(&first.json)[0];
    let r = env
        .send(
            Method::POST,
            "/api/review/complete/",
            t,
            json!({"content_id": done_id, "remembered": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["interval_index"], 0, "forgetting resets to the first interval");
    assert!(r.json["next_review_date"].as_str().unwrap() > today().as_str());
    let after = env.get("/api/review/today/", t).await;
    assert_eq!(after.x_cache(), "MISS", "invalidated by the write");
    assert!(!content_ids(&after.json).contains(&done_id));
    assert_eq!(after.json["count"].as_u64().unwrap() as usize, results.len() - 1);
    let filtered_after = env.get(&format!("/api/review/today/?category_slug={slug}"), t).await;
    assert_eq!(filtered_after.x_cache(), "MISS", "every category's key of the user is invalidated");
    assert!(!content_ids(&filtered_after.json).contains(&done_id), "cut from the new full list");
    assert_eq!(filtered_after.json["count"].as_u64().unwrap() as usize, f.len() - 1);
    let stats_after = env.get("/api/analytics/stats/", t).await;
    assert_eq!(stats_after.x_cache(), "MISS");
    assert_eq!(
        stats_after.json["done_today"].as_i64().unwrap(),
        s["done_today"].as_i64().unwrap() + 1
    );
    assert_eq!(
        stats_after.json["total_reviews"].as_i64().unwrap(),
        s["total_reviews"].as_i64().unwrap() + 1
    );
    assert!(stats_after.json["streak_days"].as_i64().unwrap() >= 1, "reviewed today");

    // The other user's cache was not touched.
    assert_eq!(env.get("/api/review/today/", &env.tokens[1]).await.x_cache(), "HIT");

    // Remembered climbs the intervals 1, 3, 7, ...: complete the same content again.
    let r = env
        .send(
            Method::POST,
            "/api/review/complete/",
            t,
            json!({"content_id": done_id, "remembered": true}),
        )
        .await;
    assert_eq!(r.json["interval_index"], 1);
    let three_days = (review_api::app::today() + chrono::Days::new(3)).to_string();
    assert_eq!(r.json["next_review_date"], three_days.as_str());

    // Another user's content, or a missing one: 404.
    let foreign = content_ids(&env.get("/api/review/today/", &env.tokens[1]).await.json)[0];
    let r = env
        .send(
            Method::POST,
            "/api/review/complete/",
            t,
            json!({"content_id": foreign, "remembered": true}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = env
        .send(
            Method::POST,
            "/api/review/complete/",
            t,
            json!({"content_id": 999_999_999, "remembered": true}),
        )
        .await;
    assert_eq!(r.status, 404);
    env.stop().await;
}
both_backends!(review_today_and_stats);

async fn content_crud_and_pattern_invalidation(backend: Backend) {
    let env = common::start(backend, Options::default()).await;
    let t = &env.tokens[0];
    let uid = env.user_id(t).await;

    let p1 = env.get("/api/content/", t).await;
    assert_eq!((p1.status, p1.x_cache()), (200, "MISS"));
    assert_eq!(p1.json["count"], 30);
    assert_eq!(p1.json["results"].as_array().unwrap().len(), 20);
    let p2 = env.get("/api/content/?page=2", t).await;
    assert_eq!(p2.json["results"].as_array().unwrap().len(), 10);
    let ids: Vec<i64> = [content_ids(&p1.json), content_ids(&p2.json)].concat();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first, no overlap");
    assert_eq!(env.get("/api/content/", t).await.x_cache(), "HIT");
    assert_eq!(env.get("/api/content/?page=2", t).await.x_cache(), "HIT");
    let math = env.get("/api/content/?category_slug=math", t).await;
    assert!(math.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["category"]["slug"] == "math"));

    let id = ids[3];
    let detail = env.get(&format!("/api/content/{id}/"), t).await;
    assert_eq!((detail.status, detail.x_cache()), (200, "MISS"));
    assert_eq!(detail.json["id"], id);
    assert_eq!(env.get(&format!("/api/content/{id}/"), t).await.x_cache(), "HIT");
    assert_eq!(
        env.get(&format!("/api/content/{id}/"), &env.tokens[1]).await.status,
        404,
        "another user's content"
    );
    assert_eq!(env.get("/api/content/999999999/", t).await.status, 404);

    // The user's list keys are in respite under the seed's pattern (user id as a hash tag).
    let mut redis = env.redis().await;
    let pattern = format!("api:content:user:{{{uid}}}:*");
    let keys: Vec<String> = redis.keys(&pattern).await.unwrap();
    assert!(keys.len() >= 4, "{keys:?}");

    // Create: 201, first review tomorrow, lists recomputed, old keys gone (SCAN MATCH + UNLINK).
    let created = env
        .send(
            Method::POST,
            "/api/content/",
            t,
            json!({"title": "Borrow checker", "body": "one &mut or many &", "category_slug": "programming"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let new_id = created.json["id"].as_i64().unwrap();
    assert_eq!(created.json["category"]["slug"], "programming");
    // The UNLINK runs in the background after the write answered (the generation already hides
    // the old values): wait for it.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let keys: Vec<String> = redis.keys(&pattern).await.unwrap();
        if keys.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "pattern invalidation left {keys:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let p1 = env.get("/api/content/", t).await;
    assert_eq!(p1.x_cache(), "MISS");
    assert_eq!(p1.json["count"], 31);
    assert_eq!(content_ids(&p1.json)[0], new_id);

    // PUT replaces (category cleared when absent), PATCH changes only what it names.
    let put = env
        .send(
            Method::PUT,
            &format!("/api/content/{new_id}/"),
            t,
            json!({"title": "Ownership", "body": "moves"}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.json);
    assert_eq!(
        (put.json["title"].as_str(), put.json["category"].is_null()),
        (Some("Ownership"), true)
    );
    let r = env.get("/api/content/", t).await;
    assert_eq!((r.x_cache(), r.json["results"][0]["title"].as_str()), ("MISS", Some("Ownership")));
    let patch = env
        .send(
            Method::PATCH,
            &format!("/api/content/{new_id}/"),
            t,
            json!({"category_slug": "math"}),
        )
        .await;
    assert_eq!(patch.status, 200);
    assert_eq!(
        (
            patch.json["title"].as_str(),
            patch.json["body"].as_str(),
            patch.json["category"]["slug"].as_str()
        ),
        (Some("Ownership"), Some("moves"), Some("math"))
    );
    let d = env.get(&format!("/api/content/{new_id}/"), t).await;
    assert_eq!(d.json["category"]["slug"], "math");

    // Writes to another user's content: 404, nothing changed.
    for method in [Method::PUT, Method::PATCH] {
        let r = env
            .send(
                method,
                &format!("/api/content/{new_id}/"),
                &env.tokens[1],
                json!({"title": "mine now"}),
            )
            .await;
        assert_eq!(r.status, 404);
    }
    assert_eq!(
        env.request(Method::DELETE, &format!("/api/content/{new_id}/"), Some(&env.tokens[1]), None)
            .await
            .status,
        404
    );
    assert_eq!(env.get(&format!("/api/content/{new_id}/"), t).await.json["title"], "Ownership");

    // A content write also refreshes the review list (titles) and stats (per-category counts).
    let stats = env.get("/api/analytics/stats/", t).await;
    assert_eq!(stats.json["total_contents"], 31);
    let del = env.request(Method::DELETE, &format!("/api/content/{new_id}/"), Some(t), None).await;
    assert_eq!(del.status, 204);
    assert_eq!(env.get(&format!("/api/content/{new_id}/"), t).await.status, 404);
    let stats = env.get("/api/analytics/stats/", t).await;
    assert_eq!((stats.x_cache(), stats.json["total_contents"].as_i64()), ("MISS", Some(30)));
    assert_eq!(env.get("/api/content/", t).await.json["count"], 30);
    env.stop().await;
}
both_backends!(content_crud_and_pattern_invalidation);

/// Every SQL statement the API has sent, over all labels of db_queries_total.
fn all_db_queries(metrics_text: &str) -> u64 {
    metrics_text
        .lines()
        .filter(|l| l.starts_with("db_queries_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// The writes' statement counts (a completion is 2, a content edit 1) and the cases the folded
/// statements must still tell apart: the history row records the interval before the review,
/// another user's content is 404 even with an unknown category, an unknown category on one's own
/// content is 400 and changes nothing, and a 404 completion writes no history.
async fn writes_statements_and_edge_cases(backend: Backend) {
    let env = common::start(backend, Options::default()).await;
    let t = &env.tokens[0];
    let uid = env.user_id(t).await;
    let pool = env.app.state.db.pool.clone();
    let history = |content: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query("SELECT interval_index FROM review_history WHERE user_id = $1 AND content_id = $2 ORDER BY id")
                .bind(uid)
                .bind(content)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| sqlx::Row::try_get::<i64, _>(r, "interval_index").unwrap())
                .collect::<Vec<i64>>()
        }
    };

    // The token is remembered after the first request, so later deltas are the writes' own.
    let due = env.get("/api/review/today/", t).await;
    let first = &due.json["results"][0];
    let cid = first["content"]["id"].as_i64().unwrap();
    let mut interval = first["interval_index"].as_i64().unwrap();
    let mut rows = history(cid).await;
    for remembered in [true, true, false, true, true, true, true, true] {
        let before = all_db_queries(&env.metrics_text().await);
        let r = env
            .send(
                Method::POST,
                "/api/review/complete/",
                t,
                json!({"content_id": cid, "remembered": remembered}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
        assert_eq!(
            all_db_queries(&env.metrics_text().await) - before,
            2,
            "a completion is 2 statements"
        );
        let next = if remembered { (interval + 1).min(4) } else { 0 };
        assert_eq!(r.json["interval_index"], next);
        let days = [1, 3, 7, 14, 30][next as usize];
        let date = (review_api::app::today() + chrono::Days::new(days)).to_string();
        assert_eq!(r.json["next_review_date"], date.as_str());
        assert_eq!(
            (r.json["content_id"].as_i64(), r.json["is_active"].as_bool()),
            (Some(cid), Some(true))
        );
        rows.push(interval);
        assert_eq!(history(cid).await, rows, "history records the interval the review was done at");
        interval = next;
    }
    assert_eq!(interval, 4, "ran up to the last interval and stayed there");

    // A completion of another user's content: 404, no history row written.
    let foreign = content_ids(&env.get("/api/review/today/", &env.tokens[1]).await.json)[0];
    let r = env
        .send(
            Method::POST,
            "/api/review/complete/",
            t,
            json!({"content_id": foreign, "remembered": true}),
        )
        .await;
    assert_eq!(r.status, 404);
    let n: i64 = sqlx::Row::try_get(
        &sqlx::query("SELECT COUNT(*) AS n FROM review_history WHERE user_id = $1 AND content_id = $2")
            .bind(uid)
            .bind(foreign)
            .fetch_one(&pool)
            .await
            .unwrap(),
        "n",
    )
    .unwrap();
    assert_eq!(n, 0);

    // A title edit: one statement, the response is the row as written.
    let page = env.get("/api/content/", t).await;
    let c = page.json["results"][0].clone();
    let id = c["id"].as_i64().unwrap();
    let before = all_db_queries(&env.metrics_text().await);
    let r = env
        .send(Method::PATCH, &format!("/api/content/{id}/"), t, json!({"title": "Edited"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(all_db_queries(&env.metrics_text().await) - before, 1, "an edit is 1 statement");
    assert_eq!(r.json["title"], "Edited");
    for field in ["id", "body", "category", "author", "created_at"] {
        assert_eq!(r.json[field], c[field], "{field} unchanged");
    }
    assert!(r.json["updated_at"].as_i64().unwrap() >= c["updated_at"].as_i64().unwrap());
    let d = env.get(&format!("/api/content/{id}/"), t).await;
    assert_eq!(
        (d.x_cache(), &d.json),
        ("MISS", &r.json),
        "the next read shows what the write answered"
    );

    // Unknown category on one's own content: 400, nothing written (not even the title).
    let r = env
        .send(
            Method::PATCH,
            &format!("/api/content/{id}/"),
            t,
            json!({"title": "Not written", "category_slug": "no-such-category"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.json);
    assert!(r.json["error"].is_string());
    let d = env.get(&format!("/api/content/{id}/"), t).await;
    assert_eq!(d.json["title"], "Edited");
    assert_eq!(d.json["category"], c["category"]);
    // On another user's content, the same request is 404 (ownership is checked first).
    for method in [Method::PUT, Method::PATCH] {
        let r = env
            .send(
                method,
                &format!("/api/content/{id}/"),
                &env.tokens[1],
                json!({"title": "x", "category_slug": "no-such-category"}),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.json);
        assert!(r.json["error"].is_string());
    }
    // Clearing and setting the category.
    let r = env
        .send(Method::PATCH, &format!("/api/content/{id}/"), t, json!({"category_slug": null}))
        .await;
    assert_eq!(
        (r.status, r.json["category"].is_null(), r.json["title"].as_str()),
        (200, true, Some("Edited"))
    );
    let r = env
        .send(Method::PATCH, &format!("/api/content/{id}/"), t, json!({"category_slug": "math"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["category"]["slug"], "math");
    assert!(r.json["category"]["name"].is_string());
    env.stop().await;
}
both_backends!(writes_statements_and_edge_cases);

async fn health_and_metrics(backend: Backend) {
    let env = common::start(backend, Options::default()).await;
    let t = &env.tokens[0];
    let h = env.request(Method::GET, "/health", None, None).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.json, json!({"status": "ok", "db": "ok", "cache": "ok"}));
    env.get("/api/review/today/", t).await;
    env.get("/api/review/today/", t).await;
    let text = env.metrics_text().await;
    assert_eq!(
        common::metric(&text, r#"cache_requests_total{endpoint="review_today",result="miss"}"#),
        1,
        "{text}"
    );
    assert_eq!(
        common::metric(&text, r#"cache_requests_total{endpoint="review_today",result="hit"}"#),
        1
    );
    assert_eq!(common::metric(&text, r#"db_queries_total{query="review_today"}"#), 1);
    assert!(
        text.contains(r#"http_request_duration_seconds_bucket{endpoint="/api/review/today/""#),
        "{text}"
    );
    // Every cache call is timed: the miss's read, its store, and the hit's read at least.
    assert!(
        common::metric(&text, r#"cache_call_duration_seconds_count{op="get"}"#) >= 2,
        "{text}"
    );
    assert!(
        common::metric(&text, r#"cache_call_duration_seconds_count{op="set"}"#) >= 1,
        "{text}"
    );
    env.stop().await;
}
both_backends!(health_and_metrics);

/// The invalidation race: a reader loads the old row, the writer commits and invalidates, then the
/// reader stores the old value. Loads are slowed by 15 ms between query and store so the window is
/// wide open; every read that starts after a write returned must still see that write.
async fn no_stale_read_after_write(backend: Backend) {
    let env = Arc::new(
        common::start(
            backend,
            Options {
                load_delay: Duration::from_millis(15),
                ..Options::default()
            },
        )
        .await,
    );
    let t = env.tokens[0].clone();
    // A due content with a category: the review lists show its title too.
    let due = env.get("/api/review/today/", &t).await.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["content"]["category"].is_object())
        .cloned()
        .expect("a due content with a category");
    let id = due["content"]["id"].as_i64().unwrap();
    let slug = due["content"]["category"]["slug"].as_str().unwrap().to_string();
    let mut page = 1;
    while !content_ids(&env.get(&format!("/api/content/?page={page}"), &t).await.json).contains(&id) {
        page += 1;
        assert!(page < 10, "content {id} in none of the user's list pages");
    }
    let patched = env
        .send(Method::PATCH, &format!("/api/content/{id}/"), &t, json!({"title": "v0"}))
        .await;
    assert_eq!(patched.status, 200);
    let committed = Arc::new(AtomicI64::new(0));
    let deadline = Instant::now() + Duration::from_secs(30);

    let mut readers = Vec::new();
    for r in 0..6 {
        let (env, t, committed, slug) = (env.clone(), t.clone(), committed.clone(), slug.clone());
        readers.push(tokio::spawn(async move {
            let (mut reads, mut misses) = (0, 0);
            while committed.load(Ordering::SeqCst) < 40 && Instant::now() < deadline {
                let floor = committed.load(Ordering::SeqCst);
                // The detail, the content list and the category's due list (cut from the full
                // one): all cached, all invalidated by the write.
                let (title, status) = if r % 3 == 0 {
                    let reply = env.get(&format!("/api/content/{id}/"), &t).await;
                    (reply.json["title"].as_str().unwrap().to_string(), reply.x_cache().to_string())
                } else {
                    let path = if r % 3 == 1 {
                        format!("/api/content/?page={page}")
                    } else {
                        format!("/api/review/today/?category_slug={slug}")
                    };
                    let reply = env.get(&path, &t).await;
                    let item = reply.json["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| if r["content"].is_object() { &r["content"] } else { r })
                        .find(|c| c["id"] == id)
                        .cloned()
                        .unwrap();
                    (item["title"].as_str().unwrap().to_string(), reply.x_cache().to_string())
                };
                // The seed's title (before v0) counts as older than every write.
                let seen: i64 = title.strip_prefix('v').and_then(|n| n.parse().ok()).unwrap_or(-1);
                assert!(
                    seen >= floor,
                    "read started after write v{floor} returned but saw v{seen} ({status})"
                );
                reads += 1;
                misses += (status == "MISS") as u32;
            }
            (reads, misses)
        }));
    }
    for v in 1..=40 {
        let r = env
            .send(Method::PATCH, &format!("/api/content/{id}/"), &t, json!({"title": format!("v{v}")}))
            .await;
        assert_eq!(r.status, 200);
        committed.store(v, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..20))).await;
    }
    let (mut reads, mut misses) = (0, 0);
    for r in readers {
        let (n, m) = r.await.unwrap();
        reads += n;
        misses += m;
    }
    assert!(
        reads >= 40 && misses >= 10,
        "the test must interleave reads and writes: {reads} reads, {misses} misses"
    );
    // And after the dust settles, the cache holds the last version.
    assert_eq!(env.get(&format!("/api/content/{id}/"), &t).await.json["title"], "v40");
    Arc::into_inner(env).unwrap().stop().await;
}
both_backends!(no_stale_read_after_write);

/// 100 concurrent requests on a cold key, then on a just-expired one: one DB query each time.
/// (The cache deadline is raised: 100 connections at once on a loaded test machine can take longer
/// than 40 ms, and this test is about a healthy cache.)
async fn stampede_single_flight(backend: Backend) {
    let opts = Options {
        load_delay: Duration::from_millis(100),
        cache_timeout: Duration::from_millis(500),
        ..Options::default()
    };
    let env = Arc::new(common::start(backend, opts).await);
    let t = env.tokens[0].clone();
    env.get("/api/content/?page=2", &t).await; // authenticates the token (its own query)
    let burst = |env: Arc<Env>, t: String| async move {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (env, t) = (env.clone(), t.clone());
                tokio::spawn(async move { env.get("/api/review/today/", &t).await })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            let r = task.await.unwrap();
            assert_eq!(r.status, 200);
            statuses.push(r.x_cache().to_string());
        }
        statuses
    };
    let before = env.db_queries("review_today").await;
    let statuses = burst(env.clone(), t.clone()).await;
    assert_eq!(env.db_queries("review_today").await - before, 1, "cold key: {statuses:?}");
    assert!(
        statuses.iter().filter(|s| *s == "MISS").count() > 1,
        "the burst overlapped the load: {statuses:?}"
    );

    // Expiry: respite drops the key (as its TTL would); the next burst loads once more.
    let uid = env.user_id(&t).await;
    let mut redis = env.redis().await;
    let key = env.app.state.cache.full(&Cache::key("review:today", uid, &["", &today()]));
    assert_eq!(redis.del::<_, i64>(&key).await.unwrap(), 1, "{key} was cached");
    let before = env.db_queries("review_today").await;
    burst(env.clone(), t.clone()).await;
    assert_eq!(env.db_queries("review_today").await - before, 1, "just-expired key");
    let coalesced = common::metric(&env.metrics_text().await, r#"cache_coalesced_total{endpoint="review_today"}"#);
    assert!(coalesced >= 100, "waiters were served by the one load: {coalesced}");
    Arc::into_inner(env).unwrap().stop().await;
}
both_backends!(stampede_single_flight);

/// XFetch: a hot value close to its expiry is recomputed early, in the background, while the hit is
/// still served.
async fn xfetch_refreshes_hot_key_early(backend: Backend) {
    let env = common::start(backend, Options::default()).await;
    let t = &env.tokens[0];
    let uid = env.user_id(t).await;
    assert_eq!(env.get("/api/review/today/", t).await.x_cache(), "MISS");
    let cache = &env.app.state.cache;
    let key = cache.full(&Cache::key("review:today", uid, &["", &today()]));
    let mut redis = env.redis().await;
    let gen: String = redis.get(cache.gen_key(uid, Scope::Review)).await.unwrap();
    // Rewrite the stored value as if it took 10 s to compute and expires in 100 ms: XFetch must
    // refresh it (probability 1 - e^(-100)).
    let json = br#"{"count":0,"results":[],"marker":"old"}"#;
    let soon = cache::now_ms() + 100;
    let _: () = redis.set_ex(&key, cache::envelope(&gen, 10_000, soon, json), 60).await.unwrap();
    let before = env.db_queries("review_today").await;
    let r = env.get("/api/review/today/", t).await;
    assert_eq!(r.x_cache(), "HIT");
    assert_eq!(r.json["marker"], "old", "the hit is served while the refresh runs");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = env.get("/api/review/today/", t).await;
        if r.json.get("marker").is_none() {
            assert_eq!(r.x_cache(), "HIT", "the refreshed value was stored");
            break;
        }
        assert!(Instant::now() < deadline, "no early refresh within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(env.db_queries("review_today").await - before, 1);
    let ttl: i64 = redis.pttl(&key).await.unwrap();
    assert!(ttl > 3_000_000, "refreshed with the full 1 h TTL, got {ttl} ms");
    assert!(common::metric(&env.metrics_text().await, r#"cache_early_refresh_total{endpoint="review_today"}"#) >= 1);
    env.stop().await;
}
both_backends!(xfetch_refreshes_hot_key_early);

/// The cache server stops mid-run: requests answer from the DB with BYPASS within tens of ms, writes
/// still work, and hits come back by themselves once a new respite listens on the same port.
async fn cache_outage_and_recovery(backend: Backend) {
    let mut env = common::start(backend, Options::default()).await;
    let t = env.tokens[0].clone();
    env.get("/api/review/today/", &t).await;
    assert_eq!(env.get("/api/review/today/", &t).await.x_cache(), "HIT");
    let expected = env.get("/api/analytics/stats/", &t).await.json;

    env.respite.take().unwrap().stop().await;
    let mut slowest = Duration::ZERO;
    for i in 0..30 {
        let path = ["/api/review/today/", "/api/analytics/stats/", "/api/content/"][i % 3];
        let r = env.get(path, &t).await;
        assert_eq!((r.status, r.x_cache()), (200, "BYPASS"), "{path} during the outage");
        slowest = slowest.max(r.elapsed);
    }
    assert!(
        slowest < Duration::from_millis(300),
        "slowest request during the outage took {slowest:?}"
    );
    assert_eq!(env.get("/api/analytics/stats/", &t).await.json, expected, "the DB answers the same");
    let h = env.request(Method::GET, "/health", None, None).await;
    assert_eq!((h.status, h.json["cache"].as_str()), (200, Some("down")));
    let id = content_ids(&env.get("/api/review/today/", &t).await.json)[0];
    let r = env
        .send(
            Method::POST,
            "/api/review/complete/",
            &t,
            json!({"content_id": id, "remembered": true}),
        )
        .await;
    assert_eq!(r.status, 200, "writes work without the cache");
    assert!(common::metric(&env.metrics_text().await, r#"cache_errors_total{op="get"}"#) >= 1);

    env.respite = Some(common::restart_respite_on(env.respite_addr).await);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = env.get("/api/review/today/", &t).await;
        if r.x_cache() == "HIT" {
            assert!(!content_ids(&r.json).contains(&id), "the completed review is gone");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no cache hit 10 s after respite came back (last: {})",
            r.x_cache()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.stop().await;
}
both_backends!(cache_outage_and_recovery);

/// The link to the cache is cut while the cache keeps its data, and a write happens meanwhile: when
/// the link returns, the write's failed invalidation is replayed before anything cached is served.
/// Then the cache hangs (accepts, never answers): requests still answer within tens of ms.
async fn cut_link_replays_invalidation_and_survives_a_hung_cache(backend: Backend) {
    let env = common::start(backend, Options::default()).await;
    let t = &env.tokens[0];
    let list = env.get("/api/review/today/", t).await;
    assert_eq!(env.get("/api/review/today/", t).await.x_cache(), "HIT");
    let id = content_ids(&list.json)[0];

    env.proxy.cut();
    let r = env
        .send(
            Method::POST,
            "/api/review/complete/",
            t,
            json!({"content_id": id, "remembered": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(env.get("/api/review/today/", t).await.x_cache(), "BYPASS");
    env.proxy.pass();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = env.get("/api/review/today/", t).await;
        assert!(
            !content_ids(&r.json).contains(&id),
            "stale list served after the link came back ({})",
            r.x_cache()
        );
        if r.x_cache() == "HIT" {
            break;
        }
        assert!(Instant::now() < deadline, "cache not used again within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    env.proxy.stall();
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let r = env.get("/api/analytics/stats/", t).await;
        assert_eq!((r.status, r.x_cache()), (200, "BYPASS"));
        slowest = slowest.max(r.elapsed);
    }
    assert!(
        slowest < Duration::from_millis(300),
        "slowest request with a hung cache took {slowest:?}"
    );
    env.proxy.pass();
    env.stop().await;
}
both_backends!(cut_link_replays_invalidation_and_survives_a_hung_cache);

/// The near cache: a hit read from respite is kept in the API process (the server tracks it for
/// the API's tracking connection), later hits cost no round trip, and a change made by someone
/// else (another API process) drops the copy when respite's invalidation arrives.
async fn near_cache_hits_in_process_until_invalidated(backend: Backend) {
    let env = common::start(backend, Options::default()).await;
    let t = &env.tokens[0];
    let user = env.user_id(t).await;
    let near_hits = || async { common::metric(&env.metrics_text().await, "cache_near_hits_total{endpoint=\"analytics_stats\"}") };
    assert_eq!(env.get("/api/analytics/stats/", t).await.x_cache(), "MISS");
    // The tracking connection comes up beside the main one: hits go to respite until it has.
    let deadline = Instant::now() + Duration::from_secs(5);
    while near_hits().await == 0 {
        assert!(Instant::now() < deadline, "no near-cache hit within 5 s");
        assert_eq!(env.get("/api/analytics/stats/", t).await.x_cache(), "HIT");
    }
    let mut redis = env.redis().await;
    let server_hits = |info: String| {
        info.lines()
            .find_map(|l| l.strip_prefix("keyspace_hits:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap()
    };
    let info: String = redis::cmd("INFO").arg("stats").query_async(&mut redis).await.unwrap();
    let (server_before, near_before) = (server_hits(info), near_hits().await);
    let first = env.get("/api/analytics/stats/", t).await;
    for _ in 0..20 {
        let r = env.get("/api/analytics/stats/", t).await;
        assert_eq!((r.x_cache(), &r.json), ("HIT", &first.json));
    }
    let info: String = redis::cmd("INFO").arg("stats").query_async(&mut redis).await.unwrap();
    assert_eq!(server_hits(info), server_before, "near-cache hits never reach respite");
    assert_eq!(near_hits().await, near_before + 21);

    // Another process's write: a new generation set on respite directly, not through this API.
    assert!(!env.app.state.cache.near.is_empty());
    let gen_key = format!("api:gen:stats:{{{user}}}");
    let _: () = redis::cmd("SET")
        .arg(&gen_key)
        .arg("someone-else")
        .query_async(&mut redis)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !env.app.state.cache.near.is_empty() {
        assert!(Instant::now() < deadline, "the invalidation did not drop the copy within 2 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        env.get("/api/analytics/stats/", t).await.x_cache(),
        "MISS",
        "the old value is not served"
    );
    env.stop().await;
}
both_backends!(near_cache_hits_in_process_until_invalidated);
