"""Tutorial-style scripts that run unchanged on minigen and on PyTorch, apart from their
import line; python -m examples.compare trains each in both, side by side."""
