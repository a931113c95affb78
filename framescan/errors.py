"""Named framescan errors. Each carries a stable ``code`` that reports and the CLI use.

Like PyAV's errors, the ones that have a natural builtin twin also derive from it
(``FileNotFound`` is a ``FileNotFoundError``, ``UnsupportedFormat`` a ``ValueError``), so
callers can catch whichever they know.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Why a clip could not be (fully) scanned. Values are stable: they appear in reports.

    A code prints as its value (``f"{ErrorCode.NOT_FOUND}"`` is ``NOT_FOUND``), as it reads
    in reports and on the command line.
    """

    NOT_FOUND = "NOT_FOUND"
    EMPTY = "EMPTY"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    NO_VIDEO = "NO_VIDEO"
    NO_FRAMES = "NO_FRAMES"
    TRUNCATED = "TRUNCATED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    TIMEOUT = "TIMEOUT"
    DECODER_CRASHED = "DECODER_CRASHED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    MODEL_ERROR = "MODEL_ERROR"
    CONFIG_ERROR = "CONFIG_ERROR"

    def __str__(self) -> str:
        return self.value


class FramescanError(Exception):
    """Base of every error framescan raises on purpose."""

    code: ErrorCode = ErrorCode.UNSUPPORTED_FORMAT
    default_message = "framescan could not scan this input"

    def __init__(self, message: str | None = None, **details: object) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code.value, "message": self.message}
        if self.details:
            out["details"] = {k: v for k, v in self.details.items()}
        return out


class InputError(FramescanError):
    """The input clip could not be read."""


class FileNotFound(InputError, FileNotFoundError):
    code = ErrorCode.NOT_FOUND
    default_message = "no such file"


class EmptyInput(InputError, ValueError):
    code = ErrorCode.EMPTY
    default_message = "the input is empty (0 bytes)"


class UnsupportedFormat(InputError, ValueError):
    code = ErrorCode.UNSUPPORTED_FORMAT
    default_message = "the input is not a video container or codec framescan can read"


class NoVideoStream(InputError, ValueError):
    code = ErrorCode.NO_VIDEO
    default_message = "the file has no video stream (audio-only or data-only file?)"


class NoFrames(InputError, ValueError):
    code = ErrorCode.NO_FRAMES
    default_message = "the video stream decoded to no frames"


class Truncated(InputError, ValueError):
    code = ErrorCode.TRUNCATED
    default_message = "the file is truncated or corrupt: decoding stopped early"


class LimitExceeded(InputError, ValueError):
    code = ErrorCode.LIMIT_EXCEEDED
    default_message = "the input exceeds a configured limit"


class ScanTimeout(InputError, TimeoutError):
    code = ErrorCode.TIMEOUT
    default_message = "the scan did not finish within its time limit"


class DecoderCrashed(InputError):
    code = ErrorCode.DECODER_CRASHED
    default_message = "the decoder process crashed on this input"


class ResourceExhausted(InputError, MemoryError):
    code = ErrorCode.RESOURCE_EXHAUSTED
    default_message = "decoding this input exhausted the memory limit"


class ModelError(FramescanError):
    """A model manifest or model file is missing, wrong or unusable."""

    code = ErrorCode.MODEL_ERROR
    default_message = "the model could not be loaded"


class ConfigError(FramescanError, ValueError):
    """A policy, option or manifest value is invalid."""

    code = ErrorCode.CONFIG_ERROR
    default_message = "invalid configuration"


ERROR_BY_CODE: dict[ErrorCode, type[FramescanError]] = {
    ErrorCode.NOT_FOUND: FileNotFound,
    ErrorCode.EMPTY: EmptyInput,
    ErrorCode.UNSUPPORTED_FORMAT: UnsupportedFormat,
    ErrorCode.NO_VIDEO: NoVideoStream,
    ErrorCode.NO_FRAMES: NoFrames,
    ErrorCode.TRUNCATED: Truncated,
    ErrorCode.LIMIT_EXCEEDED: LimitExceeded,
    ErrorCode.TIMEOUT: ScanTimeout,
    ErrorCode.DECODER_CRASHED: DecoderCrashed,
    ErrorCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    ErrorCode.MODEL_ERROR: ModelError,
    ErrorCode.CONFIG_ERROR: ConfigError,
}


def error_from_code(code: str, message: str, **details: object) -> FramescanError:
    """Rebuild an error from its code (used when a worker process reports a failure)."""
    cls = ERROR_BY_CODE.get(ErrorCode(code), FramescanError)
    return cls(message, **details)
