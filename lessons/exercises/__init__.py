"""Your answers to the exercises: stubs made from lessons/solutions/ by tools/make_exercises.py.

Replace a `raise NotImplementedError(...)` with your code and test it with
`pytest -m ch01_1 --student` (the marker is the exercise id with '_' for '.').
"""
