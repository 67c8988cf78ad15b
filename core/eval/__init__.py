"""`vidtt eval`: answer quality measured on benchmarks stored locally (docs/eval.md).

`vidtt.eval.questions` and `vidtt.eval.benchmarks` read one's own JSONL and each benchmark's
files as users download them into `Question`s; the scoring modules score predictions by each
benchmark's published rules.
"""
