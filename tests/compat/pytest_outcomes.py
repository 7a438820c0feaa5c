"""pytest plugin for the compat runners: writes one line per test, `nodeid<TAB>outcome<TAB>detail`,
to the file named by $COMPAT_OUTCOMES. outcome is passed, failed, error, skipped, xfailed or xpassed;
detail is the first line of the exception or the skip reason. Load it with `-p pytest_outcomes`
(tests/compat on PYTHONPATH)."""
import os

_results = {}


def _detail(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        text = crash.message
    elif isinstance(report.longrepr, tuple):  # skip: (path, line, reason)
        text = report.longrepr[2]
    else:
        text = str(report.longrepr or "")
    text = " ".join(text.split())
    return text[:200]


def pytest_runtest_logreport(report):
    nodeid = report.nodeid
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        else:
            outcome = report.outcome
        if outcome != "passed" or nodeid not in _results:
            _results[nodeid] = (outcome, "" if outcome == "passed" else _detail(report))
    elif report.when == "setup":
        if report.skipped:
            _results[nodeid] = ("xfailed" if hasattr(report, "wasxfail") else "skipped", _detail(report))
        elif report.failed:
            _results[nodeid] = ("error", _detail(report))
    elif report.when == "teardown" and report.failed:
        prev = _results.get(nodeid, ("passed", ""))
        if prev[0] == "passed":
            _results[nodeid] = ("error", "teardown: " + _detail(report))


def pytest_sessionfinish(session):
    path = os.environ.get("COMPAT_OUTCOMES")
    if not path or hasattr(session.config, "workerinput"):
        return  # pytest-xdist workers forward their reports to the controller, which writes the file
    with open(path, "w") as f:
        for nodeid, (outcome, detail) in _results.items():
            f.write(f"{nodeid}\t{outcome}\t{detail}\n")


# redis-py's conftest turns on tracemalloc for the whole session (to attribute ResourceWarnings); it
# makes every test two to three times slower and changes no outcome, so the compat runs leave it off.
if os.environ.get("COMPAT_NO_TRACEMALLOC"):
    import tracemalloc

    tracemalloc.start = lambda *args, **kwargs: None
