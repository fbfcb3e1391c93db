"""Snapshots (pytest-textual-snapshot) of the search, detail and status screens.

Deterministic by construction: a fixed data dir path (the status screen shows it), made-up root paths,
fixed dates and colours, half-block pictures (not whatever the terminal running the tests supports), and
no refresh timers. Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the SVGs in tests/__snapshots__/.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from textual.widgets import DataTable

from photod.store.catalog import Catalog
from photod.tui.app import PhotodApp
from photod.tui.screens.detail import DetailScreen
from photod.tui.screens.status import StatusScreen
from photod.tui.widgets.results import ResultGrid
from tests.support.polling import until
from tests.support.tuikit import build_library, library_config

SIZE = (110, 34)
FIXED_DIR = Path(tempfile.gettempdir()) / "photod-tui-snapshot"


@pytest.fixture
def snap_library() -> tuple[Path, dict[str, int]]:
    shutil.rmtree(FIXED_DIR, ignore_errors=True)
    data_dir = FIXED_DIR / "data"
    data_dir.mkdir(parents=True)
    ids = build_library(data_dir)
    with Catalog.in_data_dir(data_dir) as cat:
        cat.set_root_offline(cat.find_root("nas").id)
    yield data_dir, ids
    shutil.rmtree(FIXED_DIR, ignore_errors=True)


def make_app(data_dir: Path) -> PhotodApp:
    return PhotodApp(library_config(data_dir), image_mode="halfcell", status_interval=0)


async def settled_on(pilot, condition) -> None:
    """Wait for `condition`, then for the work in flight (pictures, searches) to finish: a snapshot of a frame
    drawn half-way would differ from run to run."""
    await until(pilot, condition, what="the screen to settle")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def all_pictures_in(app: PhotodApp) -> bool:
    grid = app.screen.query_one(ResultGrid)
    staged = [r["id"] for r in grid.results if r["state"] != "failed"]
    return bool(grid.results) and all(pid in grid._pictures for pid in staged)


def test_search_screen(snap_compare, snap_library):
    data_dir, _ = snap_library
    app = make_app(data_dir)

    async def ready(pilot) -> None:
        await settled_on(pilot, lambda: all_pictures_in(app))
        await pilot.press(*"2019")
        await settled_on(pilot, lambda: app.screen.query_one(ResultGrid).shown_generation >= 2 and all_pictures_in(app))

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_detail_screen(snap_compare, snap_library):
    data_dir, ids = snap_library
    app = make_app(data_dir)

    async def ready(pilot) -> None:
        await settled_on(pilot, lambda: all_pictures_in(app))
        with Catalog.in_data_dir(data_dir) as cat:
            cat.add_caption(ids["cat_sofa.jpg"], "我家的猫在沙发上")
        app.push_screen(DetailScreen(app.library, ids["cat_sofa.jpg"], "cat", image_mode="halfcell"))
        await settled_on(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.loaded)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_status_screen(snap_compare, snap_library):
    data_dir, _ = snap_library
    app = make_app(data_dir)

    def filled() -> bool:
        # Both tables, not just the status: on a busy machine the picture could otherwise be taken
        # between the status arriving and the tables being drawn with their rows.
        screen = app.screen
        return (
            isinstance(screen, StatusScreen)
            and screen.status is not None
            and screen.query_one("#roots-table", DataTable).row_count == 2
            and screen.query_one("#failed-table", DataTable).row_count >= 1
        )

    async def ready(pilot) -> None:
        await pilot.press("f5")
        await settled_on(pilot, filled)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)
