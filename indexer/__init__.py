"""Indexing: convert files to text, split them into passages, embed and store them incrementally.

``index_folder`` and ``IndexSummary`` are imported on first use, so that ``indexer.convert`` and
``indexer.split`` stay importable (and fast to import) without loading torch and FAISS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from indexer.convert import SUPPORTED_EXTENSIONS, ConversionError, ConvertedDocument, convert_file

if TYPE_CHECKING:
    from indexer.run import IndexPlan, IndexSummary, index_folder, plan_index
    from indexer.split import split_document
    from indexer.uploads import index_uploads, remove_document

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "ConversionError",
    "ConvertedDocument",
    "IndexPlan",
    "IndexSummary",
    "convert_file",
    "index_folder",
    "index_uploads",
    "plan_index",
    "remove_document",
    "split_document",
]

_LAZY = {
    "split_document": "indexer.split",
    "index_folder": "indexer.run",
    "IndexSummary": "indexer.run",
    "IndexPlan": "indexer.run",
    "plan_index": "indexer.run",
    "index_uploads": "indexer.uploads",
    "remove_document": "indexer.uploads",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'indexer' has no attribute {name!r}")
