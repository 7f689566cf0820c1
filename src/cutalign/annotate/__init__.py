"""Human judgments in the browser: ``cutalign annotate FILE`` serves a page to judge (instruction, response) rows.

Saved judgments go at once to an append-only journal next to the input (``<input>.judgments.jsonl``, see
:mod:`cutalign.annotate.store`); :func:`export` turns it into the canonical judgment dataset that ``cutalign
train`` and the online loop read.
"""

from cutalign.annotate.server import serve
from cutalign.annotate.store import export

__all__ = ["export", "serve"]
