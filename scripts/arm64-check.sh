#!/usr/bin/env bash
# photod on Debian 12 arm64 as a Raspberry Pi 4 (Cortex-A72) and a Pi 5 (Cortex-A76) run it, emulated by
# qemu-user on an x86 machine: photod installed from this working tree with pip into a venv of an arm64 root
# filesystem, then `photod doctor`, a scan of the sample photos with a small bundle and a search, once per CPU,
# and, on the first CPU, `photod model import` of the ONNX files Chinese-CLIP's deploy script writes (made here,
# .arm64/cn-clip-onnx) with only what the board has: no torch. photod is installed with its `ocr` extra, and each
# CPU reads the text in the sample screenshot and in a real photo with a Chinese phrase rendered on it.
#
#   sudo scripts/arm64-check.sh              # the check; prints one line per step and writes .arm64/last-result.txt
#   sudo scripts/arm64-check.sh ocr          # only the install and the text reading, on each CPU
#   sudo scripts/arm64-check.sh int8 [DIR]   # int8 vectors of the same photos here (x86) and on each ARM CPU
#                                            # (DIR: an int8 bundle; default: the check's small bundle)
#
# Needs root (debootstrap, chroot, bind mounts) and Debian's qemu-user-static, binfmt-support and debootstrap,
# which it installs with apt-get if missing. The root filesystem (.arm64/rootfs, about 4 minutes to build) and
# the small bundle (.arm64/bundle, made here with torch: the arm64 venv has no torch, as on a Pi) are kept
# and reused; delete .arm64 to start over. Environment: PHOTOD_X86_PYTHON (a Python with photod's finetune
# extra, default .venv/bin/python), ARM64_CPUS (default "cortex-a72 cortex-a76"), ARM64_PHOTOS (default
# ../shared/photos/exif-samples), INT8_PHOTOS (photos the int8 comparison encodes, default 24), DEBIAN_MIRROR.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$REPO/.arm64
ROOTFS=$WORK/rootfs
PHOTOS=$(realpath "${ARM64_PHOTOS:-$REPO/../shared/photos/exif-samples}")
CPUS=${ARM64_CPUS:-cortex-a72 cortex-a76}
X86_PY=${PHOTOD_X86_PYTHON:-$REPO/.venv/bin/python}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
RESULT=$WORK/last-result.txt
DATA=/var/lib/photod-check  # inside the root filesystem
MOUNTS=()

say() { printf '%s\n' "$*" | tee -a "$RESULT"; }
die() { say "FAILED: $*"; exit 1; }

