"""Jobs: a JSONL file of requests answered resumably, here (`local`) or on Ray (`ray`); the
output records both write are in `records`."""

from vidtt._lazy import exports

_LOCAL = "vidtt.jobs.local"
__getattr__ = exports(
    __name__,
    {
        "JobPlan": _LOCAL,
        "Summary": _LOCAL,
        "plan_job": _LOCAL,
        "run_jobs": _LOCAL,
        "read_output": "vidtt.jobs.records",
        "check_job_files": _LOCAL,
    },
)
__all__ = ["JobPlan", "Summary", "check_job_files", "plan_job", "read_output", "run_jobs"]
