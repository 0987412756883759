from django.contrib.auth import views as auth_views
from django.urls import path

from . import account, browse

urlpatterns = [
    path("", browse.home, name="home"),
    path("trust", browse.trust_page),
    path("log/", browse.log_page),
    path("log/<int:index>", browse.log_entry_page),
    path("login/", account.login_view, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup", account.signup),
    path("settings", account.settings_page),
    path("publish", account.publish_page),
    path("settings/tokens/<int:token_id>/revoke", account.token_revoke),
    path("settings/keys/<str:keyid>/revoke", account.key_revoke),
    path("orgs/new", account.org_create),
    path("orgs/<str:name>", account.org_page),
    path("orgs/<str:name>/members/<str:username>/remove", account.org_member_remove),
    path("<str:ns>/<str:name>", browse.model_page),
    path("<str:ns>/<str:name>/releases/<str:tag>/<int:version>", browse.release_page),
    path("<str:ns>/<str:name>/releases/<str:tag>/<int:version>/status.json", browse.release_status_json),
]
