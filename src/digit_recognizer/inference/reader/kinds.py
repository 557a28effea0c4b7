"""What a file that Pillow cannot open is, told by its first bytes, so that the error names it and says what to do:
a PDF, an iPhone's HEIC photo, an SVG drawing, a web page saved under an image's name. Anything else is "not an
image".

    kind_of(data) -> "a PDF document, not an image: ..." | None
"""
from __future__ import annotations

HEAD = 1024  # bytes: every signature below lies in the first few hundred
# ISO base media files (ftyp box at byte 4) whose brand is a HEIF still image or sequence (Apple's HEIC among them)
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
NOT_AN_IMAGE = "not an image (or a format Pillow cannot read)"


def kind_of(data: bytes) -> str | None:
    """A one-line description of a file Pillow cannot read, and what to do, where its first bytes tell what it is;
    None where they do not."""
    head = data[:HEAD]
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()  # a text file may start with a byte-order mark or blanks
    if head.startswith(b"%PDF"):
        return "a PDF document, not an image: export the page as PNG or JPEG"
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return ("a HEIC/HEIF photo, which this installation cannot decode: save it as JPEG or PNG "
                "(on an iPhone: Settings > Camera > Formats > Most Compatible)")
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG drawing, not a pixel image: export it as PNG"
    if text.startswith((b"<!doctype html", b"<html")):
        return "a web page (HTML), not an image: a download may have saved the page instead of the picture"
    return None


def not_an_image(data: bytes) -> str:
    """Why `data` cannot be read as an image, in a few words."""
    return kind_of(data) or NOT_AN_IMAGE
