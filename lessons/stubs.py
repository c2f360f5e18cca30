"""Exercises: find the marked answers in lessons/solutions/ and make the student stubs.

A solution file marks the body of each exercise:

    def backward(self, gy):
        ### BEGIN SOLUTION ch01.2: return dL/dx, reusing the output (self.output())
        return gy * self.output()
        ### END SOLUTION

Its stub in lessons/exercises/ has, in place of the marked lines,

        raise NotImplementedError("exercise ch01.2: return dL/dx, reusing the output ...")

The id chNN.K also names the pytest marker of the exercise's tests, chNN_K: a student
runs `pytest -m ch01_2 --student` to test their stub; without --student the same tests
run on the solution. `python -m tools.make_exercises` writes the stubs; with --check it
lists the stubs that no longer match their solutions.
"""
from __future__ import annotations

import difflib
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

SOLUTIONS = Path(__file__).parent / "solutions"
EXERCISES = Path(__file__).parent / "exercises"

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_BEGIN_LINE = re.compile(
    r"^(?P<indent>[ ]*)### BEGIN SOLUTION (?P<id>ch\d\d\.\d+): (?P<task>\S.*)$")
_MAX_LINE = 99


@dataclass(frozen=True)
class Exercise:
    """One marked exercise. id: 'ch01.2'; task: what to do; module: 'ch01_autograd'."""

    id: str
    task: str
    module: str
    line: int

    @property
    def marker(self) -> str:
        """The pytest marker of its tests: 'ch01.2' -> 'ch01_2'."""
        return self.id.replace(".", "_")


class MarkerError(ValueError):
    """A solution file's markers are malformed; the message names the file and line."""


def _blocks(source: str, path: Path) -> list[tuple[Exercise, int, int, str]]:
    """Each exercise with the 0-based line numbers of its BEGIN and END markers and the
    indentation of its BEGIN marker."""
    blocks = []
    opened = None
    lines = source.splitlines()
    for number, line in enumerate(lines):
        where = f"{path}:{number + 1}"
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if opened is not None:
                raise MarkerError(f"{where}: {BEGIN} inside the block opened at line "
                                  f"{opened[1] + 1}; close that one with {END} first")
            match = _BEGIN_LINE.match(line.rstrip())
            if match is None:
                raise MarkerError(f"{where}: malformed marker {stripped!r}; expected "
                                  f"'{BEGIN} ch01.2: what to do' (id chNN.K, a colon, a task)")
            task = match["task"]
            if '"' in task or "\\" in task:
                raise MarkerError(f"{where}: the task text may not contain '\"' or '\\', "
                                  f"got {task!r}")
            exercise = Exercise(match["id"], task, path.stem, number + 1)
            opened = (exercise, number, match["indent"])
        elif stripped.startswith(END):
            if stripped != END:
                raise MarkerError(f"{where}: malformed marker {stripped!r}; expected '{END}'")
            if opened is None:
                raise MarkerError(f"{where}: {END} without a {BEGIN} before it")
            exercise, begin, indent = opened
            if not any(text.strip() for text in lines[begin + 1:number]):
                raise MarkerError(f"{where}: exercise {exercise.id} has no code between "
                                  "its markers")
            blocks.append((exercise, begin, number, indent))
            opened = None
    if opened is not None:
        raise MarkerError(f"{path}:{opened[1] + 1}: {BEGIN} {opened[0].id} is never closed "
                          f"by {END}")
    return blocks


def _raise_line(exercise: Exercise, indent: str, path: Path) -> list[str]:
    """`raise NotImplementedError("exercise chNN.K: task")`, on two lines if one is too long."""
    message = f'"exercise {exercise.id}: {exercise.task}"'
    one_line = f"{indent}raise NotImplementedError({message})"
    if len(one_line) <= _MAX_LINE:
        return [one_line]
    second = f"{indent}    {message})"
    if len(second) > _MAX_LINE:
        raise MarkerError(f"{path}:{exercise.line}: the task text of {exercise.id} is too long "
                          f"for a {_MAX_LINE}-character line; shorten it by "
                          f"{len(second) - _MAX_LINE} characters")
    return [f"{indent}raise NotImplementedError(", second]


