"""Exercises: marked blocks of the library itself, and the student's versions of them.

The reference answer of an exercise is the code minigen runs. In the library,
the body a student writes sits between two comment lines:

    class Exp(Function):
        def backward(self, gy):
            # (its docstring: y = e^x, so dL/dx = gy e^x = gy y; the shapes)
            ### BEGIN EXERCISE ch01.2: return dL/dx, reusing the output y = self.output()
            return gy * self.output()
            ### END EXERCISE

`python -m minigen.exercises start ch01.2` writes the student's copy of that
function into the workspace (exercises/ch01_2.py, which git ignores), with the
marked lines replaced by `raise NotImplementedError("exercise ch01.2: ...")`.
`install_student()` then puts every started exercise in place of the library's
function, everywhere the library's was imported, so `--student` on a lesson or
on pytest runs the student's code in the whole library. `check ch01.2` runs the
exercise's tests (marker ch01_2) on it and prints a short verdict.

An exercise is one function: a module-level function or a method of a
module-level class. Its id chNN.K is unique; the text after the colon is the
stub's error message (short, without '"' or backslash).
"""
from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import os
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

PACKAGE = Path(__file__).resolve().parents[1]  # minigen/
REPOSITORY = PACKAGE.parent
BEGIN = "### BEGIN EXERCISE"
END = "### END EXERCISE"
_BEGIN_LINE = re.compile(
    r"^(?P<indent>[ ]*)### BEGIN EXERCISE (?P<id>ch\d\d\.\d+): (?P<task>\S.*)$")
_ID = re.compile(r"^ch(\d\d)[._](\d+)$")
_MAX_LINE = 99


class MarkerError(ValueError):
    """A library file's exercise markers are malformed; the message names file and line."""


class ExerciseNotDone(NotImplementedError):
    """A started exercise whose stub still raises: the message says what to do next."""


@dataclass(frozen=True)
class Exercise:
    """One marked exercise.

    id: 'ch03.1'; task: what to write; module: 'minigen.models.vae';
    qualname: 'reparameterize', or 'Mul.backward' for a method; path: the library file;
    begin, end: the 1-based lines of its BEGIN and END markers.
    """

    id: str
    task: str
    module: str
    qualname: str
    path: Path
    begin: int
    end: int

    @property
    def marker(self) -> str:
        """The pytest marker of its tests: 'ch03.1' -> 'ch03_1'."""
        return self.id.replace(".", "_")

    @property
    def name(self) -> str:
        """The function's own name: 'backward' for 'Mul.backward'."""
        return self.qualname.split(".")[-1]

    @property
    def where(self) -> str:
        """'minigen/models/vae.py:62', for messages."""
        return f"{_shown(self.path)}:{self.begin}"

    def sort_key(self) -> tuple[int, int]:
        chapter, number = _ID.match(self.id).groups()
        return int(chapter), int(number)


