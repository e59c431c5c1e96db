"""The Flask app tests/integrations/test_flask.py serves with a real ``gunicorn --preload``.

Its configuration file is ``$AIOCONFIG_TEST_FILE``, polled every 0.1 s (no watch), so each
worker sees an edit by itself.
"""

from __future__ import annotations

import os

from flask import Flask

from aioconfig.integrations.flask import AioConfig, get_snapshot
from aioconfig.sources import File

app = Flask(__name__)
AioConfig(app, File(os.environ["AIOCONFIG_TEST_FILE"], watch=False), refresh_interval=0.1)


@app.get("/")
def index() -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "greeting": get_snapshot()["greeting"],
        "mirrored": app.config["GREETING"],
    }
