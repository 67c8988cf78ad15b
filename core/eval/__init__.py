"""`vidtt eval`: answer quality measured on benchmarks stored locally (docs/eval.md).

`vidtt.eval.sets` reads each benchmark's files as users download them into one kind of
question; `vidtt.eval.scoring` scores predictions by each benchmark's published rules.
"""
