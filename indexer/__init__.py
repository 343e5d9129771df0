"""Indexing: convert files to text, split them into passages, embed and store them incrementally.

``index_folder`` and ``IndexSummary`` are imported on first use, so that ``indexer.convert`` and
``indexer.split`` stay importable (and fast to import) without loading torch and FAISS.
"""

from __future__ import annotations

import lazy_loader

# Names load on first use (PEP 562, through lazy_loader) so that importing one light
# module of the package (settings, convert, squad) does not load torch or FAISS.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "convert": ["SUPPORTED_EXTENSIONS", "ConversionError", "ConvertedDocument", "convert_file"],
        "split": ["split_document"],
        "run": ["index_folder", "IndexSummary", "IndexPlan", "plan_index"],
        "uploads": ["index_uploads", "remove_document"],
    },
)
