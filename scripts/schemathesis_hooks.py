"""Schemathesis hooks for scripts/schemathesis.sh (loaded via SCHEMATHESIS_HOOKS).

`POST /v1/documents` takes a raw `application/pdf` body, which schemathesis
cannot generate from a schema: these are the bodies it sends there. A small
valid PDF (so uploads can succeed and the stateful phase can follow the
document's links) and arbitrary bytes (which the server must refuse with a
documented 422 problem, never a 5xx).
"""

from hypothesis import strategies as st

import schemathesis

# One page, no text: the smallest document the intake accepts.
MINIMAL_PDF = (
    b"%PDF-1.4\n"
    b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n"
    b"%%EOF\n"
)

schemathesis.openapi.media_type(
    "application/pdf",
    st.one_of(
        st.just(MINIMAL_PDF),
        st.binary(max_size=4096),
        st.binary(max_size=256).map(lambda tail: b"%PDF-1.7\n" + tail),
    ),
)
