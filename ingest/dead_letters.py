"""The dead-letter topic: messages the worker refuses, unchanged, with the reason in headers.

A refused message counts as handled (its offset may be committed) only once the broker has
acknowledged its dead letter, so every send's future is checked. The producer takes messages
as large as a Publisher sends (8 MiB); a broker whose dead-letter topic takes less refuses the
value, and the message is then dead-lettered without it, its headers saying where the original
lies, rather than holding its partition up for ever.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)

# The Publisher's default max_request_size (8 MiB), plus room for our headers and framing.
MAX_MESSAGE_BYTES = 8 * 2**20 + 64 * 2**10
REASON_BYTES = 4000
# Consumer settings that say how to reach and authenticate to the cluster: the dead-letter
# producer needs the same ones.
_SHARED_PREFIXES = ("security_", "sasl_", "ssl_")
_SHARED_KEYS = {"bootstrap_timeout_ms", "api_version", "client_id", "request_timeout_ms"}


class DeadLetterError(RuntimeError):
    """Some dead letters were not acknowledged by the broker; the message says why."""


def producer_settings(consumer_config: dict[str, Any]) -> dict[str, Any]:
    """The connection and security settings of ``consumer_config`` that a producer takes."""
    return {
        key: value
        for key, value in consumer_config.items()
        if key in _SHARED_KEYS or key.startswith(_SHARED_PREFIXES)
    }


class DeadLetters:
    """Send refused messages to ``topic``; :meth:`send` returns only when all are acknowledged
    or raises :class:`DeadLetterError` naming those that were not."""

    def __init__(
        self,
        bootstrap_servers: str | list[str],
        topic: str,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        delivery_timeout_s: float = 30.0,
        config: dict[str, Any] | None = None,
    ) -> None:
        from kafka import KafkaProducer

        self.topic = topic
        self.delivery_timeout_s = delivery_timeout_s
        settings = {
            "acks": "all",
            "max_request_size": max_message_bytes,
            # Wait for room or metadata only briefly, and let a failed send come back as an
            # error that the worker retries while it keeps polling (and its group membership).
            "max_block_ms": 10_000,
            "request_timeout_ms": min(int(delivery_timeout_s * 1000) - 1, 30_000),
            **(config or {}),
        }
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            delivery_timeout_ms=int(delivery_timeout_s * 1000),
            **settings,
        )

    def send(self, items: list[tuple[Any, str]]) -> None:
        """Send ``(consumer record, reason)`` pairs in order; raise if any is not acknowledged.

        Those that were acknowledged are removed from ``items``, so a retry sends only the
        rest (a dead letter may then reach the topic twice, never zero times).
        """
        futures = [self._send(message, reason, keep_value=True) for message, reason in items]
        self._flush()
        too_large = [i for i, future in enumerate(futures) if _is_too_large(_failure(future))]
        for i in too_large:  # the broker refuses the value: dead-letter the message without it
            message, reason = items[i]
            futures[i] = self._send(message, reason, keep_value=False)
        if too_large:
            self._flush()
        failures = [(i, _failure(future)) for i, future in enumerate(futures)]
        failed = [(i, err) for i, err in failures if err is not None]
        done = len(items) - len(failed)
        items[:] = [items[i] for i, _ in failed]
        if failed:
            first = failed[0][1]
            raise DeadLetterError(
                f"{len(failed)} of {len(failed) + done} dead letters not accepted by topic "
                f"{self.topic!r} ({type(first).__name__}: {first})"
            )

    def close(self) -> None:
        self.producer.close(timeout=self.delivery_timeout_s)

    def _send(self, message: Any, reason: str, *, keep_value: bool) -> Any:
        value = message.value or b""
        headers = [
            ("bluebroker-error", _cut(reason, REASON_BYTES)),
            ("bluebroker-topic", message.topic.encode()),
            ("bluebroker-partition", str(message.partition).encode()),
            ("bluebroker-offset", str(message.offset).encode()),
        ]
        if not keep_value:
            headers.append(
                (
                    "bluebroker-value-dropped",
                    f"{len(value)} bytes, more than topic {self.topic!r} takes; the message is "
                    "still at bluebroker-topic/partition/offset until its retention ends".encode(),
                )
            )
            value = b""
        try:
            return self.producer.send(self.topic, value=value, key=message.key, headers=headers)
        except Exception as err:  # too large for the producer, buffer full, no metadata: a failure
            return err

    def _flush(self) -> None:
        from kafka.errors import KafkaTimeoutError

        with contextlib.suppress(KafkaTimeoutError):  # sends still pending count as failed
            self.producer.flush(timeout=self.delivery_timeout_s + 5)


def _cut(text: str, size: int) -> bytes:
    """``text`` as UTF-8 in at most ``size`` bytes, never ending inside a character."""
    return text.encode("utf-8", "replace")[:size].decode("utf-8", "ignore").encode()


def _failure(future: Any) -> BaseException | None:
    """Why a send failed, or None if the broker acknowledged it."""
    from kafka.errors import KafkaTimeoutError

    if isinstance(future, BaseException):
        return future
    if not future.is_done:
        return KafkaTimeoutError("no answer from the broker in time")
    return future.exception


def _is_too_large(err: BaseException | None) -> bool:
    from kafka.errors import MessageSizeTooLargeError, RecordListTooLargeError

    return isinstance(err, MessageSizeTooLargeError | RecordListTooLargeError)
