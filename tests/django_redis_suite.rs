//! django-redis's own test suite (the PyPI sdist's tests/: the cache API get/set/add/delete/
//! delete_many/delete_pattern/get_many/set_many/ttl/persist/expire/touch/incr/decr/has_key/clear/
//! iter_keys/lock, sessions, serializers and compressors) against the respite-server binary, compared
//! test by test with tests/compat/django_redis_expected.txt by tests/compat/django_redis_suite.py.
//! Skips with a notice when Django, django-redis's test dependencies or the sdist are missing.

#[path = "compat/runner.rs"]
mod runner;

#[test]
fn django_redis_own_suite_gives_the_expected_outcomes() {
    runner::run_suite("django_redis_suite.py", "django-redis's own test suite");
}
