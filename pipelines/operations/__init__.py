"""Operating a home for years: backup and restore, the home's format and its migrations, Ray.

:mod:`~pipelines.operations.backup` (``docqa backup`` / ``docqa restore``),
:mod:`~pipelines.operations.home_format` (``docqa_home.json`` and the migrations from older
releases) and :mod:`~pipelines.operations.ray_cluster` (starting or joining Ray for the indexer
and the API).
"""
