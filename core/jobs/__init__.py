"""Jobs: a JSONL file of requests answered resumably, here (`local`) or on Ray (`ray`)."""

from vidtt._lazy import exports

_LOCAL = "vidtt.jobs.local"
__getattr__ = exports(
    __name__,
    {"plan_job": _LOCAL, "run_jobs": _LOCAL, "read_output": _LOCAL, "check_job_files": _LOCAL},
)
__all__ = ["check_job_files", "plan_job", "read_output", "run_jobs"]
