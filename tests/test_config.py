from pathlib import Path

import pytest

from photod.config import DEFAULT_EXCLUDE, load_config, parse_config
from photod.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_example_config_loads_with_its_documented_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = load_config(REPO / "config.toml")
    assert cfg.stage.size == 384 and cfg.stage.jpeg_draft is True and cfg.daemon.log_level == "info"
    assert cfg.workers.scan_threads == 4
    assert cfg.roots[0].path == tmp_path / "Pictures"
    assert cfg.roots[0].watch == "auto"
    assert "@eaDir" in cfg.roots[0].exclude and "$RECYCLE.BIN" in cfg.roots[0].exclude


def test_empty_config_means_all_defaults(tmp_path):
    cfg = load_config(write(tmp_path, ""))
    assert cfg.roots == () and cfg.workers.batch_size == 16 and cfg.daemon.rescan_hours == 6


def test_data_dir_env_overrides_file(monkeypatch, tmp_path):
    monkeypatch.setenv("PHOTOD_DATA_DIR", str(tmp_path / "elsewhere"))
    cfg = load_config(write(tmp_path, '[daemon]\ndata_dir = "/srv/photod"\n'))
    assert cfg.data_dir == tmp_path / "elsewhere"


def test_photod_config_env_is_read(monkeypatch, tmp_path):
    p = write(tmp_path, "[stage]\nsize = 500\n")
    monkeypatch.setenv("PHOTOD_CONFIG", str(p))
    assert load_config().stage.size == 500


def test_relative_root_is_relative_to_the_config_file(tmp_path):
    cfg = load_config(write(tmp_path, '[[roots]]\npath = "photos"\n'))
    assert cfg.roots[0].path == tmp_path / "photos"
    assert cfg.roots[0].label == "photos"


def test_extra_exclude_adds_to_defaults(tmp_path):
    cfg = load_config(write(tmp_path, '[[roots]]\npath = "/p"\nextra_exclude = ["Screenshots"]\n'))
    assert list(cfg.roots[0].exclude) == DEFAULT_EXCLUDE + ["Screenshots"]


@pytest.mark.parametrize(
    "text, names",
    [
        ("[daemon]\nlog_levle = 'info'\n", ["daemon.log_levle", "log_level"]),
        ("[daemon]\nlog_level = 'loud'\n", ["daemon.log_level", "'loud'", "debug, info"]),
        ("[stage]\nsize = 10\n", ["stage.size", "10", "64 to 4096"]),
        ("[stage]\nsize = 'big'\n", ["stage.size", "'big'", "whole number"]),
        ("[workers]\ndecode = 1.5\n", ["workers.decode", "1.5"]),
        ("[workers]\nscan_threads = 0\n", ["workers.scan_threads", "0", "1 to 64"]),
        ("[stage]\njpeg_draft = 'yes'\n", ["stage.jpeg_draft", "bool"]),
        ("[[roots]]\nlabel = 'x'\n", ["roots[0]", "path"]),
        ("[[roots]]\npath = '/p'\nwatch = 'fast'\n", ["roots[0].watch", "'fast'", "auto, inotify, poll"]),
        ("[[roots]]\npath = '/p'\n[[roots]]\npath = '/p'\n", ["/p", "twice"]),
        ("[[roots]]\npath = '/p'\nexclude = '@eaDir'\n", ["roots[0].exclude", "list"]),
        ("roots = 3\n", ["roots", "3"]),
        ("[nonsense]\n", ["unknown key 'nonsense'"]),
        ("[daemon\n", ["not valid TOML"]),
    ],
)
def test_bad_values_are_refused_naming_key_value_and_allowed(tmp_path, text, names):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    message = str(err.value)
    for name in names:
        assert name in message
    assert "config.toml" in message


def test_missing_explicit_config_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_parse_config_without_file_uses_xdg_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("PHOTOD_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert parse_config({}, None).data_dir == tmp_path / "xdg" / "photod"
