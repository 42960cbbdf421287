"""mmagic_cm registers into MMagic's registries so MMagic's tools find it."""
from mmagic.registry import DATASETS, METRICS, MODELS  # noqa: F401
