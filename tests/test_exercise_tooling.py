"""The exercise machinery (minigen/exercises): markers, stubs, the workspace, --student.

The exercises' own tests are in tests/test_exercises_chNN.py, one file per chapter.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from minigen import exercises
from minigen.exercises import Exercise, MarkerError

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"pytest\.mark\.(ch\d\d_\d+)\b")

LIBRARY = '''"""A library module."""
import math

import numpy as np

from minigen.autograd import Tensor

SCALE = 2.0


def helper(x):
    return x


def area(r: float) -> float:
    """The area of a circle of radius r: pi r^2."""
    if r < 0:
        raise ValueError("r must be >= 0")
    ### BEGIN EXERCISE ch09.1: return the area of a circle of radius r
    squared = helper(r) * r
    return math.pi * squared
    ### END EXERCISE


class Shape:
    def scale(self, k):
        """Multiply the side by k."""
        ### BEGIN EXERCISE ch09.2: scale the side by k
        self.side = self.side * k * SCALE / SCALE
        return self
        ### END EXERCISE
'''


def library_file(tmp_path: Path, source: str = LIBRARY, name: str = "shapes.py") -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def found_in(path: Path) -> list[Exercise]:
    return exercises.exercises_in(path.read_text(), path, "minigen.shapes")


def test_markers_name_the_function_and_lines_of_each_exercise(tmp_path):
    path = library_file(tmp_path)
    found = found_in(path)
    assert [(e.id, e.marker, e.qualname, e.name, e.begin, e.end) for e in found] == [
        ("ch09.1", "ch09_1", "area", "area", 19, 22),
        ("ch09.2", "ch09_2", "Shape.scale", "scale", 28, 31)]


def test_a_stub_keeps_the_docstring_and_the_code_around_the_block(tmp_path):
    area, scale = found_in(library_file(tmp_path))
    stub = exercises.make_stub(area)
    assert "import math\n" in stub and "from minigen.shapes import helper\n" in stub
    assert "import numpy" not in stub and "Tensor" not in stub  # area uses neither
    assert '    """The area of a circle of radius r: pi r^2."""' in stub
    assert '        raise ValueError("r must be >= 0")' in stub
    assert ('    raise NotImplementedError("exercise ch09.1: return the area of a circle of '
            'radius r")') in stub
    assert "squared" not in stub and "BEGIN EXERCISE" not in stub
    namespace: dict = {}
    exec(compile(stub.replace("from minigen.shapes import helper", "helper = abs"),
                 "stub.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r"^exercise ch09\.1: return the area"):
        namespace["area"](2.0)
    with pytest.raises(ValueError):
        namespace["area"](-1.0)
    method = exercises.make_stub(scale)
    assert "the method Shape.scale in" in method
    assert "\ndef scale(self, k):\n" in method  # a plain function, installed on the class
    assert "from minigen.shapes import SCALE\n" in method


def test_a_long_task_wraps_onto_a_second_line_and_a_too_long_one_is_an_error(tmp_path):
    def marked(task: str) -> str:
        return f"def f():\n    ### BEGIN EXERCISE ch09.3: {task}\n    return 1\n" \
               "    ### END EXERCISE\n"

    task = "x" * 60
    (exercise,) = found_in(library_file(tmp_path, marked(task)))
    stub = exercises.make_stub(exercise)
    assert f'    raise NotImplementedError(\n        "exercise ch09.3: {task}")\n' in stub
    assert max(len(line) for line in stub.splitlines()) < 100
    (too_long,) = found_in(library_file(tmp_path, marked("x" * 90), "long.py"))
    with pytest.raises(MarkerError, match=r"long\.py:2: .* too long"):
        exercises.make_stub(too_long)


def body(lines: str) -> str:
    return "def f():\n" + "".join(f"    {line}\n" for line in lines.split("\n"))


@pytest.mark.parametrize("source, message", [
    (body("### BEGIN EXERCISE ch09.1: a\nx = 1"), r"bad\.py:2: .* never closed"),
    (body("x = 1\n### END EXERCISE"), r"bad\.py:3: .* without a"),
    (body("### BEGIN EXERCISE ch09.1: a\n### BEGIN EXERCISE ch09.2: b\nx = 1\n"
          "### END EXERCISE"), r"bad\.py:3: .* inside the block opened at line 2"),
    (body("### BEGIN EXERCISE ch9.1: a\nx = 1\n### END EXERCISE"), r"bad\.py:2: malformed"),
    (body("### BEGIN EXERCISE ch09.1 a\nx = 1\n### END EXERCISE"), r"bad\.py:2: malformed"),
    (body("### BEGIN EXERCISE ch09.1: a\n# only a comment\n### END EXERCISE\nreturn 1"),
     r"bad\.py:4: .* no code"),
    (body('### BEGIN EXERCISE ch09.1: say "hi"\nx = 1\n### END EXERCISE'), r"may not contain"),
    (body("### BEGIN EXERCISE ch09.1: a\nx = 1\n### END EXERCISE here"), r"bad\.py:4: malformed"),
    ("x = 0\n### BEGIN EXERCISE ch09.1: a\nx = 1\n### END EXERCISE\n",
     r"bad\.py:2: .* inside a module-level function"),
    ("import functools\n\n\n@functools.cache\n" + body("### BEGIN EXERCISE ch09.1: a\nreturn 1\n"
                                                      "### END EXERCISE"), r"decorated"),
])
def test_malformed_markers_are_errors_naming_the_line(tmp_path, source, message):
    with pytest.raises(MarkerError, match=message):
        found_in(library_file(tmp_path, source, "bad.py"))


def test_the_library_marks_each_exercise_once_with_a_well_formed_stub():
    found = exercises.find_exercises()
    ids = [e.id for e in found]
    assert len(ids) == len(set(ids)) >= 8
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i[2:].split("."))))
    for exercise in found:
        stub = exercises.make_stub(exercise)
        compile(stub, exercise.marker, "exec")  # valid Python
        assert f'"exercise {exercise.id}: {exercise.task}")' in stub
        assert max(len(line) for line in stub.splitlines()) < 100


def definitions_of(name: str, *folders: str) -> list[Path]:
    """The .py and .md files under `folders` that hold a `def name(`."""
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*"))
            if p.suffix in (".py", ".md")
            and re.search(rf"^\s*def {name}\(", p.read_text(), re.M)]


def test_each_formula_of_the_exercises_is_defined_once():
    # the reference answer is the library's code: no copy in lessons/ or a README (what
    # `grep -rn "def reparameterize" minigen lessons` shows)
    for name in ("reparameterize", "kl_divergence", "vae_loss", "gradient_penalty",
                 "critic_loss", "adam_step", "im2col_simple", "conv2d_simple", "causal_mask"):
        assert len(definitions_of(name, "minigen", "lessons")) == 1, name
    for exercise in exercises.find_exercises():
        assert exercise.path in definitions_of(exercise.name, "minigen")
        assert definitions_of(exercise.name, "lessons") == [], exercise.id


def test_every_exercise_has_a_registered_marker_and_a_test(pytestconfig):
    registered = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    tested = {m for p in (ROOT / "tests").glob("test_*.py") for m in MARKER.findall(p.read_text())}
    for exercise in exercises.find_exercises():
        assert exercise.marker in registered
        assert exercise.marker in tested, f"exercise {exercise.id} has no test"


# ---------------------------------------------------------------- the workspace and --student


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    folder = tmp_path / "exercises"
    monkeypatch.setenv("MINIGEN_EXERCISES", str(folder))
    yield folder
    exercises.uninstall()


def cli(*args: str, workspace: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "MINIGEN_EXERCISES": str(workspace),
                   "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=environment)


def test_start_writes_the_stub_and_never_overwrites_an_answer(workspace):
    exercise = exercises.get("ch03_1")
    path = exercises.start(exercise)
    assert path == workspace / "ch03_1.py"
    assert path.read_text() == exercises.make_stub(exercise)
    path.write_text(path.read_text() + "# my answer\n")
    with pytest.raises(FileExistsError, match="reset ch03.1"):
        exercises.start(exercise)
    fresh, backup = exercises.reset(exercise)
    assert fresh.read_text() == exercises.make_stub(exercise)
    assert backup.read_text().endswith("# my answer\n")
    assert exercises.started() == [exercise]


def test_unknown_ids_list_the_known_ones():
    with pytest.raises(KeyError, match=r"no exercise 'ch99.1'; the exercises are: .*ch03\.1"):
        exercises.get("ch99.1")


CORRECT_REPARAMETERIZE = '''
    eps = mg.randn_like(mu)
    return mu + (0.5 * log_var).exp() * eps
'''


def answer(exercise_id: str, code: str, workspace: Path) -> Path:
    """Start an exercise and write `code` in place of its raise."""
    path = exercises.start(exercises.get(exercise_id))
    text = re.sub(r"    raise NotImplementedError\((\n\s+)?\"exercise [^\n]*\n",
                  code.lstrip("\n"), path.read_text())
    path.write_text(text)
    return path


def test_install_puts_the_students_code_everywhere_the_library_is_imported(workspace):
    from minigen.models import vae

    library = vae.reparameterize
    answer("ch03.1", "    return mu * 0.0 + 7.0\n", workspace)
    namespace = {}
    exec("from minigen.models.vae import reparameterize", namespace)
    imported_before = sys.modules[__name__]
    imported_before.imported = library  # a module that imported it by name
    try:
        assert exercises.install_student() == [exercises.get("ch03.1")]
        assert vae.reparameterize is not library
        assert imported_before.imported is vae.reparameterize  # the name was re-pointed
        import minigen as mg
        assert vae.reparameterize(mg.zeros(2), mg.zeros(2)).tolist() == [7.0, 7.0]
        assert exercises.reference("ch03.1") is library
        exercises.uninstall()
        assert vae.reparameterize is library and imported_before.imported is library
    finally:
        del imported_before.imported


def test_an_untouched_stub_stops_with_one_line_naming_the_exercise(workspace):
    import minigen as mg
    from minigen.models import vae

    exercises.start(exercises.get("ch03.2"))
    exercises.install_student()
    with pytest.raises(exercises.ExerciseNotDone,
                       match=r"exercise ch03\.2 is not written yet: kl_divergence in .* "
                             r"run `python -m minigen.exercises check ch03\.2`"):
        vae.kl_divergence(mg.zeros(1, 2), mg.zeros(1, 2))
    run = cli("lessons.ch03_vae", "--smoke", "--student", "--outputs",
              str(workspace.parent / "out"), workspace=workspace)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr  # above the line: only the progress bar
    assert run.stderr.strip().splitlines()[-1:] == [
        f"error: exercise ch03.2 is not written yet: kl_divergence in {workspace}/ch03_2.py "
        "still raises NotImplementedError (return the closed-form KL of each row, shape (N,)); "
        "write it, then run `python -m minigen.exercises check ch03.2`"]


def test_a_scripted_student_starts_checks_and_trains_with_their_code(workspace):
    # ch03.1 right, and it leaves a trace each time the library calls it
    answer("ch03.1", "    CALLS.append(1)\n    (Path(__file__).parent / 'called.txt')"
                     ".write_text(str(len(CALLS)))\n" + CORRECT_REPARAMETERIZE, workspace)
    path = workspace / "ch03_1.py"
    path.write_text(path.read_text().replace(
        "from __future__ import annotations\n",
        "from __future__ import annotations\n\nfrom pathlib import Path\n\nCALLS = []\n"))
    answer("ch03.2", "    return -0.5 * (1.0 + log_var - mu * mu - log_var.exp()).sum(1)\n",
           workspace)
    for exercise_id in ("ch03.1", "ch03.2"):
        run = cli("minigen.exercises", "check", exercise_id, workspace=workspace)
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"exercise {exercise_id}: all" in run.stdout and "checks pass" in run.stdout

    lesson = cli("lessons.ch03_vae", "--smoke", "--student", "--outputs",
                 str(workspace.parent / "out"), workspace=workspace)
    assert lesson.returncode == 0, lesson.stderr[-3000:]
    assert "--student: running your code for ch03.1, ch03.2" in lesson.stdout
    assert int((workspace / "called.txt").read_text()) > 10  # every training step used it

    # a wrong answer: sigma = exp(log_var) instead of exp(log_var / 2)
    path.write_text(path.read_text().replace("(0.5 * log_var).exp()", "log_var.exp()"))
    run = cli("minigen.exercises", "check", "ch03.1", workspace=workspace)
    assert run.returncode == 1
    assert re.search(r"FAIL  reparameterize .*DIFFERENT", run.stdout), run.stdout
    # 4 checks where 'cuda' runs too (a GPU, or the stand-in under MINIGEN_FAKE_CUDA=1)
    assert re.search(r"exercise ch03\.1: [12] of [34] checks failed", run.stdout), run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_student_mode_without_any_exercise_says_so_in_one_line(workspace):
    run = cli("lessons.ch01_autograd", "--smoke", "--student", "--outputs",
              str(workspace.parent / "out"), workspace=workspace)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"--student: no exercise started in {workspace}, so this runs the library's" \
           in run.stdout


def test_the_command_line_lists_starts_and_refuses_bad_ids(workspace):
    started = cli("minigen.exercises", "start", "ch04.3", workspace=workspace)
    assert started.returncode == 0 and "ch04_3.py" in started.stdout
    again = cli("minigen.exercises", "start", "ch04.3", workspace=workspace)
    assert again.returncode == 2 and "exists already" in again.stderr
    listing = cli("minigen.exercises", "list", workspace=workspace)
    assert listing.returncode == 0
    assert re.search(r"ch04\.3 +generator_loss .*\n.*minigen/models/wgan_gp\.py:\d+ +started, "
                     r"untouched", listing.stdout), listing.stdout
    assert re.search(r"ch03\.1 +reparameterize .*\n.* not started", listing.stdout)
    unknown = cli("minigen.exercises", "check", "ch42.1", workspace=workspace)
    assert unknown.returncode == 2 and "no exercise 'ch42.1'" in unknown.stderr


def test_the_untouched_stubs_fail_every_exercise_test_with_their_message(workspace):
    for exercise in exercises.find_exercises():
        exercises.start(exercise)
    files = [p for p in sorted((ROOT / "tests").glob("test_*.py"))
             if MARKER.search(p.read_text())]
    report = workspace.parent / "student.xml"
    selection = " or ".join(e.marker for e in exercises.find_exercises())
    run = cli("pytest", *map(str, files), "--student", "-m", selection, "-p", "no:cacheprovider",
              f"--junitxml={report}", workspace=workspace)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    failed: set[str] = set()
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("skipped") is not None:
            continue
        owners = [p.get("value") for p in case.iter("property") if p.get("name") == "exercise"]
        assert owners, f"{name} carries an exercise marker but does not use the fixture"
        outcome = case.find("failure")
        assert outcome is not None, f"{name} did not fail on the untouched stub"
        text = outcome.get("message", "") + (outcome.text or "")
        assert any(f"exercise {owner} is not written yet" in text for owner in owners), \
            f"{name} failed, but not with the message of {owners}:\n{text[-2000:]}"
        failed.update(owners)
    assert failed == {e.id for e in exercises.find_exercises()}, \
        "every exercise needs a test that fails on its untouched stub"
