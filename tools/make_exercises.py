"""Make the student stubs in lessons/exercises/ from the solutions in lessons/solutions/.

    python -m tools.make_exercises           # write the stubs that changed
    python -m tools.make_exercises --check   # exit 1 if a committed stub has drifted

In each solution file, the lines between `### BEGIN SOLUTION chNN.K: what to do` and
`### END SOLUTION` become `raise NotImplementedError("exercise chNN.K: what to do")`
(lessons/stubs.py does the work; this is its command line).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lessons import stubs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a stub differs from what would be made")
    parser.add_argument("--solutions", type=Path, default=stubs.SOLUTIONS,
                        help="folder of solution files (default: lessons/solutions)")
    parser.add_argument("--exercises", type=Path, default=stubs.EXERCISES,
                        help="folder of stubs (default: lessons/exercises)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = stubs.drift(args.solutions, args.exercises)
            for problem in problems:
                print(problem)
            if problems:
                print(f"{len(problems)} stub(s) out of date: run python -m tools.make_exercises")
                return 1
            print(f"all stubs in {args.exercises} match their solutions")
            return 0
        written = stubs.write_stubs(args.solutions, args.exercises)
    except stubs.MarkerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    exercises = stubs.find_exercises(args.solutions)
    print(f"{len(exercises)} exercises, {len(written)} stub file(s) changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
