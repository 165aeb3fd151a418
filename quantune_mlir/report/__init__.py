"""Reports a person reads: the plots here, report.json and report.md (issue 5)."""
