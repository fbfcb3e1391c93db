"""The model a process works with, and everything it has opened from it, following a marker file.

Which bundle to use is decided by files other processes write: the daemon encodes with the one
`models/ACTIVE` names (`photod model use`), search answers with the one photod.model.registry.serving_name picks
(which moves once the daemon has encoded for a new model). Either can change while a process runs, and the
ONNX sessions and the FAISS index opened from the old bundle must then go with it. A `ModelSlot` owns that:
it holds one bundle at a time, opens its encoders and index on first use (a filename search needs none of
them, and a session costs a second or more to open), and closes them all together when the marker names
another model. Noticing is cheap, so callers ask before every query or step: a marker read and a stat of
the named bundle's manifest; the manifest itself is read only when that file changed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from photod.config import IndexConfig, WorkersConfig
from photod.errors import NoModelError, PhotodError
from photod.model import bundle as bundles
from photod.model import registry
from photod.store.catalog import Catalog

if TYPE_CHECKING:
    from photod.index.vectorindex import VectorIndex
    from photod.model.encoder import ImageEncoder, TextEncoder

log = logging.getLogger(__name__)

# A file's inode, mtime and size: a file renamed into place has another.
_Identity = tuple[int, int, int]


class ModelSlot:
    """One bundle at a time, chosen by `pick` (registry.active_name or registry.serving_name), with its text
    and image encoders and its image tower's index, each opened on first use.

    `keeps_index`: this process owns the index file (the daemon, whose indexer adds to it) and saves it
    before letting it go. A reader's index only follows the catalog, so it is dropped unsaved.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        catalog: Catalog,
        pick: Callable[[Path], str | None],
        *,
        threads: int = WorkersConfig.encode_threads,
        index: IndexConfig = IndexConfig(),
        keeps_index: bool = False,
    ):
        self.data_dir = Path(data_dir)
        self.catalog = catalog
        self.pick = pick
        self.threads = threads
        self.index_settings = index
        self.keeps_index = keeps_index
        self.bundle: bundles.Bundle | None = None
        self._name: str | None = None  # the name the bundle was loaded under, and its manifest file's identity
        self._identity: _Identity | None = None
        self._text: TextEncoder | None = None
        self._image: ImageEncoder | None = None
        self._index: VectorIndex | None = None

    def follow(self) -> bundles.Bundle | None:
        """The bundle the marker names now, or None when it names none.

        A different model closes everything opened from the old one. The same model under a new name or a
        rewritten manifest (model_id is a hash of the graphs) keeps what is open. A bundle that cannot be
        loaded raises ModelError and leaves the old one in place, still usable.
        """
        name = self.pick(self.data_dir)
        if name is None:
            self.close()
            return None
        path = registry.models_dir(self.data_dir) / name
        identity = _file_identity(path / bundles.MANIFEST)
        # No manifest under the loaded name: the bundle is being replaced (two renames), or was deleted by
        # hand. What is open still works, and a replacement is seen at the next look.
        if self.bundle is not None and name == self._name and identity in (self._identity, None):
            return self.bundle
        bundle = bundles.Bundle.load(path)
        if self.bundle is not None and bundle.model_id != self.bundle.model_id:
            self.close()
        self.bundle, self._name, self._identity = bundle, name, identity
        return bundle

    def _current(self) -> bundles.Bundle:
        if self.bundle is None:
            raise NoModelError()
        return self.bundle

    def text_encoder(self) -> TextEncoder:
        from photod.model.encoder import TextEncoder

        if self._text is None:
            self._text = TextEncoder(self._current(), threads=self.threads)
        return self._text

    def image_encoder(self) -> ImageEncoder:
        from photod.model.encoder import ImageEncoder

        if self._image is None:
            self._image = ImageEncoder(self._current(), threads=self.threads)
        return self._image

    def index(self) -> VectorIndex:
        """The image tower's index, caught up with the catalog when opened."""
        from photod.index.vectorindex import VectorIndex

        if self._index is None:
            index = VectorIndex.open(self.data_dir, self._current().image_id, self.catalog, self.index_settings)
            if index.rebuilt:
                try:
                    index.save()  # spare the next process the rebuild (the daemon may be off)
                except PhotodError as exc:
                    log.warning("%s", exc)
            self._index = index
        return self._index

    def close(self) -> None:
        """Let go of the bundle and everything opened from it (the index saved first, if this slot keeps it)."""
        if self._index is not None and self.keeps_index:
            self._index.save()
        self.bundle = self._name = self._identity = self._text = self._image = self._index = None


def _file_identity(path: Path) -> _Identity | None:
    # A reinstalled bundle is renamed into place whole, so its manifest is a new file: a new inode.
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size
