"""A contact import in a real browser (issue 12): upload, the columns matched by name and one chosen
by hand, then the live progress bar filling without a reload, the summary and the error report."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conversa.contacts.models import Contact, ContactDatabase, ContactImport

ROWS = 20_000
pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _small_batches() -> Iterator[None]:
    """Set before the server starts (it inherits the environment): many checkpoints, so the bar
    visibly moves through several values."""
    previous = os.environ.get("CONVERSA_IMPORT_BATCH")
    os.environ["CONVERSA_IMPORT_BATCH"] = "100"
    yield
    if previous is None:
        os.environ.pop("CONVERSA_IMPORT_BATCH", None)
    else:
        os.environ["CONVERSA_IMPORT_BATCH"] = previous


def _file(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as out:
        out.write("Celular;Nombre;Número de cliente;Plan\n")
        for n in range(ROWS):
            phone = "sin teléfono" if n % 1000 == 7 else f"11 4{n // 10000:03d}-{n % 10000:04d}"
            out.write(f"{phone};Cliente {n};N-{n};{'pro' if n % 2 else 'basic'}\n")
    return path


def test_columns_are_mapped_and_the_progress_bar_follows_the_import(agent_page: Callable[..., Page],
                                                                   demo: dict[str, Any], tmp_path: Path,
                                                                   screenshot_dir: Path) -> None:
    database = ContactDatabase.objects.get(name="Support contacts")
    before = Contact.objects.filter(database=database).count()
    page = agent_page("supervisor")
    page.goto("/supervisor/contacts/")
    page.get_by_role("link", name="Support contacts").click()
    page.get_by_role("link", name="Import a file").click()
    page.set_input_files("input[name=file]", str(_file(tmp_path / "clientes.csv")))
    page.get_by_role("button", name="Upload").click()

    # Matched by name: "Celular" is a phone, "Nombre" the first name, "Plan" the plan field.
    expect(page.get_by_role("heading", name="Match the columns to fields")).to_be_visible()
    expect(page.get_by_label("Celular")).to_have_value("phone")
    expect(page.get_by_label("Nombre")).to_have_value("first_name")
    expect(page.get_by_label("Plan")).to_have_value("plan")
    expect(page.get_by_label("Número de cliente")).to_have_value("")  # its label is "Customer number"
    page.get_by_label("Número de cliente").select_option("customer_number")
    expect(page.get_by_label("Country of numbers written without a country code")).to_have_value("AR")
    page.screenshot(path=str(screenshot_dir / "contact-import-mapping.png"), full_page=True)
    page.get_by_role("button", name="Start the import").click()

    progress = page.locator("#import-progress")
    expect(progress).to_be_visible()
    # Every value the bar takes, sampled in the page; gone if the page reloads.
    page.evaluate("""window.barValues = [];
        window.setInterval(() => window.barValues.push(document.querySelector('#import-progress progress').value),
                           50);""")
    page.wait_for_function("document.querySelector('#import-progress').dataset.status === 'done'", timeout=120_000,
                           polling=100)
    seen = set(page.evaluate("window.barValues"))
    assert any(0 < value < 100 for value in seen), sorted(seen)  # it moved, without a reload
    # Full once done (the sampler may not have ticked between the last update and "done").
    expect(progress.locator("progress")).to_have_js_property("value", 100)
    expect(progress.locator("[data-field=status_label]")).to_have_text("done")
    expect(progress.locator("[data-field=rows_done]")).to_have_text(str(ROWS))
    expect(progress.locator("[data-field=failed]")).to_have_text(str(ROWS // 1000))
    expect(progress.locator("[data-field=created]")).to_have_text(str(ROWS - ROWS // 1000))
    assert float(progress.locator("[data-field=rows_per_second]").inner_text()) > 0
    page.screenshot(path=str(screenshot_dir / "contact-import-progress.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the error report (CSV)").click()
    report = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert report[0] == "Row,Column,Value,Problem" and len(report) == 1 + ROWS // 1000
    assert report[1].startswith("9,Celular,sin teléfono,")  # data row 7 is the file's row 9

    contact_import = ContactImport.objects.get()
    assert contact_import.mapping == {"0": "phone", "1": "first_name", "2": "customer_number", "3": "plan"}
    assert Contact.objects.filter(database=database).count() == before + ROWS - ROWS // 1000
    assert page.js_errors == []  # type: ignore[attr-defined]
