from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path

from aioconfig.integrations.django import get_snapshot


def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"greeting": settings.AIOCONFIG["greeting"], "version": get_snapshot(request).version}
    )


async def async_index(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"greeting": settings.AIOCONFIG["greeting"]})


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "index.html")


urlpatterns = [path("", index), path("async", async_index), path("page", page)]
