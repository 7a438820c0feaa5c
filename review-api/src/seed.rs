//! `review-api seed`: realistic data for trying and load-testing the API. Users get random API
//! tokens (written to a file, one per line); contents spread over the users and six categories,
//! each with a review schedule due somewhere between two weeks ago and two weeks ahead, and a
//! history of past reviews consistent with its interval step.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use chrono::Days;
use sqlx::{AnyConnection, Row};

use crate::db::{date_str, now_secs, Db, INTERVALS};
use crate::metrics::Metrics;

pub const CATEGORIES: [(&str, &str); 6] = [
    ("english", "English"),
    ("math", "Mathematics"),
    ("science", "Science"),
    ("history", "History"),
    ("programming", "Programming"),
    ("music", "Music"),
];

const WORDS: &[&str] = &[
    "memory",
    "curve",
    "interval",
    "review",
    "recall",
    "practice",
    "concept",
    "example",
    "theorem",
    "proof",
    "vocabulary",
    "grammar",
    "function",
    "variable",
    "history",
    "river",
    "battle",
    "melody",
    "rhythm",
    "energy",
    "cell",
    "protein",
    "lambda",
    "closure",
    "index",
    "query",
    "cache",
    "latency",
    "network",
    "island",
    "planet",
    "orbit",
    "chord",
    "scale",
    "verb",
    "noun",
    "essay",
    "summary",
];

pub struct SeedReport {
    pub users: usize,
    pub contents: usize,
    pub due_today: usize,
    pub history: usize,
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seeded {} users, {} contents ({} due today or earlier), {} history rows",
            self.users, self.contents, self.due_today, self.history
        )
    }
}

fn sentence(rng: &mut fastrand::Rng, words: usize) -> String {
    (0..words).map(|_| WORDS[rng.usize(..WORDS.len())]).collect::<Vec<_>>().join(" ")
}

