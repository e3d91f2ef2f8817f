"""What every dataset reader declares (:class:`DatasetInfo`) and the interface it implements.

A reader only parses its dataset's original files and yields :class:`aemg.recording.Recording`
objects in the device's own rate and units; resampling, scaling and QC live once in
:mod:`aemg.signal`. Readers never download, and never modify, move or delete the user's files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aemg.recording import Recording

if TYPE_CHECKING:
    from aemg.datasets._common import BadFiles


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about a public dataset, as printed by ``aemg datasets``."""

    name: str  # registry name, e.g. "3dc"
    title: str
    device: str
    fs: float  # Hz, the device's own rate
    n_channels: int
    n_subjects: int
    gestures: tuple[str, ...]  # the dataset's own gesture names, in label order
    layout: str  # name in aemg.layouts
    citation: str
    url: str  # where to get it (aemg never downloads)
    license: str = "unknown"
    mains_hz: float | None = None  # expected mains frequency, when known (detected anyway)
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gestures"] = list(self.gestures)
        return d


class Reader(Protocol):
    """A dataset reader: ``files`` lists the raw files it will read, ``read`` yields Recordings.

    ``read`` reports subjects absent from the download with one logged warning through
    :func:`aemg.datasets._common.warn_absent` (not an error; ``files`` stays silent), raises
    :class:`aemg.errors.DataFormatError` for a malformed file, and yields recordings in time order
    within each subject and session (``Recording.order``).

    Both list folders through :func:`aemg.datasets._common.list_files`, so a stray file (not named
    like a dataset file) is never read and ``read`` names it in one warning; ``bad`` (a
    :class:`~aemg.datasets._common.BadFiles`, default: fail fast) decides whether a damaged file
    stops the read or is skipped and recorded, each file wrapped by ``BadFiles.attempt``.
    """

    info: DatasetInfo

    def files(self, root: Path, *, bad: BadFiles | None = None) -> list[Path]: ...

    def read(self, root: Path, *, bad: BadFiles | None = None) -> Iterator[Recording]: ...
