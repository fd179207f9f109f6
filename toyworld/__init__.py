"""Embedded default model world: a tiny solver / verifier / PRM trained on synthetic arithmetic chains.

Checkpoints (safetensors + tokenizer, loadable by transformers and vLLM) live under ``CHECKPOINTS``;
see ``toyworld/MODEL_CARD.md``. Formats: ``toyworld.formats``; task and exact labels: ``toyworld.task``.
"""

from pathlib import Path

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
SOLVER_PATH = CHECKPOINTS / "solver"
VERIFIER_PATH = CHECKPOINTS / "verifier"
PRM_PATH = CHECKPOINTS / "prm"
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "toy"
