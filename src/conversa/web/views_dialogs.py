"""Look-ups the console's dialogs make while the agent fills them in."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _

from conversa.accounts.selectors import require_whatsapp_access
from conversa.contacts.phones import InvalidPhone, normalize_phone
from conversa.contacts.selectors import contact_for_customer
from conversa.core.errors import InvalidInput, NotFound
from conversa.web.views import _int, _user, _visible_lines, htmx_read


@htmx_read
def check_phone(request: HttpRequest) -> JsonResponse:
    """The new-conversation dialog's number, checked by the rules the send applies: a number the
    send would refuse is invalid (with the send's own message), else its contact in the line's
    campaign database, or none (the dialog offers to create it)."""
    user = _user(request)
    require_whatsapp_access(user)  # as the dialog itself: agents without the skill get 403
    line_id = _int(request.GET.get("line"))
    if not line_id:
        raise InvalidInput(_("Choose one of your lines."), field="line")
    line = _visible_lines(user).filter(pk=line_id).first()
    if line is None:  # as the send answers: another campaign's line does not exist for her
        raise NotFound(_("Line not found."))
    try:
        phone = normalize_phone(request.GET.get("phone", ""))
    except InvalidPhone as exc:
        return JsonResponse({"valid": False, "message": str(exc)})
    contact = contact_for_customer(database_id=line.campaign.contact_database_id, phone=phone, user_id="")
    return JsonResponse({"valid": True, "phone": phone, "contact": None if contact is None else {
        "id": contact.pk, "name": contact.full_name or contact.phone, "phone": contact.phone}})
