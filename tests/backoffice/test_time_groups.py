"""Time groups in the back office: the ranges are saved as shown (the prefilled row of a new group
too), the time zone is chosen from a list, and the page says whether the group is open now or when
it opens."""

from __future__ import annotations

import datetime
import zoneinfo

from django.test import Client

from conversa.campaigns.models import TimeGroup, TimeRange
from conversa.campaigns.selectors import opening_preview

from .forms import form_data

ADD = "/admin/campaigns/timegroup/add/"


def test_an_untouched_new_group_stores_the_range_it_shows(admin_client: Client) -> None:
    page = admin_client.get(ADD).content.decode()
    data = form_data(page, form_id="timegroup_form")
    assert (data["ranges-0-weekday_from"], data["ranges-0-weekday_to"]) == ("0", "4")  # Mon-Fri shown
    assert data["ranges-0-time_from"].startswith("09:00") and data["ranges-0-time_to"].startswith("18:00")
    data.update({"name": "Office hours", "timezone": "America/Argentina/Buenos_Aires", "_save": "Save"})
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    group = TimeGroup.objects.get(name="Office hours")
    assert [str(r) for r in group.ranges.all()] == ["Monday-Friday 09:00-18:00"]
    # Open on a Wednesday at noon there, closed at 20:00.
    zone = zoneinfo.ZoneInfo(group.timezone)
    assert group.is_open(datetime.datetime(2026, 11, 25, 12, 0, tzinfo=zone))
    assert not group.is_open(datetime.datetime(2026, 11, 25, 20, 0, tzinfo=zone))

    # Saved again unchanged: still one range, and no new prefilled row is offered.
    change = f"/admin/campaigns/timegroup/{group.pk}/change/"
    data = form_data(admin_client.get(change).content.decode(), form_id="timegroup_form")
    assert "ranges-1-weekday_from" not in data
    assert admin_client.post(change, {**data, "_save": "Save"}).status_code == 302
    assert group.ranges.count() == 1


def test_the_time_zone_is_a_list_and_a_bad_one_is_refused(admin_client: Client) -> None:
    page = admin_client.get(ADD).content.decode()
    assert '<select name="timezone"' in page and '<option value="America/Argentina/Buenos_Aires"' in page
    data = form_data(page, form_id="timegroup_form")
    data.update({"name": "Nowhere", "timezone": "Mars/Olympus_Mons", "_save": "Save"})
    response = admin_client.post(ADD, data)
    assert response.status_code == 200 and not TimeGroup.objects.filter(name="Nowhere").exists()
    assert "Mars/Olympus_Mons is not one of the available choices" in response.content.decode()


def test_the_page_says_when_the_group_opens(admin_client: Client) -> None:
    group = TimeGroup.objects.create(name="Weekdays", timezone="UTC")
    empty = admin_client.get(f"/admin/campaigns/timegroup/{group.pk}/change/").content.decode()
    assert "no range ever opens it" in empty
    TimeRange.objects.create(time_group=group, weekday_from=0, weekday_to=4, time_from=datetime.time(9),
                             time_to=datetime.time(18))
    saturday = datetime.datetime(2026, 11, 28, 10, 0, tzinfo=datetime.UTC)
    preview = opening_preview(group=group, now=saturday)
    assert not preview.open_now and preview.opens_at == datetime.datetime(2026, 11, 30, 9, 0, tzinfo=datetime.UTC)
    assert opening_preview(group=group, now=saturday + datetime.timedelta(days=2, hours=1)).open_now
    night = TimeGroup.objects.create(name="Nights", timezone="UTC")
    TimeRange.objects.create(time_group=night, weekday_from=4, weekday_to=4, time_from=datetime.time(22),
                             time_to=datetime.time(6), month_from=12, month_to=12)
    assert opening_preview(group=night, now=saturday).opens_at == datetime.datetime(
        2026, 12, 4, 22, 0, tzinfo=datetime.UTC)  # the first Friday of December
    page = admin_client.get(f"/admin/campaigns/timegroup/{group.pk}/change/").content.decode()
    assert "Open now." in page or "Closed now; opens" in page
