"""What a reader can find: models matching a query, with the newest release of each tag they may see."""
from __future__ import annotations

from django.db.models import Q

from .models import ApiToken, RegistryModel
from .permissions import token_allows, visible_namespaces
from .releases import visible_releases

MAX_MODELS = 200


def search_models(user, token, query: str = "", limit: int = MAX_MODELS) -> list[dict]:
    models = RegistryModel.objects.filter(namespace__in=visible_namespaces(user)).select_related("namespace")
    if query:
        models = models.filter(Q(name__icontains=query) | Q(namespace__name__icontains=query) | Q(description__icontains=query))
    found = []
    for model in models.order_by("namespace__name", "name"):
        if not token_allows(token, ApiToken.READ, model.namespace.name):
            continue
        newest = {}
        for r in visible_releases(user, model.namespace, model.releases.select_related("blob").order_by("tag", "-version")):
            newest.setdefault(r.tag, r)
        if not newest:
            continue
        found.append({
            "name": model.full_name, "description": model.description,
            "tags": [{"tag": r.tag, "version": r.version, "status": r.status, "level": r.level or None, "quantization": r.quantization,
                      "file": r.file_name, "digest": r.blob_id, "size": r.blob.size} for r in newest.values()],
        })
        if len(found) >= limit:
            break
    return found
