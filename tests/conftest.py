"""Shared fixtures: real services (PostgreSQL, Redis, Docker) and fake servers (GitHub, model)."""

pytest_plugins = [
    "tests.support.db",
    "tests.support.docker",
    "tests.support.git_http",
    "tests.support.fake_github",
    "tests.support.fake_openai",
    "tests.support.stack",
    "tests.support.packages",
]


def pytest_collection_modifyitems(items):
    """Tests marked `long` (minutes each) run first: spread over the parallel workers from the start,
    the suite does not wait on one of them at its end."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: the rest keep their order


def pytest_terminal_summary(terminalreporter):
    """The workflow corpus table (tests/workers/handlers/test_workflow_corpus.py), as the README
    carries it: one row per corpus test that ran, from its report (so also under pytest-xdist)."""
    rows = sorted({tuple(value) for reports in terminalreporter.stats.values() for report in reports
                   if getattr(report, "when", None) == "call"
                   for name, value in getattr(report, "user_properties", ()) if name == "corpus_row"})
    if rows:
        from tests.workers.handlers.test_workflow_corpus import TABLE_HEAD

        terminalreporter.write_sep("-", "workflow corpus")
        for line in [*TABLE_HEAD, *(line for _, line in rows)]:
            terminalreporter.write_line(line)
