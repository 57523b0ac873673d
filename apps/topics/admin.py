"""Topics in the admin. A topic may have a million subscribers, so its pages never list or count them all:
the list shows no counts, the change page counts once (an index-only scan) and shows the first
subscribers; subscribing and unsubscribing take external ids, as the API does. (Subscriptions have a
composite primary key, which Django's admin cannot show as a model or an inline.)"""
from __future__ import annotations

import re

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html_join

from .models import Topic, TopicPreference, TopicSubscription
from .selectors import topic_subscriber_count
from .services import MAX_SUBSCRIBERS_PER_CALL, topic_subscribe, topic_unsubscribe

SUBSCRIBERS_SHOWN = 50
_SEPARATORS = re.compile(r"[\s,]+")


def _external_ids(value: str) -> list[str]:
    ids = [v for v in _SEPARATORS.split(value or "") if v]
    if len(ids) > MAX_SUBSCRIBERS_PER_CALL:
        raise forms.ValidationError(f"At most {MAX_SUBSCRIBERS_PER_CALL:,} external ids at a time.")
    return ids


class TopicForm(forms.ModelForm):
    subscribe = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recipient external ids of the topic's project to subscribe, separated by spaces, commas or "
                  "new lines. Unknown ones are reported, not created.")
    unsubscribe = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recipient external ids to unsubscribe.")

    class Meta:
        model = Topic
        fields = ("project", "key", "name", "description")

    def clean_subscribe(self):
        return _external_ids(self.cleaned_data["subscribe"])

    def clean_unsubscribe(self):
        return _external_ids(self.cleaned_data["unsubscribe"])


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    form = TopicForm
    # No subscriber counts in the list: counting a million rows per listed topic would make the page slow.
    list_display = ("key", "name", "project", "created_at", "updated_at")
    list_filter = ("project",)
    list_select_related = ("project",)
    search_fields = ("key", "name")
    readonly_fields = ("subscriber_count", "first_subscribers", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("project", "key", "name", "description")}),
        ("Subscribers", {"fields": ("subscriber_count", "first_subscribers", "subscribe", "unsubscribe")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        # Clients address a topic by its key, within its project: both are fixed once made.
        return (*self.readonly_fields, "project", "key") if obj is not None else self.readonly_fields

    @admin.display(description="Subscribers")
    def subscriber_count(self, obj):
        return f"{topic_subscriber_count(topic=obj):,}" if obj.pk else "-"

    @admin.display(description=f"First {SUBSCRIBERS_SHOWN} subscribers")
    def first_subscribers(self, obj):
        if not obj.pk:
            return "-"
        rows = (TopicSubscription.objects.filter(topic_id=obj.pk).order_by("recipient_id")
                .values_list("recipient_id", "recipient__external_id")[:SUBSCRIBERS_SHOWN])
        if not rows:
            return "None yet."
        return format_html_join(", ", '<a href="{}">{}</a>', (
            (reverse("admin:recipients_recipient_change", args=[pk]), external_id) for pk, external_id in rows))

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        for field, service, verb in (("subscribe", topic_subscribe, "Subscribed"),
                                     ("unsubscribe", topic_unsubscribe, "Unsubscribed")):
            external_ids = form.cleaned_data.get(field)
            if not external_ids:
                continue
            result = service(topic=obj, external_ids=external_ids)
            done = result.subscribed if field == "subscribe" else result.removed
            text = f"{verb} {done:,} recipient(s)."
            if field == "subscribe" and result.already:
                text += f" {result.already:,} already were."
            level = messages.SUCCESS
            if result.unknown_count:
                text += (f" {result.unknown_count:,} unknown in project {obj.project}: "
                         f"{', '.join(result.unknown[:20])}{' …' if result.unknown_count > 20 else ''}")
                level = messages.WARNING
            self.message_user(request, text, level)


class TopicPreferenceForm(forms.ModelForm):
    class Meta:
        model = TopicPreference
        fields = ("recipient", "topic", "channel", "enabled")

    def clean(self):
        cleaned = super().clean()
        recipient, topic = cleaned.get("recipient"), cleaned.get("topic")
        if recipient is not None and topic is not None and recipient.project_id != topic.project_id:
            raise forms.ValidationError("The recipient and the topic belong to different projects.")
        return cleaned


@admin.register(TopicPreference)
class TopicPreferenceAdmin(admin.ModelAdmin):
    form = TopicPreferenceForm
    list_display = ("recipient", "topic", "channel", "enabled", "updated_at")
    list_filter = ("channel", "enabled")
    search_fields = ("recipient__external_id", "topic__key")
    raw_id_fields = ("recipient", "topic")
    list_select_related = ("recipient", "topic")

    def get_readonly_fields(self, request, obj=None):
        return ("recipient", "topic", "channel") if obj is not None else ()

