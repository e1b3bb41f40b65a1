"""One module per store backend; ``pipeline.sinks.registry`` finds them by their ``BACKEND``.

Importing a backend module must stay cheap: engines are imported inside the store, on
first use. Modules whose name starts with ``_`` are not backends.
"""
