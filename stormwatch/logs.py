"""structlog configuration: JSON lines (orjson, bytes) in production, console on a TTY.

Named logs.py, not logging.py, so a file run from inside this folder never shadows the
standard library's module.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog

from ingest.ratelimit import LogLimiter

__all__ = ["HeldBack", "configure_logging", "stdlib_formatter"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)
"""Tracebacks as structured fields, without frame locals: a local may hold a secret."""


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    """Configure structlog once for the process; stdlib loggers render through it too."""
    lvl = _LEVELS.get(level.lower(), logging.INFO)
    use_json = json if json is not None else not sys.stderr.isatty()
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    processors: list[structlog.typing.Processor]
    if use_json:
        processors = [
            *shared,
            _TRACEBACKS,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ]
        factory: structlog.typing.WrappedLogger = structlog.BytesLoggerFactory(sys.stderr.buffer)
    else:
        processors = [*shared, structlog.dev.ConsoleRenderer()]
        factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(stdlib_formatter(json=use_json))
    handler.addFilter(HeldBack())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(lvl, logging.WARNING) if lvl < logging.WARNING else lvl)


class HeldBack(logging.Filter):
    """aiohttp logs every malformed request it refuses, with a traceback: a client that
    sends garbage in a loop would fill the disk. At most one line per logger and message
    per interval gets through; it carries `suppressed`, how many were held back."""

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self._limiter = LogLimiter(interval)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiohttp"):
            return True
        allowed, held = self._limiter.allow(record.name, str(record.msg))
        if allowed and held:
            record.suppressed = held
        return allowed


def _orjson_text(obj: object, **_: object) -> str:
    # `default=str`: a stdlib record may carry anything (a request, an exception type);
    # one odd value must not turn the line into a logging error and a bare traceback.
    return orjson.dumps(obj, default=str).decode()


def stdlib_formatter(*, json: bool) -> logging.Formatter:
    """aiohttp and aiokafka log through the standard library; this renders their records
    as our lines: JSON with the logger's name, level and time, a traceback as a
    structured `exception` field rather than loose text."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_text)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    tracebacks: structlog.typing.Processor = (
        _TRACEBACKS if json else structlog.processors.format_exc_info
    )
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            tracebacks,
            renderer,
        ],
        foreign_pre_chain=[
            structlog.stdlib.ExtraAdder(["suppressed"]),
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
    )
