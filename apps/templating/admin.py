import json

from django import forms
from django.contrib import admin
from django.utils.html import escape, format_html, format_html_join

from .models import Template
from .services import template_preview


class TemplateForm(forms.ModelForm):
    class Meta:
        model = Template
        fields = "__all__"
        widgets = {
            "body": forms.Textarea(attrs={"rows": 8, "cols": 90}),
            "html": forms.Textarea(attrs={"rows": 12, "cols": 90}),
            "sample_context": forms.Textarea(attrs={"rows": 6, "cols": 90}),
        }


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    form = TemplateForm
    list_display = ("slug", "channel", "locale_display", "description", "updated_at")
    list_filter = ("channel", "locale")
    search_fields = ("slug", "description", "subject", "title", "body")
    readonly_fields = ("preview", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("slug", "channel", "locale", "description")}),
        ("Content (Django template language; {{ name|default:\"…\" }} for optional variables)",
         {"fields": ("subject", "title", "body", "html")}),
        ("Preview", {"fields": ("sample_context", "preview")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )
    save_on_top = True

    @admin.display(description="locale")
    def locale_display(self, obj):
        return obj.locale or "(default)"

    @admin.display(description="rendered with the sample context")
    def preview(self, obj):
        if obj is None or not obj.pk:
            return "Save the template to see it rendered with the sample context."
        result = template_preview(obj)
        if "error" in result:
            return format_html('<p style="color:#ba2121"><strong>Error:</strong> {}</p>', result["error"])
        content = result["content"]
        rows = []
        for name in ("subject", "title", "body"):
            if name in content:
                rows.append((name, escape(content[name])))
        if "sms" in content:
            info = content["sms"]
            rows.append(("segments", f"{info['segments']} ({info['encoding']}, {info['characters']} "
                                     f"{'septets' if info['encoding'] == 'GSM-7' else 'UTF-16 units'})"))
        table = format_html_join("", '<tr><th style="vertical-align:top">{}</th><td><pre style="white-space:pre-wrap'
                                     ';margin:0">{}</pre></td></tr>', rows)
        html = ""
        if content.get("html"):
            # Shown in a sandboxed frame: no scripts, no same-origin access.
            html = format_html('<tr><th style="vertical-align:top">html</th><td><iframe sandbox="" srcdoc="{}" '
                               'style="width:100%;min-height:240px;border:1px solid #ccc"></iframe>'
                               '<details><summary>source</summary><pre style="white-space:pre-wrap">{}</pre>'
                               '</details></td></tr>', escape(content["html"]), escape(content["html"]))
        return format_html("<table>{}{}</table><p>Context: <code>{}</code></p>", table, html,
                           json.dumps(obj.sample_context))
