"""wandb logging of a run: config, per-stage throughput, end summary. Offline by default.

Files go to ``<run_dir>/wandb`` (``wandb sync`` uploads them later). System metadata capture (which
would record the command line, host and environment details) and stats sampling are switched off, so
nothing beyond the config and the measurements leaves the process.
"""
from __future__ import annotations

from pipeline.config import RunConfig
from pipeline.manifest import Invocation
from pipeline.progress import Summary


def log_run(cfg: RunConfig, inv: Invocation, summary: Summary) -> None:
    """Log one invocation of ``cfg``'s run (each invocation is one wandb run grouped by run_id)."""
    import wandb

    settings = wandb.Settings(x_disable_meta=True, x_disable_stats=True, save_code=False, silent=True)
    run = wandb.init(project=cfg.wandb.project, mode=cfg.wandb.mode, dir=str(cfg.run_dir), group=cfg.run_id,
                     name=cfg.run_id, config=cfg.to_dict(), settings=settings)
    try:
        for stage, s in inv.stages.items():
            run.log({f"{stage}/tokens_per_s": s.tokens_per_s, f"{stage}/wall_s": s.wall_s,
                     f"{stage}/completion_tokens": s.completion_tokens, f"{stage}/units": s.units,
                     f"{stage}/replica_seconds": s.replica_seconds})
        run.summary.update({k: v for k, v in summary.to_dict().items() if v is not None})
    finally:
        run.finish()
