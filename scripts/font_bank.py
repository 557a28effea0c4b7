"""Build the bank of handwriting-font glyphs that training draws other people's hands from.

    python scripts/font_bank.py [--out src/digit_recognizer/assets/font_glyphs.npz]

Fetches Google's handwriting fonts from the npm registry (the Fontsource packages, SIL Open Font License 1.1),
renders the ten digits and the letters of training.glyphs.LETTERS in up to two weights of each family, and writes
one npz (no pickles) with the glyphs, each family's name, version, licence and split. The split is fixed by a hash
of the family's group (Playwrite's school hands and the Edu hands each count as one), so validation and test
families are never trained on. Families that Debian packages as `fonts-*` are left out: those are kept for
evaluation by others.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from digit_recognizer.training.fonts import CHARACTERS, GLYPH_BOX, GLYPH_HEIGHT, split_of  # noqa: E402
from digit_recognizer.data.formats import atomic_write_bytes  # noqa: E402

FAMILIES = """
amatic-sc annie-use-your-telescope architects-daughter borel calligraffitti caveat caveat-brush cedarville-cursive
coming-soon covered-by-your-grace crafty-girls dawning-of-a-new-day delius delius-swash-caps edu-au-vic-wa-nt-hand
edu-nsw-act-foundation edu-qld-beginner edu-sa-beginner edu-tas-beginner edu-vic-wa-nt-beginner fuzzy-bubbles gaegu
gamja-flower give-you-glory gloria-hallelujah gochi-hand grape-nuts handlee hi-melody homemade-apple indie-flower
itim just-another-hand just-me-again-down-here kalam la-belle-aurore loved-by-the-king mali mansalva marck-script
mynerve nerko-one neucha nothing-you-could-do over-the-rainbow pangolin patrick-hand permanent-marker playpen-sans
playwrite-ar playwrite-at playwrite-br playwrite-ca playwrite-cl playwrite-co playwrite-cu playwrite-cz
playwrite-de-grund playwrite-de-sas playwrite-dk-loopet playwrite-es playwrite-fr-moderne playwrite-hr playwrite-hu
playwrite-id playwrite-ie playwrite-in playwrite-is playwrite-it-moderna playwrite-mx playwrite-ng-modern
playwrite-nl playwrite-no playwrite-nz playwrite-pe playwrite-pl playwrite-pt playwrite-ro playwrite-sk playwrite-tz
playwrite-us-trad playwrite-vn playwrite-za poor-story quintessential rancho reenie-beanie rock-salt schoolbell
sedgwick-ave shadows-into-light shadows-into-light-two shantell-sans short-stack solitreo square-peg sriracha
sue-ellen-francisco swanky-and-moo-moo the-girl-next-door unkempt vibur waiting-for-the-sunrise walter-turncoat
whisper yomogi zeyada
""".split()
RENDER_PX = 200  # font size the glyphs are rendered at before they are cropped and scaled to GLYPH_HEIGHT
INK_SEEN = 40  # a rendered pixel above this (of 255) belongs to the glyph's bounding box


def fetch(family: str, into: Path) -> tuple[Path, dict]:
    """npm pack @fontsource/<family> into `into`, unpacked: (its files folder, its package.json)."""
    out = subprocess.run(["npm", "pack", f"@fontsource/{family}", "--silent"], cwd=into, capture_output=True,
                         text=True, timeout=120)
    if out.returncode:
        raise SystemExit(f"npm pack @fontsource/{family} failed: {out.stderr.strip().splitlines()[-1:]}")
    folder = into / family
    with tarfile.open(into / out.stdout.strip().splitlines()[-1]) as tar:
        tar.extractall(folder, filter="data")
    return folder / "package" / "files", json.loads((folder / "package" / "package.json").read_text())


def weights(files: Path) -> list[Path]:
    """The lightest and the heaviest latin weight (the same file twice for a family of one weight)."""
    found = sorted(files.glob("*-latin-[0-9]*-normal.woff"),
                   key=lambda p: int(re.search(r"-(\d+)-normal", p.name).group(1)))
    return [found[0], found[-1]]


def rendered(font_file: Path, ch: str) -> np.ndarray:
    """One character -> (GLYPH_BOX, GLYPH_BOX) uint8, ink bright, its taller side GLYPH_HEIGHT, centred."""
    import cv2
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_file), RENDER_PX)
    im = Image.new("L", (RENDER_PX * 3, RENDER_PX * 3), 0)
    ImageDraw.Draw(im).text((RENDER_PX, RENDER_PX // 2), ch, fill=255, font=font)
    a = np.asarray(im, np.float32)
    ys, xs = np.nonzero(a > INK_SEEN)
    a = a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    s = GLYPH_HEIGHT / max(a.shape)
    a = cv2.resize(a, (max(1, round(a.shape[1] * s)), max(1, round(a.shape[0] * s))), interpolation=cv2.INTER_AREA)
    out = np.zeros((GLYPH_BOX, GLYPH_BOX), np.float32)
    top, left = (GLYPH_BOX - a.shape[0]) // 2, (GLYPH_BOX - a.shape[1]) // 2
    out[top:top + a.shape[0], left:left + a.shape[1]] = a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="src/digit_recognizer/assets/font_glyphs.npz")
    args = ap.parse_args()
    glyphs, names, versions, licences = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            files, package = fetch(family, Path(tmp))
            glyphs.append([[rendered(f, ch) for ch in CHARACTERS] for f in weights(files)])
            names.append(family)
            versions.append(package["version"])
            licences.append(package.get("license", "OFL-1.1"))
            print(family, package["version"], split_of(family), flush=True)
    import io

    bank = np.array(glyphs, np.uint8)  # (families, 2 weights, characters, GLYPH_BOX, GLYPH_BOX)
    buf = io.BytesIO()
    np.savez_compressed(buf, glyphs=bank, names=np.array(names), versions=np.array(versions),
                        licences=np.array(licences), characters=np.array(list(CHARACTERS)),
                        checksum=np.array(zlib.crc32(bank.tobytes())))
    atomic_write_bytes(Path(args.out), buf.getvalue())
    print(f"{len(names)} families -> {args.out} ({len(buf.getvalue()) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
