"""Constants the CLI needs before it knows what it will run (kept light: importing the
config pulls in every source and sink, which `replay` and `rules check` do not need)."""

__all__ = ["DEFAULT_LISTEN"]

DEFAULT_LISTEN = "127.0.0.1:9095"
