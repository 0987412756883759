"""Account pages: sign up, settings (tokens, keys), organizations and their members."""
from __future__ import annotations

from django import forms
from django.contrib.auth import views as auth_views
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from assay.core.names import NAME_RE

from ..accounts import create_organization, create_user, remove_member, set_member
from ..errors import RegistryError
from ..models import ApiToken, Membership, Namespace, Organization
from ..permissions import can_admin
from ..publisher_keys import revoke_key
from ..ratelimits import limited, login_limited, too_many
from ..tokens import create_token, revoke_token


class SignupForm(forms.Form):
    username = forms.RegexField(regex=NAME_RE, max_length=64, help_text="lowercase letters, digits, . _ -")
    email = forms.EmailField(required=False)
    password = forms.CharField(widget=forms.PasswordInput, min_length=8)


_login = auth_views.LoginView.as_view(template_name="registry/login.html")


def login_view(request, *args, **kwargs):
    """Django's login page, with attempts limited per client IP and per user name."""
    if login_limited(request):
        return too_many("login attempts", "ASSAY_RATE_LOGIN")
    return _login(request, *args, **kwargs)


def signup(request):
    if request.method == "POST" and limited(request, "signup-ip", "ip", "ASSAY_RATE_SIGNUP"):
        return too_many("sign-ups from this address", "ASSAY_RATE_SIGNUP")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = create_user(form.cleaned_data["username"], form.cleaned_data["password"], form.cleaned_data["email"])
        except RegistryError as exc:
            form.add_error("username", exc.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("/settings")
    return render(request, "registry/form.html", {"form": form, "title": "Sign up", "submit": "Create account"})


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(choices=[(s, s) for s in ApiToken.SCOPES], widget=forms.CheckboxSelectMultiple, initial=["read"])
    namespaces = forms.CharField(required=False, help_text="comma-separated; empty = all your namespaces")
    expires_in_days = forms.IntegerField(min_value=1, max_value=365, initial=90)


@login_required
def settings_page(request):
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and limited(request, "tokens-user", "user", "ASSAY_RATE_TOKENS"):
        return too_many("new tokens for this account", "ASSAY_RATE_TOKENS")
    if request.method == "POST" and form.is_valid():
        names = [n.strip() for n in form.cleaned_data["namespaces"].split(",") if n.strip()]
        _, new_token = create_token(request.user, form.cleaned_data["name"], form.cleaned_data["scopes"], names, form.cleaned_data["expires_in_days"])
        form = TokenForm()
    return render(request, "registry/settings.html", {
        "form": form, "new_token": new_token,
        "tokens": request.user.api_tokens.order_by("-created"),
        "keys": request.user.publisher_keys.order_by("-created"),
        "memberships": Membership.objects.filter(user=request.user).select_related("organization"),
    })


@login_required
@require_POST
def token_revoke(request, token_id: int):
    if revoke_token(request.user, token_id):
        messages.info(request, "Token revoked.")
    return redirect("/settings")


@login_required
@require_POST
def key_revoke(request, keyid: str):
    try:
        revoke_key(request.user, keyid, request.POST.get("reason", "revoked in the web UI"))
        messages.info(request, f"Key {keyid} revoked.")
    except RegistryError as exc:
        messages.error(request, exc.message)
    return redirect("/settings")


class OrgForm(forms.Form):
    name = forms.RegexField(regex=NAME_RE, max_length=64)
    display_name = forms.CharField(max_length=200, required=False)
    private = forms.BooleanField(required=False, help_text="only members can see a private namespace")


@login_required
def org_create(request):
    form = OrgForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            org = create_organization(request.user, form.cleaned_data["name"], form.cleaned_data["display_name"], form.cleaned_data["private"])
        except RegistryError as exc:
            form.add_error("name", exc.message)
        else:
            return redirect(f"/orgs/{org.name}")
    return render(request, "registry/form.html", {"form": form, "title": "New organization", "submit": "Create"})


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.ROLES)


def _org_of_member(request, name: str) -> Organization:
    org = Organization.objects.filter(name=name).first()
    if org is None or not Membership.objects.filter(organization=org, user=request.user).exists():
        raise Http404("organization not found")
    return org


@login_required
def org_page(request, name: str):
    org = _org_of_member(request, name)
    admin = can_admin(request.user, Namespace.objects.get(organization=org))
    form = MemberForm(request.POST or None)
    if request.method == "POST":
        if not admin:
            raise Http404("organization not found")
        if form.is_valid():
            user = get_user_model().objects.filter(username=form.cleaned_data["username"]).first()
            if user is None:
                form.add_error("username", "no such user: they must sign up first")
            else:
                try:
                    set_member(org, user, form.cleaned_data["role"])
                except RegistryError as exc:
                    form.add_error("role", exc.message)
                else:
                    messages.info(request, f"{user.username} is now {form.cleaned_data['role']}.")
                    return redirect(f"/orgs/{org.name}")
    return render(request, "registry/org.html", {"org": org, "members": org.memberships.select_related("user").order_by("user__username"),
                                                 "form": form, "admin": admin}, status=400 if form.errors else 200)


@login_required
@require_POST
def org_member_remove(request, name: str, username: str):
    org = _org_of_member(request, name)
    if not can_admin(request.user, Namespace.objects.get(organization=org)):
        raise Http404("organization not found")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise Http404("no such member")
    try:
        remove_member(org, user)
    except RegistryError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, f"{user.username} is no longer a member of {org.name}.")
    return redirect(f"/orgs/{org.name}")


@login_required
def publish_page(request):
    from ..permissions import can_publish, visible_namespaces

    namespaces = [ns for ns in visible_namespaces(request.user).order_by("name") if can_publish(request.user, ns)]
    from assay.core.ggufparse import FILE_TYPE_GUESSED, FILE_TYPE_NAMES

    keys = request.user.publisher_keys.filter(revoked_at__isnull=True).order_by("-created")
    # The page names the file's quantization as `assay publish` does (assay/ggufparse.file_type_name).
    file_types = {"names": {str(k): v for k, v in FILE_TYPE_NAMES.items()}, "guessed": FILE_TYPE_GUESSED}
    response = render(request, "registry/publish.html", {"namespaces": namespaces, "keys": keys, "file_types": file_types})
    response.csp_allows_wasm = True  # the file is hashed in WebAssembly (hash-wasm)
    return response
