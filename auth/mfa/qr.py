"""The QR code of an authenticator app's set-up link, as inline SVG that scales.

The SVG carries a `viewBox` and no width or height, so the page's style sheet decides its
size (the full width of a phone, up to a maximum): a fixed-size code is clipped on a
narrow screen, and a clipped code does not scan. The quiet zone (four modules) and error
correction level M are what authenticator apps read most reliably from a screen.
"""

from __future__ import annotations

import segno


def svg(uri: str, *, title: str) -> str:
    """`uri` as an inline `<svg class="qr-code" viewBox=…>` whose `<title>` is `title`."""
    code = segno.make(uri, error="m", micro=False)
    return str(
        code.svg_inline(
            omitsize=True, title=title, svgclass="qr-code", border=4, dark="#000", light="#fff"
        )
    )
