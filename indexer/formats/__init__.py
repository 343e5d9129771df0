"""Converters for the formats beyond text documents, one module per format.

Each module has ``convert_<type>(path, data) -> ConvertedDocument`` and is chosen by
:func:`indexer.convert.convert_file` from the file's extension; they build the same blocks (text
with its page or section) as the converters of :mod:`indexer.convert`, so offsets and citations
work the same way. :mod:`~indexer.formats.pptx` (slides), :mod:`~indexer.formats.sheets` (XLSX,
CSV), :mod:`~indexer.formats.email` (EML), :mod:`~indexer.formats.msg` (Outlook), with their
attachments (:mod:`~indexer.formats.attachments`), :mod:`~indexer.formats.odt`,
:mod:`~indexer.formats.epub`, :mod:`~indexer.formats.ocr` (images, and the scanned pages of
PDFs); :mod:`~indexer.formats.office_zip` checks an Office file's ZIP
container before a library opens it.
"""
