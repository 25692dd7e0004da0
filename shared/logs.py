"""Structured logging: one line per event with key/value fields.

Services (`recsys run`) write JSON lines on stdout and nothing else: Python warnings and uncaught errors of
any thread become log lines too, so a log shipper never meets a line it cannot parse. Other commands keep
stdout for their output and log on stderr (text on a terminal).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from types import TracebackType
from typing import Any, TextIO


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        text = f"{stamp} {record.levelname.lower():7} {record.name}: {record.getMessage()} {fields}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(level: str = "INFO", *, service: bool = False, log_format: str = "") -> None:
    """Sets up the root logger once per process: a service's JSON lines on stdout, a tool's logs on stderr.

    log_format "json" or "text" overrides the default (JSON for a service; for a tool, text on a terminal).
    """
    stream: TextIO = sys.stdout if service else sys.stderr
    text = log_format == "text" or (not log_format and not service and stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_TextFormatter() if text else _JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # What Python would print as free text on stderr goes through the same handler instead.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    # Libraries that log every request at INFO drown the events that matter.
    for noisy in ("httpx", "faststream", "faststream.access.redis", "recsys.broker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    logging.getLogger("recsys").critical("uncaught_exception", exc_info=(kind, error, trace))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or isinstance(args.exc_value, SystemExit):
        return
    thread = args.thread.name if args.thread is not None else ""
    logging.getLogger("recsys").critical(
        "uncaught_exception",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        extra={"fields": {"thread": thread}},
    )


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Logs one event with its fields."""
    logger.log(level, event, extra={"fields": fields})
