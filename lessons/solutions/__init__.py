"""Reference solutions to the exercises: the single source of truth for the stubs.

Each exercise body sits between `### BEGIN SOLUTION chNN.K: ...` and `### END SOLUTION`;
`python -m tools.make_exercises` turns these files into lessons/exercises/.
"""