/// Inserts `rows` (each `cols` values) with multi-row INSERTs of `$n` placeholders.
async fn insert_rows(
    conn: &mut AnyConnection,
    head: &str,
    cols: usize,
    rows: &[Vec<Value>],
    returning: &str,
) -> anyhow::Result<Vec<sqlx::any::AnyRow>> {
    let mut out = Vec::new();
    // 100 rows x at most 7 columns stays far below SQLite's bound-parameter limit.
    for chunk in rows.chunks(100) {
        let mut sql = String::from(head);
        sql.push_str(" VALUES ");
        for (r, _) in chunk.iter().enumerate() {
            if r > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 0..cols {
                if c > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("${}", r * cols + c + 1));
            }
            sql.push(')');
        }
        sql.push_str(returning);
        let mut q = sqlx::query(&sql);
        for row in chunk {
            for v in row {
                q = match v {
                    Value::I(i) => q.bind(*i),
                    Value::S(s) => q.bind(s.clone()),
                    Value::B(b) => q.bind(*b),
                };
            }
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

enum Value {
    I(i64),
    S(String),
    B(bool),
}

/// Seeds `users` users and `contents` contents into the database at `database_url` (migrating it
/// first) and writes the new users' tokens to `tokens_path`. Adds to existing data.
pub async fn run(database_url: &str, users: usize, contents: usize, tokens_path: &Path) -> anyhow::Result<SeedReport> {
    anyhow::ensure!(users > 0, "--users must be at least 1");
    let db = Db::connect(database_url, 2, Arc::new(Metrics::new())).await?;
    let mut rng = fastrand::Rng::new();
    let today = crate::app::today();
    let now = now_secs();
    let run_id = format!("{:06x}", rng.u32(..0xff_ffff));
    let mut tx = db.begin_write().await?;

    for (slug, name) in CATEGORIES {
        sqlx::query("INSERT INTO categories (slug, name) VALUES ($1, $2) ON CONFLICT (slug) DO NOTHING")
            .bind(slug)
            .bind(name)
            .execute(&mut *tx)
            .await?;
    }
    let mut category_ids = Vec::new();
    for (slug, _) in CATEGORIES {
        category_ids.push(
            sqlx::query("SELECT id FROM categories WHERE slug = $1")
                .bind(slug)
                .fetch_one(&mut *tx)
                .await?
                .try_get::<i64, _>("id")?,
        );
    }

    let tokens: Vec<String> = (0..users)
        .map(|_| (0..4).map(|_| format!("{:016x}", rng.u64(..))).collect())
        .collect();
    let user_rows: Vec<Vec<Value>> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| vec![Value::S(format!("user-{run_id}-{i}")), Value::S(t.clone()), Value::I(now)])
        .collect();
    let user_ids: Vec<i64> = insert_rows(
        &mut tx,
        "INSERT INTO users (username, token, created_at)",
        3,
        &user_rows,
        " RETURNING id",
    )
    .await?
    .iter()
    .map(|r| r.try_get("id"))
    .collect::<Result<_, _>>()?;

    // Contents round-robin over users; titles are unique in this run so the RETURNING rows can be
    // matched back to their author without relying on row order.
    let mut content_rows = Vec::with_capacity(contents);
    let mut author_of = HashMap::with_capacity(contents);
    for k in 0..contents {
        let author = user_ids[k % user_ids.len()];
        let cat = rng.usize(..CATEGORIES.len());
        let title = format!("{} #{k}-{run_id}: {}", CATEGORIES[cat].1, sentence(&mut rng, 4));
        let body = (0..rng.usize(3..8))
            .map(|_| sentence(&mut rng, 12) + ".")
            .collect::<Vec<_>>()
            .join(" ");
        let created = now - rng.i64(0..90 * 86_400);
        author_of.insert(title.clone(), author);
        content_rows.push(vec![
            Value::S(title),
            Value::S(body),
            Value::I(category_ids[cat]),
            Value::I(author),
            Value::I(created),
            Value::I(created),
        ]);
    }
    let inserted = insert_rows(
        &mut tx,
        "INSERT INTO contents (title, body, category_id, author_id, created_at, updated_at)",
        6,
        &content_rows,
        " RETURNING id, title",
    )
    .await?;

    let mut schedules = Vec::with_capacity(inserted.len());
    let mut history = Vec::new();
    let mut due_today = 0;
    for row in &inserted {
        let id: i64 = row.try_get("id")?;
        let author = author_of[&row.try_get::<String, _>("title")?];
        let step = rng.i64(0..INTERVALS.len() as i64);
        let offset = rng.i64(-14..=14);
        if offset <= 0 {
            due_today += 1;
        }
        let due = if offset >= 0 {
            today.checked_add_days(Days::new(offset as u64))
        } else {
            today.checked_sub_days(Days::new((-offset) as u64))
        };
        schedules.push(vec![
            Value::I(author),
            Value::I(id),
            Value::S(date_str(due.expect("date in range"))),
            Value::I(step),
            Value::B(true),
        ]);
        // One past review per step climbed, plus an occasional lapse, over the last 60 days.
        for h in 0..(step + rng.i64(0..2)) {
            let days_ago = rng.u64(0..60);
            let on = today.checked_sub_days(Days::new(days_ago)).expect("date in range");
            history.push(vec![
                Value::I(author),
                Value::I(id),
                Value::B(rng.f64() < 0.8),
                Value::I(h.min(INTERVALS.len() as i64 - 1)),
                Value::S(date_str(on)),
                Value::I(now - days_ago as i64 * 86_400),
            ]);
        }
    }
    insert_rows(
        &mut tx,
        "INSERT INTO review_schedules (user_id, content_id, next_review_date, interval_index, is_active)",
        5,
        &schedules,
        "",
    )
    .await?;
    insert_rows(
        &mut tx,
        "INSERT INTO review_history (user_id, content_id, remembered, interval_index, reviewed_on, reviewed_at)",
        6,
        &history,
        "",
    )
    .await?;
    tx.commit().await?;
    // Fresh planner statistics (both databases read `ANALYZE`), so the due-today query uses its
    // index from the first request rather than after PostgreSQL's autovacuum gets to it.
    sqlx::query("ANALYZE").execute(&db.pool).await?;
    db.pool.close().await;

    std::fs::write(tokens_path, tokens.join("\n") + "\n")?;
    Ok(SeedReport {
        users,
        contents: inserted.len(),
        due_today,
        history: history.len(),
    })
}
