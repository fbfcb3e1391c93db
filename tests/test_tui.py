"""The terminal UI through Textual's Pilot, against a real catalog and a real stage in a temp data dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from textual import events

from photod.errors import PhotodError
from photod.labels.captions import add_captions, record_feedback
from photod.search.finder import Filters, Query, parse_date
from photod.store.catalog import Catalog, PhotoMeta
from photod.tui.app import PhotodApp
from photod.tui.data import ActivityMeter, Library, group_captions
from photod.tui.screens.captions import CaptionEditor
from photod.tui.screens.detail import DetailScreen
from photod.tui.screens.search import SearchScreen
from photod.tui.screens.status import StatusScreen
from photod.tui.widgets.filters import FilterBar
from photod.tui.widgets.images import fit_cells
from photod.tui.widgets.results import ResultCard, ResultGrid
from tests.support.polling import until
from tests.support.tuikit import MTIME_NS, build_library, jpeg, library_config

SIZE = (110, 34)

# Pilot is async: anyio's pytest plugin runs these tests on asyncio.
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def library(data_dir) -> dict[str, int]:
    return build_library(data_dir)


@pytest.fixture
def app(data_dir, library) -> PhotodApp:
    # No pictures where a test does not look at them: drawing half-blocks is most of a frame's work.
    return PhotodApp(library_config(data_dir), image_mode="none", status_interval=0)


@pytest.fixture
def picture_app(data_dir, library) -> PhotodApp:
    return PhotodApp(library_config(data_dir), image_mode="halfcell", status_interval=0)


async def settle(pilot) -> None:
    """Wait for every search, thumbnail and job in flight to finish and its result to be shown."""
    for _ in range(2):
        await pilot.pause(0.05)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def shown(app: PhotodApp) -> list[str]:
    return [r["filename"] for r in app.screen.query_one(ResultGrid).results]


def notifications(app: PhotodApp) -> str:
    return "\n".join(n.message for n in app._notifications)


async def typed(pilot, text: str) -> None:
    await pilot.press(*text)
    await settle(pilot)


# ---- searching -------------------------------------------------------------------------------------


async def test_newest_photos_show_before_anything_is_typed(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert shown(app)[:3] == ["sunset.jpg", "cat_window.jpg", "cat_sofa.jpg"]
        assert "newest first" in str(app.screen.query_one("#summary").render())


async def test_typing_a_query_shows_matching_results_and_the_model_hint(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await typed(pilot, "cat")
        assert sorted(shown(app)) == ["cat_sofa.jpg", "cat_window.jpg"]
        note = str(app.screen.query_one("#note").render())
        assert "No model installed" in note and "photod model" in note
        # Each keystroke's results replaced the last: narrowing further drops one.
        await typed(pilot, "_so")
        assert shown(app) == ["cat_sofa.jpg"]


async def test_a_caption_finds_its_photo_and_the_card_shows_it(app, data_dir, library):
    with Catalog.in_data_dir(data_dir) as cat:
        add_captions(cat, [library["cat_window.jpg"]], "小白在窗台上")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await typed(pilot, "小白")
        assert shown(app) == ["cat_window.jpg"]
        card = app.screen.query(ResultCard).first()
        assert "「标注: 小白在窗台上」" in str(card._text.render())


async def test_text_in_a_photo_and_its_place_find_it_and_the_detail_shows_both(app, data_dir, library):
    from photod.store import signals
    from photod.store.signals import FoundPlace, FoundText

    photo = library["cat_window.jpg"]
    with Catalog.in_data_dir(data_dir) as cat:
        cat.conn.execute("UPDATE photos SET gps_lat = 18.3, gps_lon = 109.45 WHERE id = ?", (photo,))
        signals.store_text(cat, [FoundText(photo, "engine-1", (("三亚湾海鲜大排档", 0.9, 1, 2, 30, 9),))])
        signals.store_places(
            cat,
            [
                FoundPlace(
                    photo,
                    "v1",
                    18.3,
                    109.45,
                    "CN",
                    "海南 三亚 天涯区",
                    "Tianya, Sanya, Hainan, China",
                    ("海南", "三亚", "Sanya"),
                )
            ],
        )
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await typed(pilot, "海鲜")
        assert shown(app) == ["cat_window.jpg"]
        card = app.screen.query(ResultCard).first()
        assert "「文字: 三亚湾海鲜大排档」" in str(card._text.render())
        await pilot.press("enter", "enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.loaded)
        assert "文字: 三亚湾海鲜大排档" in str(app.screen.query_one("#found-by").render())
        assert "三亚湾海鲜大排档" in str(app.screen.query_one("#photo-text").render())
        facts = str(app.screen.query_one("#facts").render())
        assert "海南 三亚 天涯区 · Tianya, Sanya, Hainan, China" in facts
        await pilot.press("escape")
        app.screen.query_one("#query").value = ""  # every photo, then only those taken in Sanya
        await settle(pilot)
        assert len(shown(app)) > 1
        await pilot.press("f2")
        app.screen.query_one("#f-place").value = "Sanya"
        await settle(pilot)
        await until(pilot, lambda: shown(app) == ["cat_window.jpg"])


async def test_chinese_input_finds_a_folder(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await typed(pilot, "三亚")
        assert app.screen.query_one("#query").value == "三亚"
        assert sorted(shown(app)) == ["IMG_0001.jpg", "IMG_0002.jpg"]


async def test_keys_that_arrive_together_act_in_the_order_typed(app):
    # One read from the terminal: ctrl+u, then 三亚 from an input method, then left and backspace. Each
    # key must act before the next one lands, or ctrl+u erases the characters typed after it.
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await typed(pilot, "sunset")
        for key, char in [
            ("ctrl+u", "\x15"),
            ("三", "三"),
            ("亚", "亚"),
            ("x", "x"),
            ("left", None),
            ("backspace", "\x7f"),
        ]:
            app.post_message(events.Key(key, char))
        await settle(pilot)
        assert app.screen.query_one("#query").value == "三x"


async def test_slash_and_a_query_typed_at_once_from_the_results(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("down")
        assert isinstance(app.focused, ResultGrid)
        # "c" alone would open the captions of the photo under the cursor; after "/" it is a letter.
        for key in ("slash", "c", "a", "t"):
            app.post_message(events.Key(key, "/" if key == "slash" else key))
        await settle(pilot)
        assert app.screen.query_one("#query").value == "cat"
        assert isinstance(app.screen, SearchScreen) and sorted(shown(app)) == ["cat_sofa.jpg", "cat_window.jpg"]
        # In the search box "/" is a character, as in a folder path.
        await typed(pilot, "/")
        assert app.screen.query_one("#query").value == "cat/"


async def test_thumbnails_come_from_the_stage(picture_app, library):
    app = picture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        grid = app.screen.query_one(ResultGrid)
        await until(pilot, lambda: library["sunset.jpg"] in grid._pictures)
        picture = grid._pictures[library["sunset.jpg"]]
        # The staged JPEG of sunset.jpg is purple on top: the thumbnail is that picture, shrunk.
        r, g, b = picture.getpixel((2, 2))
        assert b > g and r > g and max(picture.size) <= 128
        # The failed file has no stage entry and keeps its placeholder.
        assert library["broken.jpg"] not in grid._pictures


async def test_results_show_photos_the_daemon_adds_while_the_ui_runs(app, data_dir):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await typed(pilot, "harbour")
        assert shown(app) == []
        # Another connection writes, as the daemon does, while the UI holds its own.
        with Catalog.in_data_dir(data_dir) as cat:
            root = cat.find_root("family")
            pid, _ = cat.upsert_file(root.id, "2024/harbour_night.jpg", 100, MTIME_NS)
            cat.mark_staged(pid, PhotoMeta(taken_at="2024-01-01T20:00:00"), "hash-new")
        screen = app.screen
        screen.action_focus_query()
        screen._watch_catalog()  # what the interval timer does every few seconds
        await until(pilot, lambda: shown(app) == ["harbour_night.jpg"])


async def test_filter_by_date_range(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f2")
        await typed(pilot, "2021")
        await pilot.press("tab")
        await typed(pilot, "2022")
        assert sorted(shown(app)) == ["cat_sofa.jpg", "cat_window.jpg"]
        assert "filtered" in str(app.screen.query_one("#summary").render())
        # A date that is not a date is refused at the field and changes nothing.
        await pilot.press("backspace")
        await typed(pilot, "2-99")
        assert app.screen.query_one("#f-before").has_class("-invalid")
        assert sorted(shown(app)) == ["cat_sofa.jpg", "cat_window.jpg"]


async def test_filter_online_only_and_root(app, data_dir):
    with Catalog.in_data_dir(data_dir) as cat:
        cat.set_root_offline(cat.find_root("nas").id)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "old_scan.jpg" in shown(app)
        bar = app.screen.query_one(FilterBar)
        bar.query_one("#f-online").value = True
        await settle(pilot)
        assert "old_scan.jpg" not in shown(app) and "sunset.jpg" in shown(app)
        bar.query_one("#f-online").value = False
        bar.query_one("#f-root").value = str(Catalog.in_data_dir(data_dir).find_root("nas").id)
        await settle(pilot)
        assert shown(app) == ["old_scan.jpg"]


# ---- detail -------------------------------------------------------------------------------------------


async def test_open_a_detail_shows_where_and_what(picture_app):
    app = picture_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await typed(pilot, "sunset")
        await pilot.press("enter", "enter")  # into the results, then open
        await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.loaded)
        facts = str(app.screen.query_one("#facts").render())
        assert "/photos/family/2023/beach/sunset.jpg" in facts
        assert "family (online)" in facts and "Sony ILCE-7M3" in facts and "FE 24-70mm F2.8 GM" in facts
        assert "2023-08-10 19:45:00" in facts
        preview = app.screen.query_one("#preview")
        assert preview.display and preview.image.size == (384, 288)
        await pilot.press("escape")
        assert isinstance(app.screen, SearchScreen)


async def test_detail_of_an_offline_photo_and_viewer_errors_are_notifications(app, data_dir, library):
    with Catalog.in_data_dir(data_dir) as cat:
        cat.set_root_offline(cat.find_root("nas").id)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        app.push_screen(DetailScreen(app.library, library["old_scan.jpg"], image_mode="halfcell"))
        await until(pilot, lambda: app.screen.loaded)
        assert "nas (OFFLINE)" in str(app.screen.query_one("#facts").render())
        await pilot.press("o")  # the original is on a drive that is not there
        await settle(pilot)
        assert "/mnt/nas/photos/archive/old_scan.jpg is not there" in notifications(app)
        assert "offline" in notifications(app)
        await pilot.press("y")
        assert "copied /mnt/nas/photos/archive/old_scan.jpg" in notifications(app)
        assert app.return_code is None  # still running: no traceback, no exit


async def test_more_like_this_without_a_model_says_how_to_install_one(app):
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("down", "m")
        await settle(pilot)
        assert "no model is installed" in notifications(app)
        assert "photod model" in notifications(app)


async def test_more_like_this_from_a_detail_goes_back_to_the_search(app, library):
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await typed(pilot, "sunset")
        await pilot.press("enter", "enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.loaded)
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, SearchScreen)
        assert app.screen.query_state.like == library["sunset.jpg"]
        assert "no model is installed" in notifications(app)


# ---- captions and feedback ---------------------------------------------------------------------------


async def test_add_a_caption_and_find_it_in_the_catalog(app, data_dir, library):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await typed(pilot, "cat_sofa")
        await pilot.press("enter", "c")
        await until(pilot, lambda: isinstance(app.screen, CaptionEditor))
        await typed(pilot, "我家的猫在沙发上")
        await pilot.press("enter")
        await settle(pilot)
        with Catalog.in_data_dir(data_dir) as cat:
            assert [c["text"] for c in cat.captions(library["cat_sofa.jpg"])] == ["我家的猫在沙发上"]
            assert cat.captions(library["cat_window.jpg"]) == []
        assert "我家的猫在沙发上" in str(app.screen.query_one("#caption-groups").get_option_at_index(0).prompt)


async def test_a_caption_typed_in_the_tui_is_tidied_and_kept_once(app, data_dir, library):
    # The same rules as `photod label add` and the imports: runs of spaces are one, and a photo never has
    # the same caption twice, however it was typed.
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await typed(pilot, "cat_sofa")
        await pilot.press("enter", "c")
        await until(pilot, lambda: isinstance(app.screen, CaptionEditor))
        sloppy = ["space", *"我家的猫", "space", "space", *"在沙发上", "space"]
        for keys in (sloppy, [*"我家的猫", "space", *"在沙发上"]):
            await pilot.press(*keys, "enter")
            await settle(pilot)
        with Catalog.in_data_dir(data_dir) as cat:
            assert [c["text"] for c in cat.captions(library["cat_sofa.jpg"])] == ["我家的猫 在沙发上"]
        assert app.screen.query_one("#caption-groups").option_count == 1


async def test_captions_on_a_selection_edit_and_delete(app, data_dir, library):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await typed(pilot, "三亚")
        await pilot.press("enter", "space", "right", "space", "c")
        await until(pilot, lambda: isinstance(app.screen, CaptionEditor))
        assert "2 selected photos" in str(app.screen.query_one("#caption-title").render())
        await typed(pilot, "婚礼")
        await pilot.press("enter")
        await settle(pilot)
        wedding = [library["IMG_0001.jpg"], library["IMG_0002.jpg"]]
        with Catalog.in_data_dir(data_dir) as cat:
            assert all([c["text"] for c in cat.captions(pid)] == ["婚礼"] for pid in wedding)
        # Edit the shared caption: both photos change.
        await pilot.press("tab")
        await until(pilot, lambda: app.screen.query_one("#caption-groups").has_focus)
        await pilot.press("e")
        field = app.screen.query_one("#caption-input")
        assert field.value == "婚礼"
        field.value = "三亚的婚礼"
        await pilot.press("enter")
        await settle(pilot)
        with Catalog.in_data_dir(data_dir) as cat:
            assert all([c["text"] for c in cat.captions(pid)] == ["三亚的婚礼"] for pid in wedding)
        # Delete it: gone from both.
        app.screen.query_one("#caption-groups").focus()
        await pilot.pause()
        await pilot.press("d")
        await settle(pilot)
        with Catalog.in_data_dir(data_dir) as cat:
            assert all(cat.captions(pid) == [] for pid in wedding)


async def test_mark_a_result_right_or_wrong_for_the_query(app, data_dir, library):
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await typed(pilot, "cat")
        await pilot.press("enter", "r")
        await settle(pilot)
        first = app.screen.query_one(ResultGrid).results[0]["id"]
        with Catalog.in_data_dir(data_dir) as cat:
            rows = cat.query("SELECT photo_id, query, relevant FROM feedback")
        assert rows == [{"photo_id": first, "query": "cat", "relevant": 1}]
        await pilot.press("w")  # changed my mind: the latest mark replaces the first
        await settle(pilot)
        with Catalog.in_data_dir(data_dir) as cat:
            rows = cat.query("SELECT photo_id, query, relevant FROM feedback")
        assert rows == [{"photo_id": first, "query": "cat", "relevant": 0}]
        assert "marked wrong" in notifications(app)


# ---- status ---------------------------------------------------------------------------------------------


async def test_status_shows_an_offline_root_and_failed_files(app, data_dir):
    with Catalog.in_data_dir(data_dir) as cat:
        cat.set_root_offline(cat.find_root("nas").id)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, StatusScreen) and app.screen.status is not None)
        table = app.screen.query_one("#roots-table")
        rows = {table.get_row_at(i)[0]: table.get_row_at(i) for i in range(table.row_count)}
        assert rows["nas"][2] == "OFFLINE" and rows["family"][2] == "online"
        failed = app.screen.query_one("#failed-table")
        assert failed.get_row_at(0) == [
            "/photos/family/2020/broken.jpg",
            "cannot identify image file (truncated or not a photo)",
        ]
        summary = str(app.screen.query_one("#status-summary").render())
        assert "1 offline" in summary and "none installed" in summary
        await pilot.press("escape")
        assert isinstance(app.screen, SearchScreen)


async def test_status_refreshes_and_measures_the_rate(data_dir, library):
    app = PhotodApp(library_config(data_dir), image_mode="none", status_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: isinstance(app.screen, StatusScreen) and app.screen.status is not None)
        with Catalog.in_data_dir(data_dir) as cat:
            root = cat.find_root("family")
            pid, _ = cat.upsert_file(root.id, "2024/new.jpg", 1, MTIME_NS)
        await until(pilot, lambda: app.screen.status["photos"]["new"] == 1)
        assert "1 to stage" in str(app.screen.query_one("#status-summary").render())
        assert app.screen.meter.staged_per_min is not None


async def test_help_opens_with_question_mark_but_not_while_typing(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("?")
        assert app.screen.query_one("#query").value == "?"
        await pilot.press("backspace", "down", "?")
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.press("f1")
        assert type(app.screen).__name__ == "HelpScreen"


async def test_mouse_click_selects_and_double_click_opens(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        grid = app.screen.query_one(ResultGrid)
        second = grid._cards[1]
        await pilot.click(second)
        assert grid.cursor == 1 and grid.has_focus
        await pilot.double_click(second)
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert app.screen.photo_id == grid.results[1]["id"]


async def test_list_mode_and_keyboard_moves(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        grid = app.screen.query_one(ResultGrid)
        await pilot.press("down", "right", "right")
        assert grid.cursor == 2
        await pilot.press("f4")
        await pilot.pause()
        assert grid.has_class("-list") and grid.styles.grid_size_columns == 1
        await pilot.press("down")
        assert grid.cursor == 3
        await pilot.press("end")
        assert grid.cursor == len(grid.results) - 1


# ---- more like this, with a real (small) model ---------------------------------------------------------


def _index_with_model(data_dir: Path, small) -> None:
    """Install the small bundle into the library and encode every staged photo with it, as the daemon would."""
    from photod.model import registry
    from photod.model.encoder import ImageEncoder
    from photod.store import vectors
    from photod.store.stage import Stage

    src = small.bundles["fp32"]
    registry.install_bundle(src.path, data_dir, "small")
    registry.use_bundle(data_dir, "small")
    bundle = registry.active_bundle(data_dir)
    with Catalog.in_data_dir(data_dir) as cat, Stage(data_dir, readonly=True) as stage:
        ids = sorted(stage.keys())
        vecs = ImageEncoder(bundle, threads=1).encode([stage.get_image(i) for i in ids])
        vectors.store_vectors(cat, bundle.image_id, ids, vecs)


async def test_more_like_this_puts_the_photo_itself_first(request, data_dir, library):
    try:
        small = request.getfixturevalue("small_vit_bundle")
    except pytest.FixtureLookupError:
        pytest.skip("needs the small_vit_bundle fixture (a tiny real model bundle) in tests/conftest.py")
    _index_with_model(data_dir, small)
    app = PhotodApp(library_config(data_dir), image_mode="none", status_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        grid = app.screen.query_one(ResultGrid)
        await pilot.press("down", "right", "right")  # the third photo, not the first
        target = grid.current["id"]
        await pilot.press("m")
        await until(pilot, lambda: app.screen.outcome is not None and app.screen.outcome.mode == "like")
        assert grid.results[0]["id"] == target
        assert grid.results[0]["score"] == pytest.approx(1.0, abs=1e-3)
        assert "similar" in str(app.screen.query_one("#summary").render()) or "like" in str(
            app.screen.query_one("#summary").render()
        )
        # A text query now goes by meaning: scores appear and there is no filename hint.
        await pilot.press("slash")
        await typed(pilot, "海边的日落")
        assert app.screen.outcome.mode == "meaning"
        assert all(r["score"] is not None for r in grid.results)
        assert not app.screen.query_one("#note").display


# ---- the data layer on its own ------------------------------------------------------------------------


def test_parse_date_accepts_prefixes_and_refuses_non_dates():
    assert parse_date(" 2019 ") == "2019" and parse_date("2019-06") == "2019-06"
    assert parse_date("2019-06-30") == "2019-06-30" and parse_date("") is None
    for bad in ("2019-13", "2019-02-30", "19-01-01", "yesterday"):
        with pytest.raises(ValueError, match=bad):
            parse_date(bad)


def test_feedback_needs_a_text_query_and_an_existing_photo(catalog, data_dir, library):
    with pytest.raises(PhotodError, match="text search"):
        record_feedback(catalog, library["sunset.jpg"], "  ", True)
    with pytest.raises(PhotodError, match="no photo with id 999"):
        record_feedback(catalog, 999, "sunset", True)
    record_feedback(catalog, library["sunset.jpg"], "海边的日落", True)
    record_feedback(catalog, library["cat_sofa.jpg"], "海边的日落", False)
    got = catalog.query("SELECT photo_id, relevant FROM feedback ORDER BY photo_id")
    assert got == [
        {"photo_id": library["cat_sofa.jpg"], "relevant": 0},
        {"photo_id": library["sunset.jpg"], "relevant": 1},
    ]


def test_group_captions_by_text():
    rows = [
        {"id": 1, "photo_id": 10, "text": "猫"},
        {"id": 2, "photo_id": 11, "text": "狗"},
        {"id": 3, "photo_id": 11, "text": "猫"},
    ]
    groups = group_captions(rows)
    assert [(g.text, g.caption_ids, g.photo_ids) for g in groups] == [("猫", (1, 3), (10, 11)), ("狗", (2,), (11,))]


def test_activity_meter_rates_per_minute():
    meter = ActivityMeter()
    base = {"total": 100, "new": 50, "failed": 0, "offline": 0, "indexed": 10}
    meter.feed(base, 0.0)
    assert meter.staged_per_min is None
    meter.feed({**base, "new": 40, "indexed": 15}, 30.0)
    assert meter.staged_per_min == pytest.approx(20.0) and meter.indexed_per_min == pytest.approx(10.0)


def test_fit_cells_keeps_the_aspect_ratio_within_the_box():
    landscape, portrait = Image.new("RGB", (400, 300)), Image.new("RGB", (300, 400))
    assert fit_cells(landscape, 20, 6, (10, 20)) == (16, 6)
    assert fit_cells(portrait, 20, 6, (10, 20)) == (9, 6)
    assert fit_cells(landscape, 40, 40, (10, 20)) == (40, 15)


def test_library_search_modes_and_online_filter(data_dir, library):
    lib = Library(library_config(data_dir))
    try:
        assert lib.search(Query()).mode == "recent"
        names = lib.search(Query(text="sunset"))
        assert names.mode == "names" and names.note and [r["filename"] for r in names.results] == ["sunset.jpg"]
        assert lib.search(Query(text="sunset", names_only=True)).note is None
        with Catalog.in_data_dir(data_dir) as cat:
            cat.set_root_offline(cat.find_root("family").id)
        online = lib.search(Query(filters=Filters(online_only=True)))
        assert [r["filename"] for r in online.results] == ["old_scan.jpg"]
        assert lib.thumbnail(library["sunset.jpg"], (32, 32)).size == (32, 24)
        assert lib.thumbnail(12345) is None
    finally:
        lib.close()


def test_a_library_without_a_stage_yet_has_no_pictures(tmp_path):
    cfg = library_config(tmp_path / "fresh")
    lib = Library(cfg)
    try:
        assert lib.search(Query()).results == []
        assert lib.thumbnail(1) is None and lib.preview(1) is None
    finally:
        lib.close()


def test_jpeg_fixture_is_a_real_jpeg():
    import io

    with Image.open(io.BytesIO(jpeg((10, 20, 30), (64, 48)))) as img:
        assert img.format == "JPEG" and img.size == (64, 48)
