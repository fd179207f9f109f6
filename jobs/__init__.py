"""Cluster operations for solve-verify (see jobs/README.md).

- :mod:`jobs.submit`     submit a pipeline run as a Ray job; follow, status, stop, where, list
- :mod:`jobs.nightly`    the nightly benchmark runner (spec in conf/nightly.yaml, conf/nightly/tiny.yaml)
- :mod:`jobs.history`    the partitioned Parquet history of nightly metrics
- :mod:`jobs.regression` the rule that flags a night against the spread of past nights
- :mod:`jobs.report`     the Markdown regression report with plots
- :mod:`jobs.storage`    local paths and object-store URIs behind pyarrow filesystems
"""
