from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "brxsync.api"
    label = "api"
    verbose_name = "API access"
