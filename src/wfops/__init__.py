"""wfops: release and disaster-recovery automation for WeddingFlo."""

__version__ = "0.1.0"