host_tools() {
    [ "$(id -u)" = 0 ] || { echo "run as root: sudo $0 $*" >&2; exit 2; }
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v update-binfmts >/dev/null || missing+=(binfmt-support)
    [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || command -v qemu-aarch64-static >/dev/null \
        || missing+=(qemu-user-static)
    if ((${#missing[@]})); then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
    # Containers and minimal hosts often have binfmt_misc unmounted, or qemu's entry disabled
    [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
}

build_rootfs() {
    if [ -e "$ROOTFS/.photod-rootfs-complete" ]; then
        say "rootfs: reusing $ROOTFS"
        return
    fi
    rm -rf "$ROOTFS"
    local t0=$SECONDS
    debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,python3-dev,gcc,libc6-dev,ca-certificates \
        bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || die "debootstrap: see $WORK/debootstrap.log"
    touch "$ROOTFS/.photod-rootfs-complete"
    say "rootfs: Debian 12 arm64 built in $((SECONDS - t0)) s"
}

bind() { # SRC DEST-IN-ROOTFS [ro]
    [ -d "$1" ] && mkdir -p "$ROOTFS$2" || touch "$ROOTFS$2"
    mount --bind "$1" "$ROOTFS$2"
    MOUNTS+=("$ROOTFS$2")
    if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$ROOTFS$2"; fi
}

unmount_all() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" || true
    done
    MOUNTS=()
}

mount_system() {
    trap unmount_all EXIT
    mkdir -p "$ROOTFS/proc"
    mount -t proc proc "$ROOTFS/proc"
    MOUNTS+=("$ROOTFS/proc")
    bind /dev /dev
    bind /sys /sys ro
    bind "$PHOTOS" /photos ro
    bind "$REPO/../shared" /opt/shared ro  # tests/support's sample photos and font, for the text check
    cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
    # pip trusts what this host trusts (a network behind a TLS-inspecting proxy has its own root certificate)
    cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/host-ca-certificates.crt"
}

# qemu-user shows the guest the host's /proc/cpuinfo, in x86 form, and onnxruntime's CPU detection crashes
# on it (signal 11 at import). An ARM one as the board's kernel writes it, one entry per host core.
cpuinfo() { # QEMU_CPU
    local part variant revision features
    case $1 in
        cortex-a72) part=0xd08 variant=0x0 revision=3 features="fp asimd evtstrm crc32 cpuid" ;;
        cortex-a76) part=0xd0b variant=0x4 revision=1
            features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop"
            features+=" asimddp" ;;
        *) die "no /proc/cpuinfo known for QEMU_CPU=$1 (add one to cpuinfo() in $0)" ;;
    esac
    local i
    for ((i = 0; i < $(nproc); i++)); do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\n' "$i" "$features"
        printf 'CPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
            "$variant" "$part" "$revision"
    done
}

in_chroot() { # QEMU_CPU COMMAND...; a clean environment, as a login on the board would have
    local cpu=$1
    shift
    chroot "$ROOTFS" /usr/bin/env -i QEMU_CPU="$cpu" HOME=/root LANG=C.UTF-8 PATH=/opt/venv/bin:/usr/bin:/bin \
        PHOTOD_DATA_DIR="$DATA/$cpu" "$@"
}

with_cpu() { # QEMU_CPU COMMAND...: COMMAND with that CPU's /proc/cpuinfo in place
    local cpu=$1 status=0
    shift
    cpuinfo "$cpu" >"$WORK/cpuinfo-$cpu"
    mount --bind "$WORK/cpuinfo-$cpu" "$ROOTFS/proc/cpuinfo"
    MOUNTS+=("$ROOTFS/proc/cpuinfo")
    "$@" || status=$?
    umount "$ROOTFS/proc/cpuinfo"
    unset 'MOUNTS[${#MOUNTS[@]}-1]'
    return $status
}

working_tree() { # the tree as git sees it, as a tar: tracked and new files, nothing ignored (.venv, .arm64)
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
        tar --null -T - --ignore-failed-read --sort=name --mtime=@0 --owner=0 --group=0 -cf - 2>/dev/null)
}

install_photod() {
    local t0=$SECONDS src=$ROOTFS/opt/photod-src sum
    sum=$(working_tree | sha256sum | cut -d' ' -f1)
    if [ -x "$ROOTFS/opt/venv/bin/photod" ] && [ "$(cat "$src.sha256" 2>/dev/null)" = "$sum" ]; then
        say "install: reusing the venv, the working tree is unchanged since it was installed"
        return
    fi
    rm -rf "$src" "$src.sha256" && mkdir -p "$src"
    working_tree | tar -C "$src" -xf -
    with_cpu cortex-a72 in_chroot cortex-a72 sh -c \
        '[ -x /opt/venv/bin/pip ] || python3 -m venv /opt/venv
         export PIP_CERT=/etc/ssl/certs/host-ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1
         pip install -q "/opt/photod-src[ocr]"' \
        >"$WORK/pip.log" 2>&1 || die "pip install: see $WORK/pip.log"
    echo "$sum" >"$src.sha256"
    local torch
    torch=$(in_chroot cortex-a72 python3 -c \
        'import importlib.util as u; print("torch absent" if u.find_spec("torch") is None else "TORCH PRESENT")')
    say "install: pip install of the working tree in $((SECONDS - t0)) s; $torch"
}

