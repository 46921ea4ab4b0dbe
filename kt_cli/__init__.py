"""kt: transfer knowledge from large language models into collaborative-filtering recommenders.

The package is a library first; ``kt_cli.cli`` is a thin typer layer over it.
"""

__version__ = "0.1.0"
