//! The database: connecting (SQLite file or PostgreSQL through sqlx's Any driver), migrations, and
//! every SQL statement the API sends. SQL here is portable: `$n` placeholders (SQLite reads them as
//! positional too), dates as 'YYYY-MM-DD' text, COUNT(CASE ...) instead of SUM (Postgres' SUM of a
//! bigint is numeric, which the Any driver cannot decode).
//!
//! Each statement is counted in `db_queries_total{query}`: the loadtest's "DB queries per minute"
//! and the stampede test read that counter.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row};

use crate::metrics::Metrics;

/// Days until the next review after 0, 1, 2, ... consecutive successful reviews.
pub const INTERVALS: [i64; 5] = [1, 3, 7, 14, 30];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    metrics: Arc<Metrics>,
}

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Category {
    pub slug: String,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Content {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub category: Option<Category>,
    pub author: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DueReview {
    pub id: i64,
    pub content: Content,
    pub next_review_date: String,
    pub interval_index: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ContentPage {
    pub count: i64,
    pub page: i64,
    pub page_size: i64,
    pub results: Vec<Content>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CategoryStats {
    pub slug: String,
    pub name: String,
    pub contents: i64,
    pub due_today: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    pub total_contents: i64,
    pub active_schedules: i64,
    pub due_today: i64,
    pub total_reviews: i64,
    pub done_today: i64,
    pub done_this_week: i64,
    /// Percent of reviews remembered, 0 when there were none.
    pub success_rate: f64,
    /// Consecutive days with at least one review, ending today (or yesterday if none yet today).
    pub streak_days: i64,
    pub categories: Vec<CategoryStats>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CompletedReview {
    pub content_id: i64,
    pub remembered: bool,
    pub interval_index: i64,
    pub next_review_date: String,
    pub is_active: bool,
}

/// Fields of a content write; `None` leaves a field unchanged (PATCH).
#[derive(Clone, Debug, Default)]
pub struct ContentChange {
    pub title: Option<String>,
    pub body: Option<String>,
    /// Some(None) clears the category.
    pub category_slug: Option<Option<String>>,
}

pub enum WriteError {
    NotFound,
    UnknownCategory,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Db(e)
    }
}

pub fn date_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn plus_days(d: NaiveDate, n: i64) -> NaiveDate {
    if n >= 0 {
        d.checked_add_days(Days::new(n as u64)).expect("date in range")
    } else {
        d.checked_sub_days(Days::new((-n) as u64)).expect("date in range")
    }
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

const CONTENT_COLUMNS: &str = "c.id, c.title, c.body, c.created_at, c.updated_at, cat.slug AS cat_slug, cat.name AS cat_name, \
                               u.username AS author";

fn content_from_row(row: &AnyRow, id_column: &str) -> Result<Content, sqlx::Error> {
    let slug: Option<String> = row.try_get("cat_slug")?;
    let name: Option<String> = row.try_get("cat_name")?;
    Ok(Content {
        id: row.try_get(id_column)?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        category: slug.zip(name).map(|(slug, name)| Category { slug, name }),
        author: row.try_get("author")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Db {
    /// Connects and runs the migrations. `url`: `sqlite://path` (created if missing), a plain file
    /// path (taken as SQLite), or `postgres://...`.
    pub async fn connect(url: &str, max_connections: u32, metrics: Arc<Metrics>) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let (url, backend) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (url.to_string(), Backend::Postgres)
        } else {
            let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
            let sep = if path.contains('?') { '&' } else { '?' };
            // WAL lets readers run beside the one writer; mode=rwc creates the file.
            (format!("sqlite://{path}{sep}mode=rwc"), Backend::Sqlite)
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // A busy writer makes others wait instead of failing with "database is locked".
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        migrator(backend).run(&pool).await?;
        Ok(Db { pool, backend, metrics })
    }

    /// A transaction that will write. SQLite's default deferred BEGIN takes the write lock only at
    /// the first write, and a reader upgrading to writer fails with "database is locked" instead of
    /// waiting; BEGIN IMMEDIATE takes it up front, so busy_timeout applies.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    fn count(&self, query: &str) {
        self.metrics.db_queries.with_label_values(&[query]).inc();
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        self.count("health");
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    pub async fn user_by_token(&self, token: &str) -> Result<Option<User>, sqlx::Error> {
        self.count("user_by_token");
        let row = sqlx::query("SELECT id, username FROM users WHERE token = $1")
            .bind(token)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(User {
                id: r.try_get("id")?,
                username: r.try_get("username")?,
            })
        })
        .transpose()
    }

    /// Due, active schedules of `user` up to `today`, optionally in one category, oldest due first.
    pub async fn review_today(&self, user: i64, today: NaiveDate, category_slug: &str) -> Result<Vec<DueReview>, sqlx::Error> {
        self.count("review_today");
        let sql = format!(
            "SELECT s.id AS schedule_id, s.content_id, s.next_review_date, s.interval_index, {CONTENT_COLUMNS}
             FROM review_schedules s
             JOIN contents c ON c.id = s.content_id
             JOIN users u ON u.id = s.user_id
             LEFT JOIN categories cat ON cat.id = c.category_id
             WHERE s.user_id = $1 AND s.is_active = TRUE AND s.next_review_date <= $2
               AND ($3 = '' OR cat.slug = $3)
             ORDER BY s.next_review_date, s.id"
        );
        let rows = sqlx::query(&sql)
            .bind(user)
            .bind(date_str(today))
            .bind(category_slug)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DueReview {
                    id: r.try_get("schedule_id")?,
                    content: content_from_row(r, "content_id")?,
                    next_review_date: r.try_get("next_review_date")?,
                    interval_index: r.try_get("interval_index")?,
                })
            })
            .collect()
    }

    /// Advances (remembered) or resets (forgotten) the schedule and writes the history row, in one
    /// transaction. NotFound when the user has no active schedule for that content.
    ///
    /// Two statements: the history row is inserted first, straight from the schedule row (INSERT
    /// ... SELECT ... RETURNING), which also checks that the schedule exists and is the user's and
    /// returns the interval the review was done at; then the schedule is moved on. (Not an UPDATE
    /// ... RETURNING first: RETURNING gives the new interval, and at the last interval a remembered
    /// review cannot tell the old one from it.) Same isolation as a SELECT then UPDATE: on SQLite
    /// BEGIN IMMEDIATE serialises writers; on PostgreSQL (read committed) two completions of the
    /// same schedule at the same instant can read the same interval, as before.
    pub async fn complete_review(
        &self,
        user: i64,
        content_id: i64,
        remembered: bool,
        today: NaiveDate,
    ) -> Result<CompletedReview, WriteError> {
        let mut tx = self.begin_write().await?;
        self.count("complete_history");
        let row = sqlx::query(
            "INSERT INTO review_history (user_id, content_id, remembered, interval_index, reviewed_on, reviewed_at)
             SELECT user_id, content_id, $3, interval_index, $4, $5 FROM review_schedules
             WHERE user_id = $1 AND content_id = $2 AND is_active = TRUE
             RETURNING interval_index",
        )
        .bind(user)
        .bind(content_id)
        .bind(remembered)
        .bind(date_str(today))
        .bind(now_secs())
        .fetch_optional(&mut *tx)
        .await?;
        // No row inserted, nothing written: dropping the transaction rolls it back.
        let Some(row) = row else { return Err(WriteError::NotFound) };
        let before: i64 = row.try_get("interval_index")?;
        // interval_index points into INTERVALS: remembered climbs one step (staying on the last),
        // forgotten goes back to the first, and the next review is that many days away.
        let next_index = if remembered {
            (before + 1).min(INTERVALS.len() as i64 - 1)
        } else {
            0
        };
        let wait_days = INTERVALS[next_index as usize];
        let is_active = true;
        let next_date = date_str(plus_days(today, wait_days));
        self.count("complete_update");
        // (user_id, content_id) is unique: the row the insert read.
        sqlx::query(
            "UPDATE review_schedules SET interval_index = $1, next_review_date = $2, is_active = $3
             WHERE user_id = $4 AND content_id = $5",
        )
        .bind(next_index)
        .bind(&next_date)
        .bind(is_active)
        .bind(user)
        .bind(content_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(CompletedReview {
            content_id,
            remembered,
            interval_index: next_index,
            next_review_date: next_date,
            is_active,
        })
    }

    pub async fn stats(&self, user: i64, today: NaiveDate) -> Result<Stats, sqlx::Error> {
        let today_s = date_str(today);
        let week_start = date_str(plus_days(today, -6));
        self.count("stats_schedules");
        let sched = sqlx::query(
            "SELECT COUNT(*) AS total, COUNT(CASE WHEN is_active = TRUE THEN 1 END) AS active,
                    COUNT(CASE WHEN is_active = TRUE AND next_review_date <= $2 THEN 1 END) AS due
             FROM review_schedules WHERE user_id = $1",
        )
        .bind(user)
        .bind(&today_s)
        .fetch_one(&self.pool)
        .await?;
        self.count("stats_history");
        let hist = sqlx::query(
            "SELECT COUNT(*) AS total, COUNT(CASE WHEN remembered = TRUE THEN 1 END) AS remembered,
                    COUNT(CASE WHEN reviewed_on = $2 THEN 1 END) AS today,
                    COUNT(CASE WHEN reviewed_on >= $3 THEN 1 END) AS week
             FROM review_history WHERE user_id = $1",
        )
        .bind(user)
        .bind(&today_s)
        .bind(&week_start)
        .fetch_one(&self.pool)
        .await?;
        self.count("stats_days");
        let days: Vec<String> =
            sqlx::query("SELECT DISTINCT reviewed_on FROM review_history WHERE user_id = $1 ORDER BY reviewed_on DESC LIMIT 400")
                .bind(user)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.try_get("reviewed_on"))
                .collect::<Result<_, _>>()?;
        self.count("stats_categories");
        let cats = sqlx::query(
            "SELECT cat.slug, cat.name, COUNT(*) AS contents,
                    COUNT(CASE WHEN s.is_active = TRUE AND s.next_review_date <= $2 THEN 1 END) AS due
             FROM contents c
             JOIN categories cat ON cat.id = c.category_id
             LEFT JOIN review_schedules s ON s.content_id = c.id AND s.user_id = $1
             WHERE c.author_id = $1
             GROUP BY cat.slug, cat.name
             ORDER BY cat.slug",
        )
        .bind(user)
        .bind(&today_s)
        .fetch_all(&self.pool)
        .await?;
        let total_reviews: i64 = hist.try_get("total")?;
        let remembered: i64 = hist.try_get("remembered")?;
        Ok(Stats {
            total_contents: sched.try_get("total")?,
            active_schedules: sched.try_get("active")?,
            due_today: sched.try_get("due")?,
            total_reviews,
            done_today: hist.try_get("today")?,
            done_this_week: hist.try_get("week")?,
            success_rate: if total_reviews == 0 {
                0.0
            } else {
                (remembered as f64 * 1000.0 / total_reviews as f64).round() / 10.0
            },
            streak_days: streak(today, &days),
            categories: cats
                .iter()
                .map(|r| {
                    Ok(CategoryStats {
                        slug: r.try_get("slug")?,
                        name: r.try_get("name")?,
                        contents: r.try_get("contents")?,
                        due_today: r.try_get("due")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?,
        })
    }

    /// One page of the user's contents, newest first, with the total for pagination.
    pub async fn content_page(&self, user: i64, page: i64, page_size: i64, category_slug: &str) -> Result<ContentPage, sqlx::Error> {
        self.count("content_count");
        let count: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM contents c LEFT JOIN categories cat ON cat.id = c.category_id
             WHERE c.author_id = $1 AND ($2 = '' OR cat.slug = $2)",
        )
        .bind(user)
        .bind(category_slug)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        self.count("content_page");
        let sql = format!(
            "SELECT {CONTENT_COLUMNS} FROM contents c
             JOIN users u ON u.id = c.author_id
             LEFT JOIN categories cat ON cat.id = c.category_id
             WHERE c.author_id = $1 AND ($2 = '' OR cat.slug = $2)
             ORDER BY c.id DESC LIMIT $3 OFFSET $4"
        );
        let rows = sqlx::query(&sql)
            .bind(user)
            .bind(category_slug)
            .bind(page_size)
            .bind((page - 1) * page_size)
            .fetch_all(&self.pool)
            .await?;
        let results = rows.iter().map(|r| content_from_row(r, "id")).collect::<Result<_, _>>()?;
        Ok(ContentPage {
            count,
            page,
            page_size,
            results,
        })
    }

    /// The user's own content; None for a missing id or another user's content (both answer 404).
    pub async fn content(&self, user: i64, id: i64) -> Result<Option<Content>, sqlx::Error> {
        self.count("content_get");
        let sql = format!(
            "SELECT {CONTENT_COLUMNS} FROM contents c
             JOIN users u ON u.id = c.author_id
             LEFT JOIN categories cat ON cat.id = c.category_id
             WHERE c.id = $1 AND c.author_id = $2"
        );
        let row = sqlx::query(&sql).bind(id).bind(user).fetch_optional(&self.pool).await?;
        row.map(|r| content_from_row(&r, "id")).transpose()
    }

    async fn category_id(&self, tx: &mut sqlx::AnyConnection, slug: &str) -> Result<i64, WriteError> {
        self.count("category_by_slug");
        let row = sqlx::query("SELECT id FROM categories WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *tx)
            .await?;
        match row {
            Some(r) => Ok(r.try_get("id")?),
            None => Err(WriteError::UnknownCategory),
        }
    }

    /// Creates a content and its review schedule (first review tomorrow).
    pub async fn create_content(
        &self,
        user: i64,
        title: &str,
        body: &str,
        category_slug: Option<&str>,
        today: NaiveDate,
    ) -> Result<i64, WriteError> {
        let mut tx = self.begin_write().await?;
        let category_id = match category_slug {
            Some(slug) => Some(self.category_id(&mut tx, slug).await?),
            None => None,
        };
        let now = now_secs();
        self.count("content_insert");
        let id: i64 = sqlx::query(
            "INSERT INTO contents (title, body, category_id, author_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(title)
        .bind(body)
        .bind(category_id)
        .bind(user)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        self.count("schedule_insert");
        sqlx::query(
            "INSERT INTO review_schedules (user_id, content_id, next_review_date, interval_index, is_active) VALUES ($1, $2, $3, 0, TRUE)",
        )
        .bind(user)
        .bind(id)
        .bind(date_str(plus_days(today, INTERVALS[0])))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Applies `change` to the user's content and returns it as written. NotFound for a missing id
    /// or another user's content (checked before the category, as a separate ownership SELECT did);
    /// UnknownCategory when the change names a category that does not exist (nothing is written).
    ///
    /// One statement: the ownership check is the WHERE, the unchanged fields are kept by COALESCE /
    /// CASE, the category is looked up by a subquery, and RETURNING gives the row the response
    /// shows (category and author by subqueries, as CONTENT_COLUMNS' joins would).
    pub async fn update_content(&self, user: i64, id: i64, change: &ContentChange) -> Result<Content, WriteError> {
        let mut tx = self.begin_write().await?;
        let (set_category, slug) = match &change.category_slug {
            None => (false, None),
            Some(slug) => (true, slug.as_deref()),
        };
        self.count("content_update");
        let row = sqlx::query(
            "UPDATE contents SET title = COALESCE($1, title), body = COALESCE($2, body),
                    category_id = CASE WHEN $3 THEN (SELECT cat.id FROM categories cat WHERE cat.slug = $4) ELSE category_id END,
                    updated_at = $5
             WHERE id = $6 AND author_id = $7
             RETURNING id, title, body, created_at, updated_at,
                    (SELECT cat.slug FROM categories cat WHERE cat.id = contents.category_id) AS cat_slug,
                    (SELECT cat.name FROM categories cat WHERE cat.id = contents.category_id) AS cat_name,
                    (SELECT u.username FROM users u WHERE u.id = contents.author_id) AS author",
        )
        .bind(change.title.as_deref())
        .bind(change.body.as_deref())
        .bind(set_category)
        .bind(slug)
        .bind(now_secs())
        .bind(id)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
        // Errors return before the commit: dropping the transaction rolls the update back.
        let Some(row) = row else { return Err(WriteError::NotFound) };
        let content = content_from_row(&row, "id")?;
        if slug.is_some() && content.category.is_none() {
            return Err(WriteError::UnknownCategory);
        }
        tx.commit().await?;
        Ok(content)
    }

    /// Deletes the user's content with its schedule and history.
    pub async fn delete_content(&self, user: i64, id: i64) -> Result<(), WriteError> {
        let mut tx = self.begin_write().await?;
        self.count("content_owned");
        let owned = sqlx::query("SELECT id FROM contents WHERE id = $1 AND author_id = $2")
            .bind(id)
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
        if owned.is_none() {
            return Err(WriteError::NotFound);
        }
        for (name, sql) in [
            ("history_delete", "DELETE FROM review_history WHERE content_id = $1"),
            ("schedule_delete", "DELETE FROM review_schedules WHERE content_id = $1"),
            ("content_delete", "DELETE FROM contents WHERE id = $1"),
        ] {
            self.count(name);
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn categories(&self) -> Result<Vec<Category>, sqlx::Error> {
        self.count("categories");
        let rows = sqlx::query("SELECT slug, name FROM categories ORDER BY slug")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Category {
                    slug: r.try_get("slug")?,
                    name: r.try_get("name")?,
                })
            })
            .collect()
    }
}

/// Consecutive days with a review ending today, or ending yesterday when today has none yet (a
/// streak is not broken before the day is over). `days` is distinct 'YYYY-MM-DD', newest first.
pub fn streak(today: NaiveDate, days: &[String]) -> i64 {
    let mut expect = today;
    let mut it = days.iter().peekable();
    if it.peek().map(|d| d.as_str()) != Some(date_str(today).as_str()) {
        expect = plus_days(today, -1);
    }
    let mut n = 0;
    for d in it {
        if *d == date_str(expect) {
            n += 1;
            expect = plus_days(expect, -1);
        } else if d.as_str() < date_str(expect).as_str() {
            break;
        }
    }
    n
}

fn migrator(backend: Backend) -> Migrator {
    // Embedded by hand rather than with sqlx::migrate!: the macro would compile sqlx's drivers a
    // second time inside the proc-macro, which costs minutes on a small machine.
    let sql = match backend {
        Backend::Sqlite => include_str!("../migrations/sqlite/0001_init.sql"),
        Backend::Postgres => include_str!("../migrations/postgres/0001_init.sql"),
    };
    Migrator {
        migrations: Cow::Owned(vec![Migration::new(
            1,
            Cow::Borrowed("init"),
            MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )]),
        ..Migrator::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn streak_counts_back_from_today_or_yesterday() {
        let days = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(streak(d("2025-10-21"), &days(&["2025-10-21", "2025-10-20", "2025-10-18"])), 2);
        assert_eq!(streak(d("2025-10-21"), &days(&["2025-10-20", "2025-10-19"])), 2);
        assert_eq!(streak(d("2025-10-21"), &days(&["2025-10-19"])), 0);
        assert_eq!(streak(d("2025-10-21"), &days(&[])), 0);
    }
}
