"""Disposition options edited as forms: the management form's fields as rows of a table, the
sub-dispositions one per line (no JSON boxes), stored as the JSON the closing action reads."""

from __future__ import annotations

from typing import Any

from django.test import Client

from conversa.campaigns.models import DispositionOption

from .forms import form_data


def test_form_fields_and_sub_dispositions_are_edited_as_forms(admin_client: Client, demo: dict[str, Any]) -> None:
    option = DispositionOption.objects.get(name="Quote sent")
    url = f"/admin/campaigns/dispositionoption/{option.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="form_fields-0-name" value="amount"' in page and "[{" not in page  # rows, not JSON
    assert '<textarea name="sub_options"' in page
    data = form_data(page, form_id="dispositionoption_form")
    data.update({"form_fields-2-name": "delivery", "form_fields-2-label": "Delivery date",
                 "form_fields-2-type": "date", "form_fields-2-required": "on",
                 "form_fields-1-delete": "on",  # "product" removed
                 "sub_options": "Price\n  Timing \n\nPrice", "_save": "Save"})
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    option.refresh_from_db()
    assert option.form_fields == [
        {"name": "amount", "label": "Amount", "type": "number", "required": True},
        {"name": "delivery", "label": "Delivery date", "type": "date", "required": True}]
    assert option.sub_options == ["Price", "Timing"]
    page = admin_client.get(url).content.decode()
    assert "Price\nTiming</textarea>" in page


def test_bad_rows_are_named(admin_client: Client, demo: dict[str, Any]) -> None:
    option = DispositionOption.objects.get(name="Quote sent")
    url = f"/admin/campaigns/dispositionoption/{option.pk}/change/"
    data = form_data(admin_client.get(url).content.decode(), form_id="dispositionoption_form")
    data.update({"form_fields-2-name": "2nd", "form_fields-2-type": "choice", "_save": "Save"})
    html = admin_client.post(url, data).content.decode()
    assert "Row 3 (2nd)" in html and "needs its choices" in html
    plain = DispositionOption.objects.get(name="Sale")
    url = f"/admin/campaigns/dispositionoption/{plain.pk}/change/"
    data = form_data(admin_client.get(url).content.decode(), form_id="dispositionoption_form")
    data.update({"form_fields-0-name": "amount", "_save": "Save"})
    html = admin_client.post(url, data).content.decode()
    assert "Only management options open a form" in html
    plain.refresh_from_db()
    assert plain.form_fields == []
