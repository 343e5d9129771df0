"""Converters for the formats beyond plain text, PDF, DOCX and HTML, one module per format.

Each module has ``convert_<type>(path, data) -> ConvertedDocument`` and is chosen by
:func:`indexer.convert.convert_file` from the file's extension; they build the same blocks (text
with its page or section) as the converters of :mod:`indexer.convert`, so offsets and citations
work the same way: ``markdown``, ``pptx`` (slides), ``sheets`` (XLSX, CSV), ``email`` (EML),
``msg`` (Outlook), with their ``attachments``, ``odt``, ``epub``, ``ocr`` (images, and the
scanned pages of PDFs); ``office_zip`` checks an Office file's ZIP container before a library
opens it. They import the shared pieces from :mod:`indexer.document`, and HTML, tables and text
decoding from :mod:`indexer.convert`, which loads them by name (so no import cycle).
"""
