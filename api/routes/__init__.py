"""The API's routes, one module per area: ``ask`` (ask, feedback, labels), ``documents``,
``models``, and ``system`` (health, metrics)."""