def _header(path: Path, exercises: list[Exercise]) -> list[str]:
    header = [f"# Made from lessons/solutions/{path.name} by `python -m tools.make_exercises`:",
              "# to change an exercise, change its solution and run that again."]
    if exercises:
        markers = ", ".join(exercise.marker for exercise in exercises)
        header += ["# Your turn: replace each `raise NotImplementedError(...)` with your code,",
                   "# then test it with `pytest -m <marker> --student`, one marker per exercise:",
                   f"# {markers}.",
                   "# ruff: noqa: F401"]  # the imports stay, for the code the student writes
    return header


def exercises_in(source: str, path: Path) -> list[Exercise]:
    """The exercises marked in one solution file's text (`path` names it in errors)."""
    return [exercise for exercise, *_ in _blocks(source, path)]


def make_stub(source: str, path: Path) -> str:
    """The student's version of a solution file: each marked block becomes a raise."""
    lines = source.splitlines()
    blocks = _blocks(source, path)
    stub = _header(path, [exercise for exercise, *_ in blocks])
    position = 0
    for exercise, begin, end, indent in blocks:
        stub += lines[position:begin] + _raise_line(exercise, indent, path)
        position = end + 1
    stub += lines[position:]
    return "\n".join(stub) + "\n"


def _solution_files(solutions: Path) -> list[Path]:
    """The solution modules in name order; __init__.py is each package's own."""
    return sorted(p for p in solutions.glob("*.py") if p.name != "__init__.py")


def find_exercises(solutions: Path = SOLUTIONS) -> list[Exercise]:
    """Every exercise in the solution files, by file then line; each id must be unique."""
    found: dict[str, Exercise] = {}
    for path in _solution_files(solutions):
        for exercise in exercises_in(path.read_text(), path):
            if exercise.id in found:
                first = found[exercise.id]
                raise MarkerError(f"{path}:{exercise.line}: exercise {exercise.id} is also "
                                  f"marked in {first.module}.py:{first.line}; ids must be unique")
            found[exercise.id] = exercise
    return list(found.values())


def expected_stubs(solutions: Path = SOLUTIONS) -> dict[str, str]:
    """File name -> the stub text the generator makes for it."""
    find_exercises(solutions)  # raises on duplicate ids across files
    return {path.name: make_stub(path.read_text(), path) for path in _solution_files(solutions)}


def drift(solutions: Path = SOLUTIONS, exercises: Path = EXERCISES) -> list[str]:
    """What differs between lessons/exercises/ and the stubs the solutions make, one
    problem per entry (a missing stub, a diff, a stub without a solution); [] if none."""
    expected = expected_stubs(solutions)
    problems = []
    for name, text in expected.items():
        path = exercises / name
        if not path.exists():
            problems.append(f"{path}: missing")
            continue
        committed = path.read_text()
        if committed != text:
            diff = difflib.unified_diff(committed.splitlines(), text.splitlines(),
                                        f"{path} (committed)", f"{path} (generated)",
                                        lineterm="", n=1)
            problems.append("\n".join(diff))
    for path in _solution_files(exercises):
        if path.name not in expected:
            problems.append(f"{path}: a stub without a solution in {solutions}")
    return problems


def write_stubs(solutions: Path = SOLUTIONS, exercises: Path = EXERCISES) -> list[Path]:
    """Write every stub whose text changed; return the paths written."""
    written = []
    exercises.mkdir(parents=True, exist_ok=True)
    for name, text in expected_stubs(solutions).items():
        path = exercises / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


def load(exercise: Exercise, student: bool) -> ModuleType:
    """The module holding `exercise`: the student's stub, or the reference solution."""
    package = "lessons.exercises" if student else "lessons.solutions"
    try:
        return importlib.import_module(f"{package}.{exercise.module}")
    except ModuleNotFoundError as error:
        if error.name != f"{package}.{exercise.module}":
            raise
        raise ModuleNotFoundError(
            f"exercise {exercise.id}: {package}.{exercise.module} does not exist; "
            "make the stubs with `python -m tools.make_exercises`") from error
