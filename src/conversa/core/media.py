"""Stored media: what a file really is, the name it is stored under, and how it is served.

A file's stored name is chosen here (random, with an extension derived from the sniffed content,
never from a client's or customer's filename); the name people see stays in the database as the
display name. Media is served with headers that stop a browser from running it on our origin.
"""

from __future__ import annotations

import codecs
import re
import secrets
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import filetype
from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import NoReverseMatch, resolve, reverse
from django.urls.exceptions import Resolver404
from django.utils.http import content_disposition_header

# Extension of every type we store under its own name (sniffed; text by declaration + check).
# Anything else is stored as `.bin` and served as application/octet-stream.
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "audio/aac": "aac",
    "audio/mp4": "m4a",
    "audio/mpeg": "mp3",
    "audio/amr": "amr",
    "audio/ogg": "ogg",
    "video/mp4": "mp4",
    "video/3gpp": "3gp",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
MIME_BY_EXTENSION = {ext: mime for mime, ext in EXTENSIONS.items()}
UNKNOWN_MIME = "application/octet-stream"
UNKNOWN_EXTENSION = "bin"
# Shown in the page (inline); everything else is downloaded (Content-Disposition: attachment).
INLINE_MIMES = frozenset(m for m in EXTENSIONS if m.split("/")[0] in {"image", "audio", "video"}) | {
    "application/pdf"}
# Types without magic bytes: accepted only when declared so and the content is plain UTF-8 text.
TEXT_MIMES = frozenset({"text/plain", "text/csv"})
SNIFF_BYTES = 8192
SIGNING_SALT = "conversa.media.link"


@dataclass(frozen=True)
class Sniffed:
    mime: str  # what the content is (UNKNOWN_MIME when it is none of EXTENSIONS)
    extension: str  # the extension it is stored with

    @property
    def known(self) -> bool:
        return self.mime != UNKNOWN_MIME


def _is_utf8_text(chunks: Iterable[bytes]) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for chunk in chunks:
            if b"\x00" in chunk:
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def sniff(*, head: bytes, chunks: Iterable[bytes], declared_mime: str) -> Sniffed:
    """What a file is, from its bytes. `head` is its first bytes (at least SNIFF_BYTES when the
    file is that long); `chunks` the whole content, read only for files declared as text."""
    kind = filetype.guess(head)
    if kind is not None:
        if kind.mime in EXTENSIONS:
            return Sniffed(kind.mime, EXTENSIONS[kind.mime])
        return Sniffed(UNKNOWN_MIME, UNKNOWN_EXTENSION)
    declared = declared_mime.split(";")[0].strip().lower()
    if declared in TEXT_MIMES and _is_utf8_text(chunks):
        return Sniffed(declared, EXTENSIONS[declared])
    return Sniffed(UNKNOWN_MIME, UNKNOWN_EXTENSION)


def sniff_upload(upload: Any, *, declared_mime: str) -> Sniffed:
    """What an uploaded file is, from its bytes (left at its start for whoever reads it next)."""
    head = upload.read(SNIFF_BYTES)
    upload.seek(0)
    sniffed = sniff(head=head, chunks=upload.chunks(), declared_mime=declared_mime)
    upload.seek(0)
    return sniffed


def whatsapp_kind(mime: str) -> tuple[str, int] | None:
    """(WhatsApp media kind, size limit in bytes) of a sniffed type it accepts (CONVERSA_MEDIA_LIMITS)."""
    for kind, (limit, types) in settings.CONVERSA_MEDIA_LIMITS.items():
        if mime in types:
            return kind, limit
    return None


def sniff_bytes(content: bytes, *, declared_mime: str) -> Sniffed:
    return sniff(head=content[:SNIFF_BYTES], chunks=[content], declared_mime=declared_mime)


def new_storage_name(sniffed: Sniffed) -> str:
    """A random, unguessable file name (the FileField's upload_to adds the folder)."""
    return f"{secrets.token_hex(16)}.{sniffed.extension}"