small_bundle() {
    if [ -e "$WORK/bundle/manifest.json" ]; then return; fi
    [ -x "$X86_PY" ] || die "no Python with photod's finetune extra at $X86_PY (set PHOTOD_X86_PYTHON)"
    # tests/support's small cn_clip ViT, exported and verified through photod's own import path
    (cd "$REPO" && PYTHONPATH=$REPO nice -n 10 "$X86_PY" -c '
import shutil, sys, tempfile
from tests.support.modelkit import import_small
with tempfile.TemporaryDirectory() as d:
    shutil.copytree(import_small(d, "vit", precisions=("int8",)).bundles["int8"].path, sys.argv[1])
' "$WORK/bundle") >"$WORK/bundle.log" 2>&1 || die "building the small bundle: see $WORK/bundle.log"
}

onnx_files() { # Chinese-CLIP's deploy script's files for a random-weight RN50, made here (it needs torch)
    if [ -e "$WORK/cn-clip-onnx/rn50.txt.fp32.onnx" ]; then return; fi
    rm -rf "$WORK/cn-clip-onnx" && mkdir -p "$WORK/cn-clip-onnx"
    (cd "$WORK/cn-clip-onnx" && nice -n 10 "$X86_PY" "$REPO/scripts/cn_clip_deploy.py" --random RN50 rn50.pt -- \
        --model-arch RN50 --pytorch-ckpt-path rn50.pt --save-onnx-path rn50 --convert-text --convert-vision &&
        rm rn50.pt rn50.*.fp16.onnx*) >"$WORK/cn-clip-onnx.log" 2>&1 ||
        die "running Chinese-CLIP's deploy script: see $WORK/cn-clip-onnx.log"
}

import_on_board() { # QEMU_CPU: `photod model import` of those files on the board, where there is no torch
    local cpu=$1 t0=$SECONDS out
    rm -rf "${ROOTFS:?}$DATA/import-$cpu" && mkdir -p -m 700 "$ROOTFS$DATA/import-$cpu"
    in_chroot "$cpu" env PHOTOD_DATA_DIR="$DATA/import-$cpu" photod model import /opt/cn-clip-onnx \
        >"$WORK/$cpu-import.txt" 2>&1 || die "$cpu: photod model import: $(tail -3 "$WORK/$cpu-import.txt")"
    out=$(python3 -c 'import json, sys; m = json.load(open(sys.argv[1]))
print(m["arch"], m["precision"], m["verification"]["int8"]["image"]["min"], m["verification"]["int8"]["text"]["min"])' \
        "$ROOTFS$DATA/import-$cpu/models/rn50-int8/manifest.json")
    read -r arch precision image text <<<"$out"
    say "$cpu: model import of Chinese-CLIP's RN50 ONNX files in $((SECONDS - t0)) s: $arch $precision," \
        "cosine to fp32 image $image, text $text"
}

# The text in the sample screenshot and in a sample photo with a phrase rendered at 3 % of its height, read on
# the board by the ocr extra's models, with the words tests/test_ocr.py looks for.
OCR_CHECK='
import sys, time
from PIL import Image
from photod.ingest import ocr
from tests.support.rendered_text import PHOTOS, as_large_photo, found, render, sample_photos
if ocr.unavailable():
    sys.exit(ocr.unavailable())
reader = ocr.TextReader(threads=1, deadline=3600)  # emulated: tens of times slower than a board
with Image.open(PHOTOS / "photoprism-samples" / "Screenshot 2019-05-21 at 10.45.52.png") as img:
    shot = img.convert("RGB")
photo = render(as_large_photo(sample_photos(1)[0], side=ocr.OCR_SIDE), "欢迎光临北京饭店", 0.03, seed=3)
checks = [(shot, ("Photos", "Search", "Newest first", "Pineapple", "Camera")), (photo, ("北京饭店",))]
t0 = time.monotonic()
texts = [reader.read(image).text for image, _words in checks]
missing = [w for text, (_i, words) in zip(texts, checks) for w in words if not found(text, w)]
print(sum(len(words) for _i, words in checks) - len(missing), sum(len(words) for _i, words in checks),
      round(time.monotonic() - t0), ",".join(missing) or "-")
'

ocr_on_board() { # QEMU_CPU
    local cpu=$1 out
    out=$(in_chroot "$cpu" env PYTHONPATH=/opt/photod-src python3 -c "$OCR_CHECK" 2>"$WORK/$cpu-ocr.txt") ||
        die "$cpu: reading text: $(tail -3 "$WORK/$cpu-ocr.txt")"
    read -r got words seconds missing <<<"$out"
    [ "$got" = "$words" ] || die "$cpu: text reading missed: $missing"
    say "$cpu: OCR found all $words words in the screenshot and a photo with a rendered Chinese phrase" \
        "($seconds s emulated)"
}

check_cpu() { # QEMU_CPU
    local cpu=$1 name t0 out
    name=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["name"])' "$WORK/bundle/manifest.json")
    rm -rf "${ROOTFS:?}$DATA/$cpu" && mkdir -p -m 700 "$ROOTFS$DATA/$cpu" "$ROOTFS$DATA/$cpu/models"
    cp -r "$WORK/bundle" "$ROOTFS$DATA/$cpu/models/$name"
    printf '[signals]\nocr = false\n\n[[roots]]\npath = "/photos"\nlabel = "samples"\n' \
        >"$ROOTFS/etc/photod-check.toml"
    local photod=(in_chroot "$cpu" photod --config /etc/photod-check.toml)
    "${photod[@]}" model use "$name" >"$WORK/$cpu-model.txt" 2>&1 ||
        die "$cpu: photod model use $name: $(tail -1 "$WORK/$cpu-model.txt")"

    t0=$SECONDS
    "${photod[@]}" doctor >"$WORK/$cpu-doctor.txt" 2>&1 ||
        die "$cpu: photod doctor failed: $(grep FAIL "$WORK/$cpu-doctor.txt" | head -3)"
    local speed dot
    speed=$(sed -n 's/^\[ok  \] encoder speed: \([0-9.]* images\/s\).*/\1/p' "$WORK/$cpu-doctor.txt")
    dot="without dot-product"
    if grep -q "^\[ok  \] cpu: .*; has [^;]*dot-product" "$WORK/$cpu-doctor.txt"; then dot="with dot-product"; fi
    say "$cpu: doctor ok in $((SECONDS - t0)) s (cpu $dot; small bundle ${speed:-not timed})"

    t0=$SECONDS
    "${photod[@]}" scan >"$WORK/$cpu-scan.txt" 2>&1 || die "$cpu: photod scan failed: $(tail -3 "$WORK/$cpu-scan.txt")"
    out=$("${photod[@]}" status --json | python3 -c '
import json, sys
p = json.load(sys.stdin)["photos"]
print(p["indexed"], p["failed"], p["total"])')
    read -r indexed failed total <<<"$out"
    [ "$indexed" -gt 0 ] || die "$cpu: scan indexed nothing ($out)"
    say "$cpu: scan of $total files in $((SECONDS - t0)) s: $indexed indexed, $failed failed"

    t0=$SECONDS
    local count='import json, sys; print(len(json.load(sys.stdin)))'
    out=$("${photod[@]}" search "海边的日落" -k 5 --all --json | python3 -c "$count")
    [ "$out" -gt 0 ] || die "$cpu: the search found nothing"
    local named
    named=$("${photod[@]}" search --name Canon --json | python3 -c "$count")
    say "$cpu: search 海边的日落 gave $out results, --name Canon $named, in $((SECONDS - t0)) s"
}

check() {
    build_rootfs
    mount_system
    install_photod
    small_bundle
    onnx_files
    local cpu
    for cpu in $CPUS; do
        with_cpu "$cpu" check_cpu "$cpu"
        with_cpu "$cpu" ocr_on_board "$cpu"
    done
    cpu=${CPUS%% *}
    bind "$WORK/cn-clip-onnx" /opt/cn-clip-onnx ro
    with_cpu "$cpu" import_on_board "$cpu"
    say "passed: $(date -u +%Y-%m-%d) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
}

int8() { # [BUNDLE]
    local bundle=${1:-$WORK/bundle} bench=benchmarks/bench_int8_cpus.py cpu files=()
    build_rootfs
    mount_system
    install_photod
    [ -n "${1:-}" ] || small_bundle
    bundle=$(realpath "$bundle")
    bind "$bundle" /opt/int8-bundle ro
    local out=$WORK/int8/$(basename "$bundle")
    mkdir -p "$out"
    (cd "$REPO" && export PYTHONPATH=$REPO &&
        nice -n 10 "$X86_PY" $bench prepare --bundle "$bundle" --photos "$PHOTOS" --count "${INT8_PHOTOS:-24}" \
            --out "$out/pixels.npy" &&
        nice -n 10 "$X86_PY" $bench encode --bundle "$bundle" --pixels "$out/pixels.npy" --out "$out/x86.npy")
    files+=("$out/x86.npy")
    bind "$out" /opt/int8-out
    for cpu in $CPUS; do
        with_cpu "$cpu" in_chroot "$cpu" python3 /opt/photod-src/$bench encode \
            --bundle /opt/int8-bundle --pixels /opt/int8-out/pixels.npy --out "/opt/int8-out/$cpu.npy"
        files+=("$out/$cpu.npy")
    done
    (cd "$REPO" && PYTHONPATH=$REPO "$X86_PY" $bench compare --bundle "$bundle" "${files[@]}") | tee "$out/result.md"
}

mkdir -p "$WORK"
case ${1:-check} in
    check) host_tools; : >"$RESULT"; check ;;
    int8) host_tools; RESULT=$WORK/int8-log.txt; int8 "${2:-}" ;;
    ocr) host_tools; RESULT=$WORK/ocr-log.txt; build_rootfs; mount_system; install_photod
        for cpu in $CPUS; do with_cpu "$cpu" ocr_on_board "$cpu"; done ;;
    *) echo "usage: $0 [check | int8 [BUNDLE_DIR] | ocr]" >&2; exit 2 ;;
esac
