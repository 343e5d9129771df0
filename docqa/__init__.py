"""The ``docqa`` command line (``docqa.cli.app``); the product itself lives in the packages
``pipelines``, ``indexer``, ``reader_training`` and ``ui``."""
