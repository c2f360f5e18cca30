"""The exercises' command line.

    python -m minigen.exercises list            # every exercise, where it lives, your status
    python -m minigen.exercises start ch03.1    # write your stub into exercises/ch03_1.py
    python -m minigen.exercises check ch03.1    # run its tests on your code: a short verdict
    python -m minigen.exercises reset ch03.1    # a fresh stub (your old file kept as .bak)

Then `python -m lessons.ch03_vae --student` trains with your code.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
from pathlib import Path

from minigen import exercises
from minigen.exercises import Exercise

TESTS = exercises.REPOSITORY / "tests"


def _status(exercise: Exercise) -> str:
    path = exercises.student_file(exercise)
    if not path.exists():
        return "not started"
    if path.read_text() == exercises.make_stub(exercise):
        return f"started, untouched ({exercises._shown(path)})"
    return f"started ({exercises._shown(path)})"


def list_exercises() -> int:
    for exercise in exercises.find_exercises():
        print(f"{exercise.id:7} {exercise.qualname:18} {exercise.task}")
        print(f"{'':7} {exercise.where:30} {_status(exercise)}")
    print(f"\nyour files go to {exercises._shown(exercises.workspace())}/; "
          "start one with: python -m minigen.exercises start ch03.1")
    return 0


def start(exercise: Exercise) -> int:
    path = exercises.start(exercise)
    print(f"wrote {exercises._shown(path)}: replace the raise in {exercise.qualname} with your "
          f"code, then run: python -m minigen.exercises check {exercise.id}")
    return 0


def reset(exercise: Exercise) -> int:
    path, backup = exercises.reset(exercise)
    kept = f" (your previous file is {exercises._shown(backup)})" if backup else ""
    print(f"wrote a fresh {exercises._shown(path)}{kept}")
    return 0


def _test_files(exercise: Exercise) -> list[Path]:
    """The test files that carry the exercise's marker."""
    marker = re.compile(rf"pytest\.mark\.{exercise.marker}\b")
    return [p for p in sorted(TESTS.glob("test_*.py")) if marker.search(p.read_text())]


class _Verdicts:
    """A pytest plugin that keeps one line per test instead of pytest's own report."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str]] = []  # (outcome, test, message)

    @staticmethod
    def _title(report) -> str:
        name = report.nodeid.split("::")[-1]
        base, _, params = name.partition("[")
        title = base.removeprefix("test_").replace("_", " ")
        return f"{title} [{params}" if params else title

    @staticmethod
    def _message(report) -> str:
        if isinstance(report.longrepr, tuple):  # a skip: (file, line, reason)
            text = report.longrepr[2]
        else:
            crash = getattr(report.longrepr, "reprcrash", None)
            text = crash.message if crash is not None else str(report.longrepr)
            text = text.split("\n")[0]  # the message; pytest's explanation follows it
        text = " ".join(text.split())
        return text if len(text) <= 300 else text[:297] + "..."

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call":
            outcome = {"passed": "pass", "failed": "FAIL"}.get(report.outcome, "SKIP")
        elif report.failed:  # an error in a fixture
            outcome = "FAIL"
        elif report.skipped:  # skipped before it ran
            outcome = "SKIP"
        else:
            return
        message = "" if report.passed else self._message(report)
        self.lines.append((outcome, self._title(report), message))

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.lines.append(("FAIL", f"collecting {report.nodeid}", self._message(report)))


def check(exercise: Exercise) -> int:
    """Run the exercise's tests on the student's code and print a verdict per test."""
    import pytest

    path = exercises.student_file(exercise)
    if not path.exists():
        print(f"exercise {exercise.id} is not started: python -m minigen.exercises start "
              f"{exercise.id}")
        return 1
    files = _test_files(exercise)
    if not files:
        print(f"no tests carry the marker {exercise.marker} in {TESTS}: check needs the "
              "repository's tests/ folder")
        return 1
    print(f"exercise {exercise.id}: {exercise.qualname}, your code in "
          f"{exercises._shown(path)}")
    verdicts = _Verdicts()
    os.environ["MINIGEN_EXERCISES"] = str(exercises.workspace())
    pytest_report = io.StringIO()  # pytest's own report, which the verdicts replace
    with contextlib.redirect_stdout(pytest_report), contextlib.redirect_stderr(pytest_report):
        pytest.main([*map(str, files), "-m", exercise.marker, "--student", "-o", "addopts=",
                     "-q", "--tb=short", "-p", "no:cacheprovider",
                     f"--rootdir={exercises.REPOSITORY}"], plugins=[verdicts])
    no_gpu = 0
    for outcome, title, message in verdicts.lines:
        if outcome == "SKIP" and "GPU is not available" in message:
            no_gpu += 1  # the device cases, which a machine without a GPU skips
            continue
        print(f"  {outcome:4}  {title}" + (f": {message}" if message else ""))
    if no_gpu:
        print(f"  ({no_gpu} GPU case{'s' if no_gpu > 1 else ''} skipped: no GPU here)")
    failed = sum(outcome == "FAIL" for outcome, _, _ in verdicts.lines)
    passed = sum(outcome == "pass" for outcome, _, _ in verdicts.lines)
    if failed:
        print(f"exercise {exercise.id}: {failed} of {failed + passed} checks failed")
        return 1
    if not passed:
        print(f"exercise {exercise.id}: no check ran")
        return 1
    print(f"exercise {exercise.id}: all {passed} checks pass. Try it in a lesson with "
          "--student.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minigen.exercises",
                                     description=__doc__.splitlines()[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every exercise, where it lives, and your status")
    for name, text in [("start", "write your stub of an exercise into the workspace"),
                       ("check", "run an exercise's tests on your code"),
                       ("reset", "a fresh stub; your old file is kept as .bak")]:
        commands.add_parser(name, help=text).add_argument("id", help="e.g. ch03.1")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return list_exercises()
        exercise = exercises.get(args.id)
        return {"start": start, "check": check, "reset": reset}[args.command](exercise)
    except (KeyError, FileExistsError, exercises.MarkerError) as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
