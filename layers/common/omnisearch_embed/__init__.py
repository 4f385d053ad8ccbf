"""OmniSearch Embed core: settings, errors, schemas, input handling and backends. Never imports torch."""

__version__ = "0.1.0"