def _shown(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(REPOSITORY))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- finding the marked blocks


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef]]:
    """(qualname, node) of every module-level function and method of a module-level class."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield f"{node.name}.{item.name}", item


def _marked_blocks(source: str, path: Path) -> list[tuple[str, str, int, int]]:
    """(id, task, begin, end) of each marked block, 1-based marker lines, checked for form."""
    blocks = []
    opened = None
    for number, line in enumerate(source.splitlines(), start=1):
        where = f"{_shown(path)}:{number}"
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if opened is not None:
                raise MarkerError(f"{where}: {BEGIN} inside the block opened at line "
                                  f"{opened[2]}; close that one with {END} first")
            match = _BEGIN_LINE.match(line.rstrip())
            if match is None:
                raise MarkerError(f"{where}: malformed marker {stripped!r}; expected "
                                  f"'{BEGIN} ch03.1: what to do' (id chNN.K, a colon, a task)")
            if '"' in match["task"] or "\\" in match["task"]:
                raise MarkerError(f"{where}: the task text may not contain '\"' or '\\', "
                                  f"got {match['task']!r}")
            opened = (match["id"], match["task"], number)
        elif stripped.startswith(END):
            if stripped != END:
                raise MarkerError(f"{where}: malformed marker {stripped!r}; expected '{END}'")
            if opened is None:
                raise MarkerError(f"{where}: {END} without a {BEGIN} before it")
            blocks.append((*opened, number))
            opened = None
    if opened is not None:
        raise MarkerError(f"{_shown(path)}:{opened[2]}: {BEGIN} {opened[0]} is never closed "
                          f"by {END}")
    return blocks


def exercises_in(source: str, path: Path, module: str) -> list[Exercise]:
    """The exercises marked in one file's text; `path` and `module` name it."""
    blocks = _marked_blocks(source, path)
    if not blocks:
        return []
    functions = list(_functions(ast.parse(source, str(path))))
    found = []
    for exercise_id, task, begin, end in blocks:
        owners = [(qualname, node) for qualname, node in functions
                  if node.lineno < begin < node.end_lineno]
        if not owners:
            raise MarkerError(f"{_shown(path)}:{begin}: exercise {exercise_id} must sit inside "
                              "a module-level function or a method of a module-level class")
        qualname, node = owners[-1]
        if node.decorator_list:
            raise MarkerError(f"{_shown(path)}:{begin}: exercise {exercise_id} is in the "
                              f"decorated function {qualname}; mark an undecorated one")
        code = [line for line in source.splitlines()[begin:end - 1] if line.strip()
                and not line.strip().startswith("#")]
        if not code:
            raise MarkerError(f"{_shown(path)}:{end}: exercise {exercise_id} has no code "
                              "between its markers")
        found.append(Exercise(exercise_id, task, module, qualname, path, begin, end))
    if len({e.qualname for e in found}) != len(found):
        raise MarkerError(f"{_shown(path)}: one function holds two exercises; "
                          "mark one block per function")
    return found


def _library_files() -> list[Path]:
    """The library's modules, without this package (whose docstrings show the markers)."""
    here = Path(__file__).resolve().parent
    return sorted(p for p in PACKAGE.rglob("*.py") if here not in p.parents)


@functools.lru_cache(maxsize=1)
def find_exercises() -> tuple[Exercise, ...]:
    """Every exercise marked in minigen/, in the order of their ids; ids are unique."""
    found: dict[str, Exercise] = {}
    for path in _library_files():
        source = path.read_text()
        if BEGIN not in source:
            continue
        for exercise in exercises_in(source, path, _module_name(path)):
            if exercise.id in found:
                raise MarkerError(f"{exercise.where}: exercise {exercise.id} is also marked at "
                                  f"{found[exercise.id].where}; ids must be unique")
            found[exercise.id] = exercise
    return tuple(sorted(found.values(), key=Exercise.sort_key))


def get(exercise_id: str) -> Exercise:
    """The exercise 'ch03.1' (or 'ch03_1'); a clear error listing the ids otherwise."""
    match = _ID.match(exercise_id.strip())
    wanted = f"ch{match[1]}.{match[2]}" if match else exercise_id
    for exercise in find_exercises():
        if exercise.id == wanted:
            return exercise
    known = ", ".join(e.id for e in find_exercises())
    raise KeyError(f"no exercise {exercise_id!r}; the exercises are: {known}")


# ---------------------------------------------------------------- the student's stub


