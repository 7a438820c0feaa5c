-- Schema for SQLite. Dates are 'YYYY-MM-DD' text (sorts like a date and reads the same through
-- sqlx's Any driver on both databases); instants are unix seconds.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    token TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE categories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL
);

CREATE TABLE contents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    category_id BIGINT REFERENCES categories(id),
    author_id BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX contents_by_author ON contents(author_id, id);

CREATE TABLE review_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id),
    content_id BIGINT NOT NULL REFERENCES contents(id),
    next_review_date TEXT NOT NULL,
    interval_index BIGINT NOT NULL DEFAULT 0,
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    UNIQUE (user_id, content_id)
);
-- The due-today query: one user's active schedules up to a date, in date order.
CREATE INDEX schedules_due ON review_schedules(user_id, is_active, next_review_date);

CREATE TABLE review_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id),
    content_id BIGINT NOT NULL REFERENCES contents(id),
    remembered BOOLEAN NOT NULL,
    interval_index BIGINT NOT NULL,
    reviewed_on TEXT NOT NULL,
    reviewed_at BIGINT NOT NULL
);
CREATE INDEX history_by_user_day ON review_history(user_id, reviewed_on);
CREATE INDEX history_by_content ON review_history(content_id);
