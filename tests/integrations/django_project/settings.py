"""Settings in the documented pattern: one live configuration, static settings read from it.

``$AIOCONFIG_TEST_FILE`` is the file; ``$AIOCONFIG_TEST_URL``, when set, an HTTP source on top.
"""

from __future__ import annotations

import os

import aioconfig.sync
from aioconfig import Validator
from aioconfig.sources import File, Http, Source

_sources: list[Source] = [File(os.environ["AIOCONFIG_TEST_FILE"], watch=False)]
if os.environ.get("AIOCONFIG_TEST_URL"):
    _sources.append(Http(os.environ["AIOCONFIG_TEST_URL"], timeout=2))

AIOCONFIG = aioconfig.sync.load(
    *_sources, mode="manual", max_init_wait=2, validators=[Validator("db.port", gte=1024)]
)

SECRET_KEY = AIOCONFIG["django.secret_key"]  # static: read once, at start-up
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
ROOT_URLCONF = "django_project.urls"
INSTALLED_APPS = ["aioconfig.integrations.django"]
DATABASES: dict[str, object] = {}
USE_TZ = True
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {
            "context_processors": ["aioconfig.integrations.django.context_processor"],
            "loaders": [
                (
                    "django.template.loaders.locmem.Loader",
                    {"index.html": "{{ aioconfig.greeting }} v{{ aioconfig.version }}"},
                )
            ],
        },
    }
]
AIOCONFIG_CHECK_TIMEOUT = 5.0
