"""The end-to-end demo on the embedded toy model: pipeline, then analysis, then exports.

    python -m pipeline.demo                      # what `make demo` runs (conf/experiment/demo.yaml)
    python -m pipeline.demo dataset.limit=20     # any pipeline override

Equivalent to ``python -m pipeline.run +experiment=demo`` followed by
``python -m analysis.run run_dir=<run dir>`` and ``python -m analysis.export <run dir>``. Rerunning resumes
the run (a finished one is not regenerated) and rewrites the analysis.
"""
from __future__ import annotations

import sys
import time

from analysis.config import AnalysisConfig
from analysis.export import export
from analysis.run import run as run_analysis
from pipeline.config import compose
from pipeline.run import run as run_pipeline


def main(overrides: list[str]) -> None:
    t0 = time.monotonic()
    cfg = compose(["+experiment=demo", *overrides])
    result = run_pipeline(cfg)
    analysis = run_analysis(AnalysisConfig(run_dir=str(result.run_dir)))
    exported = export(result.run_dir)
    print(f"\ndemo finished in {time.monotonic() - t0:.0f} s")
    print(f"  tables:   {result.run_dir}/{{problems,solutions,verifications}}/  (+ manifest.json)")
    print(f"  report:   {analysis.out_dir / 'report.md'}")
    print(f"  plots:    {analysis.out_dir}/*.png")
    print(f"  metrics:  {exported / 'results.json'}")
    print(f"  inspect:  .venv/bin/python -m analysis.inspect {result.run_dir} --filter wrong_majority")


if __name__ == "__main__":
    main(sys.argv[1:])
