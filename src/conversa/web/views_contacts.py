"""Contact databases for supervisors and admins: contacts listed, searched and filtered; a file
imported (upload → column mapping → live progress → summary and error report); CSV export.
Thin: reads in contacts.selectors and campaigns.contact_access, writes in contacts.imports."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from conversa.accounts.selectors import display_name, is_supervisor
from conversa.campaigns.contact_access import manageable_database, manageable_database_ids, manageable_import
from conversa.contacts import exports, imports, selectors
from conversa.contacts.models import ContactImport
from conversa.contacts.phones import country_choices
from conversa.contacts.tabular import ENCODINGS
from conversa.core.errors import DomainError

PAGE_SIZE = 50
ViewFunc = Callable[..., HttpResponse | StreamingHttpResponse]


def contacts_view(view: ViewFunc) -> ViewFunc:
    """Login required; supervisors and admins only: agents get 403 on the list and 404 on a database
    or import (as a supervisor does on one not hers: nothing leaks); domain errors shown with their
    status."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        if not is_supervisor(request.user):
            if kwargs:
                return render(request, "web/contacts/message.html", _page(request, message=_("Not found.")),
                              status=404)
            return render(request, "web/contacts/message.html", _page(request, message=_(
                "Only supervisors and administrators manage contact databases.")), status=403)
        try:
            return view(request, *args, **kwargs)
        except DomainError as exc:
            return render(request, "web/contacts/message.html", _page(request, message=exc.message),
                          status=exc.status_code)

    return login_required(wrapper)


def _page(request: HttpRequest, **context: Any) -> dict[str, Any]:
    return {"me_name": display_name(request.user), "section": "contacts", **context}


@contacts_view
@require_GET
def databases(request: HttpRequest) -> HttpResponse:
    found = selectors.databases_with_counts(database_ids=manageable_database_ids(request.user))
    return render(request, "web/contacts/databases.html", _page(request, databases=found))


@contacts_view
@require_GET
def contact_list(request: HttpRequest, database_id: int) -> HttpResponse:
    database = manageable_database(request.user, database_id)
    term = request.GET.get("q", "").strip()
    filter_field, filter_value = request.GET.get("field", ""), request.GET.get("value", "").strip()
    specs = {str(s["name"]): s for s in database.fields or []}
    custom: dict[str, Any] = {}
    if filter_field in specs and filter_value:
        custom[filter_field] = filter_value
        if specs[filter_field].get("type") == "number":
            try:
                custom[filter_field] = int(filter_value) if filter_value.lstrip("-").isdigit() else float(filter_value)
            except ValueError:
                custom = {}
    after = selectors.decode_name_cursor(request.GET.get("after"), field="after")
    page = selectors.search_contacts(database_id=database.pk, term=term, after=after, limit=PAGE_SIZE,
                                     custom=custom)
    query = request.GET.copy()
    query.pop("after", None)
    next_query = ""
    if page.next is not None:
        query["after"] = page.next.encode()
        next_query = query.urlencode()
    names = list(specs)
    rows = [(c, [(c.custom or {}).get(n, "") for n in names]) for c in page.contacts]
    return render(request, "web/contacts/contacts.html", _page(
        request, database=database, specs=list(specs.values()), rows=rows, q=term, filter_field=filter_field,
        filter_value=filter_value, next_query=next_query, first_page=after is None,
        total=selectors.contact_count(database_id=database.pk),
        imports=selectors.recent_imports(database_id=database.pk, limit=5)))


class UploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("File (.csv or .xlsx)"))
    encoding = forms.ChoiceField(label=gettext_lazy("Encoding (CSV)"), choices=list(ENCODINGS.items()),
                                 initial="utf-8")


@contacts_view
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest, database_id: int) -> HttpResponse:
    database = manageable_database(request.user, database_id)
    form = UploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                started = imports.start_import(database=database, upload=form.cleaned_data["file"],
                                               encoding=form.cleaned_data["encoding"], user=request.user)
            except DomainError as exc:
                form.add_error("file", exc.message)
            else:
                return redirect("contact-import-page", started.pk)
        status = 400
    return render(request, "web/contacts/upload.html", _page(request, database=database, form=form), status=status)


def _mapping_form(contact_import: ContactImport, data: Any = None) -> forms.Form:
    targets = imports.targets_of(contact_import.database)
    options = [("", _("— do not import —")), *targets.items()]
    fields: dict[str, forms.Field] = {}
    for index, header in enumerate(contact_import.headers):
        fields[f"column_{index}"] = forms.ChoiceField(label=header or _("(no name)"), choices=options,
                                                      required=False,
                                                      initial=contact_import.mapping.get(str(index), ""))
    fields["default_country"] = forms.ChoiceField(
        label=_("Country of numbers written without a country code"), choices=country_choices(),
        initial=contact_import.default_country)
    fields["on_duplicate"] = forms.ChoiceField(
        label=_("A phone already in the database"), choices=ContactImport.OnDuplicate.choices,
        initial=contact_import.on_duplicate, widget=forms.RadioSelect)
    form_class = type("MappingForm", (forms.Form,), fields)
    return form_class(data)  # type: ignore[no-any-return]


@contacts_view
@require_http_methods(["GET", "POST"])
def import_page(request: HttpRequest, import_id: int) -> HttpResponse:
    contact_import = manageable_import(request.user, import_id)
    status = 200
    form = None
    if contact_import.status == ContactImport.Status.MAPPING:
        form = _mapping_form(contact_import, request.POST or None)
        if request.method == "POST":
            if form.is_valid():
                data = form.cleaned_data
                mapping = {name.removeprefix("column_"): value for name, value in data.items()
                           if name.startswith("column_")}
                try:
                    imports.configure_import(contact_import=contact_import, mapping=mapping,
                                             default_country=data["default_country"],
                                             on_duplicate=data["on_duplicate"])
                except DomainError as exc:
                    form.add_error(exc.field if exc.field in form.fields else None, exc.message)
                else:
                    return redirect("contact-import-page", contact_import.pk)
            status = 400
    progress = selectors.import_progress(contact_import=contact_import)
    return render(request, "web/contacts/import.html", _page(
        request, contact_import=contact_import, database=contact_import.database, form=form, progress=progress,
        columns=[(form[f"column_{i}"], h) for i, h in enumerate(contact_import.headers)] if form else []),
        status=status)


@contacts_view
@require_POST
def import_retry(request: HttpRequest, import_id: int) -> HttpResponse:
    imports.retry_import(contact_import=manageable_import(request.user, import_id))
    return redirect("contact-import-page", import_id)


@contacts_view
@require_GET
def import_progress(request: HttpRequest, import_id: int) -> HttpResponse:
    contact_import = manageable_import(request.user, import_id)
    return JsonResponse(selectors.import_progress(contact_import=contact_import).as_json())


def _csv_response(lines: Any, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@contacts_view
@require_GET
def import_errors(request: HttpRequest, import_id: int) -> StreamingHttpResponse:
    contact_import = manageable_import(request.user, import_id)
    return _csv_response(exports.problems_csv(problems=selectors.import_problems(import_id=contact_import.pk)),
                         f"import-{contact_import.pk}-errors.csv")


@contacts_view
@require_GET
def export(request: HttpRequest, database_id: int) -> StreamingHttpResponse:
    database = manageable_database(request.user, database_id)
    return _csv_response(exports.contacts_csv(database=database,
                                              contacts=selectors.contacts_for_export(database_id=database.pk)),
                         f"contacts-{database.pk}.csv")