def clean_display_name(name: str, *, limit: int = 255) -> str:
    """The name shown to people: no folders, no control characters, bounded length."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if len(name) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and 0 < len(extension) <= 16:
        return stem[: limit - len(extension) - 1] + "." + extension
    return name[:limit]


def stored_mime(storage_name: str) -> str:
    """The type a stored file is served as: from the extension we chose, never from a client."""
    extension = storage_name.rsplit(".", 1)[-1].lower() if "." in storage_name else ""
    return MIME_BY_EXTENSION.get(extension, UNKNOWN_MIME)


def download_name(*, storage_name: str, display_name: str) -> str:
    """The file name a browser saves: the display name, with our extension appended when it
    claims another type (a PNG named photo.html is saved as photo.html.png)."""
    extension = storage_name.rsplit(".", 1)[-1].lower() if "." in storage_name else UNKNOWN_EXTENSION
    name = clean_display_name(display_name) or f"file.{extension}"
    if extension != UNKNOWN_EXTENSION and not name.lower().endswith("." + extension):
        name = f"{name}.{extension}"
    return name


RANGE_CHUNK = 64 * 1024
_SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str, *, size: int) -> tuple[int, int] | None:
    """The (first, last) bytes a `Range: bytes=…` header asks of a `size`-byte file, clamped to it;
    None to serve the whole file (no header, a malformed one, several ranges: RFC 9110 lets a
    server ignore Range). Raises ValueError when the range lies wholly past the end (a 416)."""
    match = _SINGLE_RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first_text, last_text = match.groups()
    if first_text == "":  # "bytes=-N": the last N bytes
        suffix = int(last_text)
        if suffix == 0:
            raise ValueError("empty suffix range")
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    last = size - 1 if last_text == "" else min(int(last_text), size - 1)
    if first > last:
        if last_text != "" and int(last_text) < first:
            return None  # "bytes=9-3" is malformed: ignored
        raise ValueError("range starts past the end")
    return first, last


def _read_range(stored: Any, *, first: int, last: int) -> Iterator[bytes]:
    try:
        stored.seek(first)
        left = last - first + 1
        while left > 0:
            chunk = stored.read(min(RANGE_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
    finally:
        stored.close()


def requested_range(request: HttpRequest) -> str:
    """The request's Range header, or "" when an If-Range makes it conditional: we keep no
    validators to check it against, so the whole file is the safe answer (RFC 9110 13.1.5)."""
    return "" if "If-Range" in request.headers else request.headers.get("Range", "")


def _whole_or_range(stored: Any, *, mime: str, range_header: str) -> HttpResponseBase:
    size = stored.size
    response: HttpResponseBase
    try:
        wanted = byte_range(range_header, size=size) if range_header else None
    except ValueError:
        stored.close()
        response = HttpResponse(status=416, content_type=mime)
        response["Content-Range"] = f"bytes */{size}"
        return response
    if wanted is None:
        response = FileResponse(stored, content_type=mime)
    else:
        first, last = wanted
        response = StreamingHttpResponse(_read_range(stored, first=first, last=last), status=206, content_type=mime)
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
        response["Content-Length"] = str(last - first + 1)
    response["Accept-Ranges"] = "bytes"
    return response


def media_response(*, storage_name: str, display_name: str, range_header: str = "") -> HttpResponseBase:
    """Serve a stored file safely: the type we sniffed, attachment unless it is a whitelisted
    image/audio/video/pdf, nosniff, and a sandbox CSP so nothing in it runs with our origin.
    A single byte range is served as a 206 (browsers seek in voice notes and videos that way).
    With CONVERSA_MEDIA_ACCEL_REDIRECT_PREFIX set, nginx sends the bytes (X-Accel-Redirect) and
    answers ranges itself."""
    mime = stored_mime(storage_name)
    inline = mime in INLINE_MIMES
    prefix = settings.CONVERSA_MEDIA_ACCEL_REDIRECT_PREFIX
    response: HttpResponseBase
    if prefix:
        response = HttpResponse(content_type=mime)
        response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(storage_name)
    else:
        try:
            stored = default_storage.open(storage_name, "rb")
        except FileNotFoundError as exc:
            # The row outlived its file (restored backup, manual cleanup): nothing to serve.
            raise Http404("The file of this message is no longer stored.") from exc
        response = _whole_or_range(stored, mime=mime, range_header=range_header)
    if mime.startswith("text/"):
        response["Content-Type"] = f"{mime}; charset=utf-8"
    disposition = content_disposition_header(
        not inline, download_name(storage_name=storage_name, display_name=display_name))
    if disposition:
        response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --------------------------------------------------------------------------- signed links
@dataclass(frozen=True)
class LinkedFile:
    storage_name: str
    display_name: str


def signed_token(storage_name: str, *, display_name: str = "") -> str:
    """A token naming one stored file (and the name to save it as), signed with SECRET_KEY;
    its age is checked on use (CONVERSA_MEDIA_LINK_MAX_AGE)."""
    return signing.dumps([storage_name, display_name], salt=SIGNING_SALT)


def linked_file(token: str) -> LinkedFile | None:
    """The stored file a token names, or None when it is forged or expired."""
    try:
        data = signing.loads(token, salt=SIGNING_SALT, max_age=settings.CONVERSA_MEDIA_LINK_MAX_AGE)
    except signing.BadSignature:
        return None
    if not (isinstance(data, list) and len(data) == 2 and all(isinstance(x, str) for x in data) and data[0]):
        return None
    return LinkedFile(storage_name=data[0], display_name=data[1])


def signed_path(storage_name: str, *, display_name: str = "") -> str:
    return reverse("media-link", kwargs={"token": signed_token(storage_name, display_name=display_name)})


def signed_url(storage_name: str, *, display_name: str = "") -> str:
    """An absolute, expiring link to one stored file: what providers fetch our media from."""
    return settings.PUBLIC_BASE_URL + signed_path(storage_name, display_name=display_name)


def storage_name_from_link(url: str) -> str | None:
    """The stored file one of our signed links names (any host: only the path and its signature
    count), or None when the URL is not such a link."""
    try:
        match = resolve(urlsplit(url).path)
    except (Resolver404, NoReverseMatch, ValueError):
        return None
    if match.url_name != "media-link":
        return None
    linked = linked_file(str(match.kwargs.get("token", "")))
    return linked.storage_name if linked else None
