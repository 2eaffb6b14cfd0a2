"""Row-level validation of a screened drop with the GX suites in ``expectations/``."""
