"""Files a command writes where the user said (``--out``): a place that cannot take them is one paragraph."""

from __future__ import annotations

from pathlib import Path


class OutputError(Exception):
    """An output cannot be written; ``str(err)`` names the path, why, and what to do."""


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def write_file(path: str | Path, text: str, option: str = "--out") -> None:
    """Write ``text`` to the file ``path``; OutputError when it is a folder, its folder is missing, or it cannot
    be written (read-only, no permission, no space)."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{option} {str(path)!r} is a folder: name a file (e.g. {str(target / 'report.md')!r}).")
    if not target.parent.is_dir():
        raise OutputError(f"{option} {str(path)!r}: the folder {str(target.parent)!r} does not exist. Create it "
                          f"first (mkdir -p {target.parent}) or name a file in an existing folder.")
    try:
        target.write_text(text)
    except OSError as exc:
        raise OutputError(f"{option} {str(path)!r} cannot be written ({_why(exc)}): the folder may be read-only "
                          "or full; name a file in a writable folder.") from None


def write_files(folder: str | Path, files: dict[str, str], option: str = "--out") -> None:
    """Create ``folder`` (and its parents) and write each ``name -> text`` into it; OutputError naming the
    folder when it is a file, or cannot be created or written."""
    target = Path(folder)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{option} {str(folder)!r} is a file, not a folder: name a folder for the reports.") \
            from None
    except OSError as exc:
        raise OutputError(f"the reports' folder {str(folder)!r} cannot be created ({_why(exc)}): the storage may "
                          f"be read-only or a file; name a writable folder with {option} DIR.") from None
    for name, text in files.items():
        try:
            (target / name).write_text(text)
        except OSError as exc:
            raise OutputError(f"{str(target / name)!r} cannot be written ({_why(exc)}): the folder may be "
                              f"read-only or full; name a writable folder with {option} DIR.") from None