def _raise_lines(exercise: Exercise, indent: str) -> list[str]:
    """`raise NotImplementedError("exercise chNN.K: task")`, on two lines if one is too long."""
    message = f'"exercise {exercise.id}: {exercise.task}"'
    one_line = f"{indent}raise NotImplementedError({message})"
    if len(one_line) <= _MAX_LINE:
        return [one_line]
    second = f"{indent}    {message})"
    if len(second) > _MAX_LINE:
        raise MarkerError(f"{exercise.where}: the task text of {exercise.id} is too long for a "
                          f"{_MAX_LINE}-character line; shorten it by "
                          f"{len(second) - _MAX_LINE} characters")
    return [f"{indent}raise NotImplementedError(", second]


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """An import statement with a relative `from .x import y` made absolute."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        node = ast.ImportFrom(".".join(base + ([node.module] if node.module else [])),
                              node.names, 0)
    return ast.unparse(node)


def _bound_name(alias: ast.alias) -> str:
    """The name an import binds: `import a.b` binds a, `from x import y as z` binds z."""
    return alias.asname or alias.name.split(".")[0]


def _imports_for(exercise: Exercise, tree: ast.Module, function: ast.AST) -> list[str]:
    """The imports the function needs: those of its library module whose names it uses,
    and the module-level names (functions, classes, constants) it refers to."""
    is_package = exercise.path.name == "__init__.py"
    used = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)}
    if "." not in exercise.qualname:
        used.discard(exercise.name)  # the student writes it
    lines, defined = [], set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            names = [alias for alias in node.names if _bound_name(alias) in used]
            if not names:
                continue
            if isinstance(node, ast.Import):
                lines.append(ast.unparse(ast.Import(names)))
            else:
                lines.append(_absolute(ast.ImportFrom(node.module, names, node.level),
                                       exercise.module, is_package))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined.update(t.id for t in targets if isinstance(t, ast.Name))
    wanted = sorted(used & defined)
    if wanted:
        lines.append(f"from {exercise.module} import {', '.join(wanted)}")
    return lines


def _comment(sentence: str) -> list[str]:
    """A sentence as comment lines under the line limit."""
    return textwrap.wrap(sentence, _MAX_LINE - 2, initial_indent="# ", subsequent_indent="#   ",
                         break_long_words=False, break_on_hyphens=False)


def make_stub(exercise: Exercise) -> str:
    """The text of the student's file for `exercise`: a header saying what to do, the
    library module's imports, and the function with its marked lines made a raise."""
    source = exercise.path.read_text()
    tree = ast.parse(source)
    function = dict(_functions(tree))[exercise.qualname]
    lines = source.splitlines()
    begin_line = lines[exercise.begin - 1]
    indent = begin_line[:len(begin_line) - len(begin_line.lstrip())]
    body = (lines[function.lineno - 1:exercise.begin - 1] + _raise_lines(exercise, indent)
            + lines[exercise.end:max(exercise.end, function.end_lineno)])
    code = textwrap.dedent("\n".join(body))
    kind = "the method" if "." in exercise.qualname else "the function"
    kind = f"{kind} {exercise.qualname}"
    sentences = [
        f"Exercise {exercise.id}: {exercise.task}.",
        f"Your version of {kind} in {_shown(exercise.path)}.",
        "Replace the `raise NotImplementedError(...)` with your code, then:",
    ]
    if exercise.name == "backward":  # an op's backward: say what self holds
        sentences.insert(2, "self is the op's node in the graph: self.inputs are the Tensors "
                            "its forward was given, self.output() the Tensor it made.")
    commands = [
        f"    python -m minigen.exercises check {exercise.id}     # its tests, on your code",
        "    python -m lessons.<lesson> --student       # every lesson then runs your code",
    ]
    after = [
        f"Start over: python -m minigen.exercises reset {exercise.id} (keeps a .bak copy).",
        f"Stuck? The library's own answer is the marked block at {exercise.where}.",
    ]
    header = [line for sentence in sentences for line in _comment(sentence)]
    header += [f"#{command}" for command in commands]
    header += [line for sentence in after for line in _comment(sentence)]
    header += ["# ruff: noqa: F401",  # the imports stay, for the code the student writes
               "from __future__ import annotations", ""]
    return "\n".join(header + _imports_for(exercise, tree, function) + ["", "", code]) + "\n"


# ---------------------------------------------------------------- the workspace


def workspace() -> Path:
    """Where the student's files live: $MINIGEN_EXERCISES, else exercises/ at the
    repository root (next to minigen/), else ./exercises."""
    if os.environ.get("MINIGEN_EXERCISES"):
        return Path(os.environ["MINIGEN_EXERCISES"])
    if (REPOSITORY / "pyproject.toml").exists():
        return REPOSITORY / "exercises"
    return Path.cwd() / "exercises"


def student_file(exercise: Exercise, folder: Path | None = None) -> Path:
    """The student's file of `exercise`: exercises/ch03_1.py."""
    return (folder or workspace()) / f"{exercise.marker}.py"


def started(folder: Path | None = None) -> list[Exercise]:
    """The exercises whose student file exists, in id order."""
    return [e for e in find_exercises() if student_file(e, folder).exists()]


