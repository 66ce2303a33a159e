"""Files upload v2 of the Slack stand-in (``sandbox.slack``), after Slack's method reference:

1. ``files.getUploadURLExternal`` (``filename``, ``length`` > 0, optional ``alt_txt`` of at most
   1000 characters) answers ``{"upload_url": ..., "file_id": "F..."}``;
2. the file's bytes are POSTed to ``upload_url`` — raw, or as a ``multipart/form-data`` part —
   with no token (the URL is the credential); the answer is HTTP 200 ``OK - <length>`` in plain
   text, and an unknown upload URL is a 404;
3. ``files.completeUploadExternal`` (``files`` = a JSON array of ``{"id", "title"}``, optional
   ``channel_id``, ``initial_comment``, ``thread_ts``) shares the files and answers ``files``.

Errors are Slack's codes: ``missing_argument`` (a zero ``length``), ``invalid_arguments``,
``alt_txt_too_large``, ``file_not_found`` (an id never handed out, or whose bytes never arrived);
the channel checks (``invalid_channel``, ``not_in_channel``) belong to ``sandbox.slack``.
Slack shares a completed upload asynchronously; the stand-in shares it at once.
"""

from __future__ import annotations

import json
import mimetypes
import secrets
import time
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from sandbox.base import Request, Response
from sandbox.slack_api import SlackError

__all__ = ["MAX_ALT_TEXT", "UPLOAD_PATH", "FileStore", "Upload"]

UPLOAD_PATH = "/upload/v1/"
MAX_ALT_TEXT = 1000


@dataclass
class Upload:
    """One file from its upload URL to its share."""

    id: str
    filename: str
    length: int
    alt_txt: str | None
    ticket: str
    created: int
    content: bytes | None = None
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    shared_ts: str | None = None

    def view(self, user: str, workspace_url: str) -> dict[str, Any]:
        """The file object Slack answers with."""
        mimetype = mimetypes.guess_type(self.filename)[0] or "application/octet-stream"
        filetype = self.filename.rsplit(".", 1)[-1].lower() if "." in self.filename else ""
        slug = self.filename.lower().replace(" ", "_")
        return {
            "id": self.id, "created": self.created, "timestamp": self.created,
            "name": self.filename, "title": self.title or self.filename, "mimetype": mimetype,
            "filetype": filetype, "pretty_type": filetype.upper(), "user": user,
            "mode": "hosted", "editable": False, "is_external": False, "is_public": True,
            "size": len(self.content or b""), "alt_txt": self.alt_txt,
            "url_private": f"{workspace_url}files-pri/T0SANDBOX1-{self.id}/{slug}",
            "permalink": f"{workspace_url}files/{user}/{self.id}/{slug}",
        }  # fmt: skip


class FileStore:
    """Uploads by file id and by upload ticket (not thread-safe: the caller holds its lock)."""

    def __init__(self) -> None:
        self._uploads: dict[str, Upload] = {}
        self._tickets: dict[str, str] = {}

    def begin(self, args: dict[str, Any], root_url: str) -> dict[str, Any]:
        """``files.getUploadURLExternal``: a new upload URL and file id."""
        filename = args.get("filename")
        if not isinstance(filename, str) or not filename.strip():
            raise SlackError("invalid_arguments")
        try:
            length = int(str(args.get("length", "")).strip())
        except ValueError as exc:
            raise SlackError("invalid_arguments") from exc
        if length <= 0:
            raise SlackError("missing_argument")
        alt = args.get("alt_txt")
        if alt is not None and len(str(alt)) > MAX_ALT_TEXT:
            raise SlackError("alt_txt_too_large")
        ident = f"F{0x5C000001 + len(self._uploads):X}"
        ticket = secrets.token_urlsafe(18)
        self._uploads[ident] = Upload(ident, filename, length,
                                      None if alt is None else str(alt), ticket,
                                      int(time.time()))  # fmt: skip
        self._tickets[ticket] = ident
        return {"upload_url": f"{root_url.rstrip('/')}{UPLOAD_PATH}{ticket}", "file_id": ident}

    def receive(self, request: Request) -> Response:
        """The POST of a file's bytes to its upload URL."""
        ident = self._tickets.get(request.path.removeprefix(UPLOAD_PATH))
        if request.method != "POST":
            return Response(405, b"method not allowed")
        if ident is None:
            return Response(404, b"upload not found")
        content = _file_part(request)
        if content is None:
            return Response(400, b"malformed multipart body")
        self._uploads[ident].content = content
        return Response(200, f"OK - {len(content)}".encode())

    def pending(self, args: dict[str, Any]) -> list[tuple[Upload, str | None]]:
        """The uploads and titles ``files.completeUploadExternal`` names, checked."""
        raw = args.get("files")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise SlackError("invalid_arguments") from exc
        if not isinstance(raw, list) or not raw:
            raise SlackError("invalid_arguments")
        out: list[tuple[Upload, str | None]] = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise SlackError("invalid_arguments")
            upload = self._uploads.get(item["id"])
            if upload is None or upload.content is None or upload.shared_ts is not None:
                raise SlackError("file_not_found")
            title = item.get("title")
            out.append((upload, str(title) if title is not None else None))
        return out

    def all(self) -> list[Upload]:
        """Every upload, in the order the URLs were handed out."""
        return list(self._uploads.values())


def _file_part(request: Request) -> bytes | None:
    """The file's bytes: the body itself, or the file part of a multipart form."""
    kind = str(request.headers.get("Content-Type", ""))
    if not kind.lower().startswith("multipart/form-data"):
        return request.body
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {kind}\r\n\r\n".encode() + request.body)
    if not message.is_multipart():
        return None
    for part in message.iter_parts():
        if part.get_filename() is not None or part.get_param("name", header="content-disposition") \
                in ("file", "filename"):
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None
