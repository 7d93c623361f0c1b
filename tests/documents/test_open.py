"""What ``dv.open`` accepts as a string: paths, http(s) URLs; ``file://`` and other schemes only when allowed
(issue 15, finding 5: an application passing untrusted URLs must not read local files through ``file://``)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

import docvlm as dv
from docvlm.documents.web import BlockedURLError
from docvlm.limits import override_limits
from tests.conftest import make_pdf


def test_file_urls_are_refused_unless_local_files_are_allowed(tmp_path: Path) -> None:
    with pytest.raises(BlockedURLError, match=r"file:///etc/passwd: file:// URLs are refused") as info:
        dv.open("file:///etc/passwd")
    assert "allow_local_files=True" in str(info.value.hint)
    pdf = tmp_path / "a report.pdf"
    pdf.write_bytes(make_pdf(text="Local"))
    with pytest.raises(BlockedURLError, match="refused"):
        dv.open(pdf.as_uri())  # file:///.../a%20report.pdf
    with dv.open(pdf.as_uri(), allow_local_files=True) as doc:
        assert doc[0].text() == "Local0"
    with dv.open(str(pdf)) as doc:  # a path is still a path
        assert doc[0].text() == "Local0"
    with pytest.raises(BlockedURLError, match="another host"):
        dv.open("file://files.example.com/etc/passwd", allow_local_files=True)


@pytest.mark.parametrize("url", [
    "FILE:///etc/passwd", "  file:/etc/passwd", "ftp://example.com/a.pdf", "gopher://127.0.0.1:70/_x",
    "data:application/pdf;base64,JVBERi0xLjQ=", "javascript:alert(1)", "jar:file:///x.jar!/a.pdf",
    "smb://host/share/a.pdf", "dict://127.0.0.1:11211/stats", "http:/etc/passwd",
])
def test_every_other_scheme_is_refused(url: str) -> None:
    with pytest.raises(BlockedURLError) as info:
        dv.open(url)
    assert "\n" not in str(info.value)
    if not url.strip().lower().startswith("file:"):
        with pytest.raises(BlockedURLError):
            dv.open(url, allow_local_files=True)  # allowing local files allows file:// only


def test_strings_that_only_look_like_urls_stay_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes:v2.pdf").write_bytes(make_pdf(text="Colon"))
    with dv.open("notes:v2.pdf") as doc:
        assert doc[0].text() == "Colon0"
    with pytest.raises(dv.DocumentNotFoundError):
        dv.open("C:\\docs\\invoice.pdf")  # a Windows drive, not a scheme


def test_allow_local_files_false_refuses_every_path(tmp_path: Path) -> None:
    pdf = tmp_path / "x.pdf"
    pdf.write_bytes(make_pdf())
    for source in (str(pdf), pdf, pdf.as_uri()):
        with pytest.raises(BlockedURLError, match=r"local files are not allowed|file:// URLs are refused"):
            dv.open(source, allow_local_files=False)
    with dv.open(pdf.read_bytes(), allow_local_files=False) as doc:  # bytes and file objects are fine
        assert doc[0].text() == "Hello0"
    with dv.open(io.BytesIO(pdf.read_bytes()), allow_local_files=False) as doc:
        assert len(doc) == 1


def test_a_file_object_is_read_within_max_input_bytes() -> None:
    data = make_pdf()
    with override_limits(max_input_bytes=len(data) - 1), pytest.raises(dv.PageTooLargeError, match="max_input_bytes"):
        dv.open(io.BytesIO(data))
    with override_limits(max_input_bytes=len(data)), dv.open(io.BytesIO(data)) as doc:
        assert len(doc) == 1


def test_the_command_line_reads_file_urls(tmp_path: Path) -> None:
    from docvlm.cli import app

    pdf = tmp_path / "cli.pdf"
    pdf.write_bytes(make_pdf(text="Cli"))
    res = CliRunner().invoke(app, ["words", pdf.as_uri()])
    assert res.exit_code == 0, res.output
    assert '"text": "Cli0"' in res.output
