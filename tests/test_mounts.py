"""The mount table: parsing, which mount holds a path, and the watch mode chosen from it."""

from __future__ import annotations

import pytest

from photod.errors import ConfigError
from photod.roots.mounts import (
    Mount,
    choose_watch_mode,
    inotify_limits,
    is_network_fs,
    mount_for,
    parse_mounts,
    read_mounts,
)

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 27 0:45 / /mnt/nas rw,relatime shared:20 - cifs //nas/photos rw,vers=3.1.1
41 27 0:46 / /mnt/nas/sub rw,relatime - nfs4 server:/export rw
42 27 8:17 / /media/usb\\040drive rw,nosuid master:3 - vfat /dev/sdb1 rw
43 27 0:50 / /mnt/cloud rw - fuse.rclone gdrive: rw
44 27 8:33 / /media/ntfs rw - fuseblk /dev/sdc1 rw
"""


def test_parses_mountinfo_with_optional_fields_and_octal_escapes():
    mounts = parse_mounts(MOUNTINFO)
    assert Mount("/mnt/nas", "cifs", "//nas/photos") in mounts
    assert Mount("/media/usb drive", "vfat", "/dev/sdb1") in mounts  # \040 is a space
    assert Mount("/", "ext4", "/dev/vda") in mounts
    assert len(mounts) == 7


def test_parses_proc_mounts_format_too():
    mounts = parse_mounts("server:/export /srv/photos\\0402019 nfs rw 0 0\n\nbroken\n")
    assert mounts == [Mount("/srv/photos 2019", "nfs", "server:/export")]


def test_mount_for_takes_the_longest_prefix_not_a_string_prefix(tmp_path):
    mounts = parse_mounts(MOUNTINFO)
    assert mount_for("/mnt/nas/2019/a.jpg", mounts).fs_type == "cifs"
    assert mount_for("/mnt/nas/sub/x", mounts).fs_type == "nfs4"
    assert mount_for("/mnt/nassy", mounts).fs_type == "ext4"  # /mnt/nas is not a prefix of /mnt/nassy
    assert mount_for("/media/usb drive/DCIM", mounts).fs_type == "vfat"


def test_later_mount_on_the_same_point_wins():
    mounts = parse_mounts("1 0 0:1 / /mnt rw - ext4 /dev/a rw\n2 0 0:2 / /mnt rw - nfs srv:/x rw\n")
    assert mount_for("/mnt/p", mounts).fs_type == "nfs"


@pytest.mark.parametrize(
    "fs,network",
    [
        ("nfs", True),
        ("nfs4", True),
        ("cifs", True),
        ("smb3", True),
        ("fuse.sshfs", True),
        ("fuse.rclone", True),
        ("fuse.somethingnew", True),
        ("9p", True),
        ("ceph", True),
        ("ext4", False),
        ("btrfs", False),
        ("vfat", False),
        ("exfat", False),
        ("fuseblk", False),
        ("fuse.ntfs-3g", False),
        ("tmpfs", False),
    ],
)
def test_network_filesystems(fs, network):
    assert is_network_fs(fs) is network


def test_auto_polls_network_and_fuse_and_uses_inotify_on_local():
    mounts = parse_mounts(MOUNTINFO)
    mode, reason = choose_watch_mode("auto", "/mnt/nas/2020", mounts)
    assert mode == "poll" and "cifs" in reason and "//nas/photos" in reason
    assert choose_watch_mode("auto", "/mnt/cloud/pics", mounts)[0] == "poll"
    assert choose_watch_mode("auto", "/media/ntfs/pics", mounts)[0] == "inotify"
    mode, reason = choose_watch_mode("auto", "/home/me/Pictures", mounts)
    assert mode == "inotify" and "ext4" in reason


def test_explicit_modes_are_honoured_and_bad_ones_refused():
    mounts = parse_mounts(MOUNTINFO)
    assert choose_watch_mode("inotify", "/mnt/nas/x", mounts)[0] == "inotify"
    assert choose_watch_mode("poll", "/home/me", mounts)[0] == "poll"
    with pytest.raises(ConfigError, match="'sometimes'"):
        choose_watch_mode("sometimes", "/home/me", mounts)


def test_empty_mount_table_assumes_local():
    mode, reason = choose_watch_mode("auto", "/anywhere", [])
    assert mode == "inotify" and "does not say" in reason


def test_read_mounts_from_a_file_and_a_missing_file(tmp_path):
    f = tmp_path / "mountinfo"
    f.write_text(MOUNTINFO)
    assert len(read_mounts(f)) == 7
    assert read_mounts(tmp_path / "absent") == []
    assert any(m.mount_point == "/" for m in read_mounts())  # the real system table


def test_inotify_limits(tmp_path):
    (tmp_path / "max_user_watches").write_text("8192\n")
    (tmp_path / "max_user_instances").write_text("garbage")
    limits = inotify_limits(tmp_path)
    assert limits["max_user_watches"] == 8192
    assert limits["max_user_instances"] is None and limits["max_queued_events"] is None
    real = inotify_limits()
    assert isinstance(real["max_user_watches"], int) and real["max_user_watches"] > 0
