"""Make this checkout importable as ansible_collections.otp.release for plain pytest runs."""

import os
import sys
import tempfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def collections_root():
    """A directory holding ansible_collections/otp/release that resolves to this checkout."""
    if REPO.parent.name == "otp" and REPO.parent.parent.name == "ansible_collections":
        return REPO.parent.parent.parent
    base = Path(tempfile.gettempdir()) / "otp-release-collections-{0:08x}".format(zlib.crc32(str(REPO).encode()))
    link = base / "ansible_collections" / "otp" / "release"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(REPO)
    return base


COLLECTIONS_ROOT = str(collections_root())
if COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, COLLECTIONS_ROOT)
os.environ["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS_ROOT
