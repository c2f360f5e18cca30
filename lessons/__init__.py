"""Lessons: one runnable script per book chapter, e.g. `python -m lessons.ch01_autograd`.

common.py holds their shared plumbing; solutions/ and exercises/ hold the exercises
(see lessons/README.md).
"""
