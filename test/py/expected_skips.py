"""Skips are failures unless test/expected-skips.txt names them, with why.

As a pytest plugin (conftest.py loads it): an unexpected skip of a test, or of a whole module, is
reported as a failed test. As a program, it counts the unexpected skips in a TAP log (prove -v
output of the unit or TAP stage of run_tests.sh), lists them on stderr and prints the count:

    /usr/bin/python3 test/py/expected_skips.py unit|tap LOG

The list has one skip a line, "stage | name | why" (stage: unit, tap or py; name: for unit,
"program: description"; for tap, the script's file name; for py, the node id from the test file on,
"test_x.py::test_y", parameters optional). Lines starting with # are comments.
"""
import pathlib
import re
import sys

LIST = pathlib.Path(__file__).resolve().parent.parent / "expected-skips.txt"
HINT = f"a skip that is expected is named in {LIST.name}, with why"


def expected(stage):
    """Names of the expected skips of a stage; a malformed line is an error."""
    names = set()
    for n, line in enumerate(LIST.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) != 3 or not all(fields) or fields[0] not in ("unit", "tap", "py"):
            raise ValueError(f"{LIST}:{n}: expected \"stage | name | why\", got {line!r}")
        if fields[0] == stage:
            names.add(fields[1])
    return names


def is_expected(name, names):
    """A name matches an entry exactly, or without its [parameters]."""
    return name in names or name.split("[", 1)[0] in names


# --- TAP logs ----------------------------------------------------------------------------------------

PROVE_FILE = re.compile(r"^(\S+) \.+ ?(?:skipped: (.*))?$")      # prove's "t/x.pl .... " line
SKIP_ONE = re.compile(r"^\s*ok \d+\s*(?:- )?(.*?)\s*#\s*skip\b\s*(.*)$", re.I)
SKIP_ALL = re.compile(r"^\s*1\.\.0\s*#\s*skip\b\s*(.*)$", re.I)


def tap_skips(lines):
    """(name, reason) of every skip in prove -v output: single tests, and whole files (skip_all)."""
    current = None
    whole = set()
    for line in lines:
        m = PROVE_FILE.match(line)
        if m and not line.startswith(("ok", "not ok", "#")):
            current = pathlib.Path(m.group(1)).name
            if m.group(2) is not None and current not in whole:   # prove without -v
                whole.add(current)
                yield current, m.group(2)
            continue
        m = SKIP_ALL.match(line)
        if m and current not in whole:
            whole.add(current)
            yield current, m.group(1)
            continue
        m = SKIP_ONE.match(line)
        if m:
            yield f"{current}: {m.group(1)}", m.group(2)


def count_unexpected(stage, log):
    """Number of skips in a TAP log that the list does not name; each is listed on stderr."""
    names = expected(stage)
    n = 0
    for name, reason in tap_skips(pathlib.Path(log).read_text(errors="replace").splitlines()):
        if not is_expected(name, names):
            n += 1
            print(f"unexpected skip in the {stage} stage: {name} ({reason}); {HINT}", file=sys.stderr)
    return n


# --- pytest ------------------------------------------------------------------------------------------

def py_name(nodeid):
    """A node id from the test file on, whatever the rootdir."""
    return nodeid.rsplit("test/py/", 1)[-1]


def skip_reason(report):
    return report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)


try:
    import pytest
except ImportError:  # the program needs no pytest
    pytest = None

if pytest is not None:
    class UnexpectedModuleSkip(pytest.Item):
        """Stands for a test module skipped as a whole: fails with the skip's reason."""

        def __init__(self, *, reason, **kwargs):
            super().__init__(**kwargs)
            self.reason = reason

        def runtest(self):
            pytest.fail(f"unexpected skip of the whole module: {self.reason}; {HINT}", pytrace=False)

        def reportinfo(self):
            return self.path, None, self.name

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(collector):
        outcome = yield
        report = outcome.get_result()
        if report.skipped and isinstance(collector, pytest.Module) and \
                not is_expected(py_name(collector.nodeid), expected("py")):
            item = UnexpectedModuleSkip.from_parent(collector, name="module-skipped", reason=skip_reason(report))
            report.outcome, report.longrepr, report.result = "passed", None, [item]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        report = outcome.get_result()
        if report.skipped and not hasattr(report, "wasxfail") and \
                not is_expected(py_name(item.nodeid), expected("py")):
            report.outcome = "failed"
            report.longrepr = f"unexpected skip: {skip_reason(report)}; {HINT}"


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("unit", "tap"):
        sys.exit(f"usage: {sys.argv[0]} unit|tap LOG")
    print(count_unexpected(sys.argv[1], sys.argv[2]))
