"""cutalign: align language models with judgments (free-text critiques) using CUT."""

__version__ = "0.1.0"
