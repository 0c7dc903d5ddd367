"""Check an export archive (backup.export's format) as a stream: `fab export` runs it on what it
received, and whoever imports an export elsewhere can run it too (docs/export.md). Standard
library only, like the rest of backup/."""
from __future__ import annotations

import hashlib
import json
import tarfile
from typing import IO, Any

from backup.export import CHUNK, FORMAT, MANIFEST, ExportError


def verify_archive(source: IO[bytes]) -> dict[str, Any]:
    """Read a (decrypted) export as a stream: every regular member's size and sha256 must be
    the manifest's, every file the manifest names must be there, and the manifest must be the
    last member. Returns the manifest; ExportError names the first difference. Used by
    `fab export` and by whoever imports an export elsewhere (docs/export.md)."""
    seen: dict[str, tuple[int, str]] = {}
    manifest: dict[str, Any] | None = None
    with tarfile.open(fileobj=source, mode="r|") as stream:
        for member in stream:
            if manifest is not None:
                raise ExportError(f"member {member.name!r} after the manifest")
            content = stream.extractfile(member) if member.isreg() else None
            if member.name == MANIFEST and content is not None:
                manifest = json.loads(content.read())
                continue
            if content is not None:
                digest, size = hashlib.sha256(), 0
                while chunk := content.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                seen[member.name] = (size, digest.hexdigest())
    if manifest is None:
        raise ExportError("no manifest.json: the archive is incomplete")
    if manifest.get("format") != FORMAT:
        raise ExportError(f"manifest format {manifest.get('format')!r}, expected {FORMAT}")
    listed = {m["name"]: (m["size"], m["sha256"]) for m in manifest["members"]
              if m["type"] == "file"}
    for name, (size, sha256) in listed.items():
        if name not in seen:
            raise ExportError(f"{name}: in the manifest, missing from the archive")
        if seen[name] != (size, sha256):
            raise ExportError(f"{name}: {seen[name][0]} bytes, sha256 {seen[name][1][:12]}; "
                              f"the manifest says {size} bytes, {sha256[:12]}")
    extra = sorted(set(seen) - set(listed))
    if extra:
        raise ExportError(f"not in the manifest: {', '.join(extra[:5])}")
    return manifest
