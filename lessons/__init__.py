"""Lessons: one runnable script per book chapter, e.g. `python -m lessons.ch01_autograd`.

common.py holds their shared plumbing. The exercises are marked blocks of the library
itself (`python -m minigen.exercises list`); see lessons/README.md.
"""