def start(exercise: Exercise, folder: Path | None = None) -> Path:
    """Write the stub of `exercise` into the workspace; never overwrites the student's file."""
    path = student_file(exercise, folder)
    if path.exists():
        raise FileExistsError(f"{_shown(path)} exists already (your answer to {exercise.id}); "
                              f"to start over, run python -m minigen.exercises reset "
                              f"{exercise.id}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(make_stub(exercise))
    return path


def reset(exercise: Exercise, folder: Path | None = None) -> tuple[Path, Path | None]:
    """Write a fresh stub; the student's previous file, if any, is kept as ch03_1.py.bak.
    Returns (the stub, the backup or None)."""
    path = student_file(exercise, folder)
    backup = None
    if path.exists():
        backup = path.with_suffix(".py.bak")
        path.replace(backup)
    return start(exercise, folder), backup


# ---------------------------------------------------------------- running the student's code


def load_student(exercise: Exercise, folder: Path | None = None) -> Callable:
    """The student's function of `exercise`, imported from its workspace file."""
    path = student_file(exercise, folder)
    name = f"minigen_student.{exercise.marker}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    function = getattr(module, exercise.name, None)
    if not callable(function):
        raise AttributeError(f"{_shown(path)} must define the function {exercise.name}() of "
                             f"exercise {exercise.id}; it does not")
    return function


def _not_done_message(exercise: Exercise, folder: Path | None) -> str:
    return (f"exercise {exercise.id} is not written yet: {exercise.qualname} in "
            f"{_shown(student_file(exercise, folder))} still raises NotImplementedError "
            f"({exercise.task}); write it, then run `python -m minigen.exercises check "
            f"{exercise.id}`")


def _guarded(exercise: Exercise, function: Callable, folder: Path | None) -> Callable:
    """The student's function, turning the untouched stub's raise into one clear line."""
    stub_message = f"exercise {exercise.id}:"

    @functools.wraps(function)
    def student_version(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except NotImplementedError as error:
            if isinstance(error, ExerciseNotDone) or not str(error).startswith(stub_message):
                raise
            raise ExerciseNotDone(_not_done_message(exercise, folder)) from None

    student_version.exercise = exercise  # type: ignore[attr-defined]
    return student_version


def _owner(exercise: Exercise) -> Any:
    """The module, or the class in it, whose attribute the exercise's function is."""
    owner: Any = importlib.import_module(exercise.module)
    for part in exercise.qualname.split(".")[:-1]:
        owner = getattr(owner, part)
    return owner


def reference(exercise_id: str) -> Callable:
    """The library's own function of an exercise, even while a student's is installed."""
    exercise = get(exercise_id)
    for installed_exercise, _, original, _ in _INSTALLED:
        if installed_exercise == exercise:
            return original
    return getattr(_owner(exercise), exercise.name)


# (exercise, owner, library's function, student's function), for uninstall()
_INSTALLED: list[tuple[Exercise, Any, Callable, Callable]] = []


def _replace_everywhere(old: Any, new: Any) -> None:
    """Point every loaded module's name bound to `old` (a `from x import f`) at `new`."""
    for module in list(sys.modules.values()):
        if not isinstance(module, ModuleType):
            continue
        namespace = getattr(module, "__dict__", {})
        for name, value in list(namespace.items()):
            if value is old:
                namespace[name] = new


def install_student(folder: Path | None = None) -> list[Exercise]:
    """Put the student's version of every started exercise in place of the library's.

    A function is replaced in its module and in every loaded module that imported it
    by name; a method is replaced on its class. Returns the exercises installed.
    uninstall() puts the library's versions back.
    """
    installed = []
    for exercise in started(folder):
        if any(e == exercise for e, *_ in _INSTALLED):
            continue
        owner = _owner(exercise)
        original = owner.__dict__[exercise.name]
        student = _guarded(exercise, load_student(exercise, folder), folder)
        setattr(owner, exercise.name, student)
        if isinstance(owner, ModuleType):
            _replace_everywhere(original, student)
        _INSTALLED.append((exercise, owner, original, student))
        installed.append(exercise)
    return installed


def uninstall() -> None:
    """Put the library's own functions back where install_student() replaced them."""
    while _INSTALLED:
        exercise, owner, original, student = _INSTALLED.pop()
        setattr(owner, exercise.name, original)
        if isinstance(owner, ModuleType):
            _replace_everywhere(student, original)
        sys.modules.pop(f"minigen_student.{exercise.marker}", None)


def installed() -> list[Exercise]:
    """The exercises whose student version is in place now."""
    return [exercise for exercise, *_ in _INSTALLED]


__all__ = ["BEGIN", "END", "Exercise", "ExerciseNotDone", "MarkerError", "exercises_in",
           "find_exercises", "get", "install_student", "installed", "load_student",
           "make_stub", "reference", "reset", "start", "started", "student_file",
           "uninstall", "workspace"]
