"""Staff see and change every saved view: the same checks as the API (the list's filter
parser, a team of the owner's), and the owner's and the team's open inboxes hear of it."""

from django import forms
from django.contrib import admin

from . import services
from .models import SavedView


class SavedViewForm(forms.ModelForm):
    class Meta:
        model = SavedView
        fields = ["name", "owner", "team", "filters"]

    def clean(self):
        data = super().clean()
        owner = data.get("owner")
        if owner is None:
            return data
        try:
            data["filters"] = services.clean_filters(owner, data.get("filters") or {})
        except services.ViewRejected as exc:
            self.add_error("filters", _text(exc.detail.get("filters", exc.detail)))
        team = data.get("team")
        if team is not None and not services.team_choices(owner).filter(pk=team.pk).exists():
            self.add_error("team", f"{team} is not one of {owner}'s teams")
        name = (data.get("name") or "").strip()
        taken = SavedView.objects.filter(owner=owner, name__iexact=name)
        if self.instance.pk:
            taken = taken.exclude(pk=self.instance.pk)
        if name and taken.exists():
            self.add_error("name", f"{owner} already has a view named {name!r}")
        data["name"] = name
        return data


def _text(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_text(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_text(item) for item in detail)
    return str(detail)


@admin.register(SavedView)
class SavedViewAdmin(admin.ModelAdmin):
    form = SavedViewForm
    list_display = ["name", "owner", "team", "filters", "updated_at"]
    list_filter = ["team"]
    list_select_related = ["owner", "team"]
    search_fields = ["name", "owner__username", "owner__first_name", "owner__last_name"]
    autocomplete_fields = ["owner"]

    def save_model(self, request, obj, form, change):
        previous = SavedView.objects.filter(pk=obj.pk).values_list("team_id", flat=True).first()
        services.save_view(obj, previous_team_id=previous)

    def delete_model(self, request, obj):
        services.delete_view(obj)

    def delete_queryset(self, request, queryset):
        for view in queryset:
            services.delete_view(view)
