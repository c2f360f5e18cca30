"""F's docstring is the map of every F function and the file that defines it: keep it true."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import minigen.nn.functional as F

ROOT = Path(F.__file__).resolve().parents[2]


def documented_homes() -> dict[str, Path]:
    """name -> the file F's docstring says defines it. A row is 'group  names  file'; a
    row without a file continues the one above; 'here' is nn/functional.py itself."""
    table = F.__doc__.split("Where each one is defined:\n\n")[1].split("\n\n")[0]
    homes: dict[str, Path] = {}
    rows: list[tuple[list[str], str | None]] = []
    for line in table.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        file = cells[-1] if cells[-1] == "here" or cells[-1].endswith(".py") else None
        names = cells[1] if len(cells) == 3 else cells[0] if file is None else cells[-2]
        rows.append((re.findall(r"\w+", names), file))
    for i, (names, row_file) in enumerate(rows):
        file = row_file or next(f for _, f in reversed(rows[:i]) if f)
        for name in names:
            homes[name] = Path(F.__file__).resolve() if file == "here" else ROOT / file
    return homes


def test_every_F_function_is_on_the_map_with_the_file_that_defines_it():
    homes = documented_homes()
    for name in F.__all__:
        assert name in homes, f"F.{name} is missing from F's docstring map"
        defined_in = Path(inspect.getsourcefile(getattr(F, name))).resolve()
        assert defined_in == homes[name], f"F.{name} lives in {defined_in}, not {homes[name]}"
