"""python -m benchmarks: every model's training step beside its PyTorch twin, one table
(benchmarks/table.py says what each column measures)."""
from benchmarks.table import main

main()
