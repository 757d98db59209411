"""The benchmarks: `lakelab bench [NAME...]` (bench/cli.py) runs them on the running stack and
writes bench/results/<date>/report.md, report.json and PNG plots (bench/report.py)."""
