"""A real Django project for tests/integrations/test_django.py (settings read from the env)."""
